// Package postgres opens the controller's store on PostgreSQL, for
// clusters that outgrow one embedded database. It uses pgx, the
// maintained PostgreSQL driver for Go, through its database/sql adapter so
// that both engines share one implementation (sqlstore).
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/godwit/godwit/internal/store"
	"github.com/godwit/godwit/internal/store/sqlstore"
)

// Dialect is PostgreSQL's, for sqlstore.
var Dialect = sqlstore.Dialect{
	Name: "postgres", Dollar: true, ForUpdate: " FOR UPDATE",
	IsUnique: func(err error) bool { return pgCode(err) == uniqueViolation },
	UniqueKey: func(err error) string {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == uniqueViolation {
			return pe.ConstraintName
		}
		return ""
	},
	IsForeignKey: func(err error) bool { return pgCode(err) == foreignKeyViolation },
	IsTransient: func(err error) bool {
		c := pgCode(err)
		return c == deadlockDetected || c == serializationFailure
	},
}

// SQLSTATE codes that sqlstore tells apart.
const (
	uniqueViolation      = "23505"
	foreignKeyViolation  = "23503"
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
)

// pgCode is err's SQLSTATE, "" when err is no PostgreSQL error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Open connects to the database at dsn (postgres://…) and applies the
// schema migrations.
func Open(ctx context.Context, dsn string) (store.Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	s, err := sqlstore.New(ctx, db, Dialect)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
