// Package sqlite opens the controller's embedded store: SQLite through
// modernc.org/sqlite, a pure-Go driver (no cgo, so godwit stays one static
// binary).
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	"github.com/godwit/godwit/internal/store"
	"github.com/godwit/godwit/internal/store/sqlstore"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Dialect is SQLite's, for sqlstore.
var Dialect = sqlstore.Dialect{
	Name:         "sqlite",
	IsUnique:     func(err error) bool { return strings.Contains(err.Error(), uniqueFailed) },
	UniqueKey:    uniqueKey,
	IsForeignKey: func(err error) bool { return strings.Contains(err.Error(), "FOREIGN KEY constraint failed") },
	IsTransient:  func(error) bool { return false },
}

const uniqueFailed = "UNIQUE constraint failed: "

// uniqueKey reads the columns of the violated key out of SQLite's message,
// "… UNIQUE constraint failed: ports.network, ports.ip (2067)".
func uniqueKey(err error) string {
	_, cols, ok := strings.Cut(err.Error(), uniqueFailed)
	if !ok {
		return ""
	}
	if i := strings.Index(cols, " ("); i >= 0 {
		cols = cols[:i]
	}
	return strings.TrimSpace(cols)
}

// Open opens (creating if needed) the SQLite database at path.
//
// One connection serves everything: SQLite has one writer anyway, and a
// single connection means no SQLITE_BUSY between our own transactions.
// WAL keeps readers of other processes (backups, sqlite3 shells) out of
// the writer's way.
func Open(ctx context.Context, path string) (store.Store, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(ON)", "busy_timeout(10000)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s, err := sqlstore.New(ctx, db, Dialect)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
