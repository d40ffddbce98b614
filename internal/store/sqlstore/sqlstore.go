// Package sqlstore is the one implementation of store.Store over
// database/sql, shared by the SQLite and PostgreSQL engines. A small
// dialect covers what differs between them (placeholders, row locks).
//
// Records are kept as JSON documents beside the columns that queries
// filter or join on, so adding a field to an API type needs no schema
// change, and times round-trip exactly. Hosts and VMs have tables of
// their own; migrations, intents, images, flavors and the small records
// share one table, documents, through one generic code path (docs). Networks and ports have tables
// of their own, whose constraints keep addresses unique.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

// Dialect is what differs between engines.
type Dialect struct {
	Name string // sqlite or postgres
	// Dollar placeholders ($1, $2, …) instead of ?.
	Dollar bool
	// ForUpdate is appended to a SELECT that reads a row to rewrite it.
	ForUpdate string
	// IsUnique reports whether err is a unique-constraint violation.
	IsUnique func(error) bool
	// UniqueKey names the unique key that err violates, the way the
	// engine reports it: PostgreSQL by the constraint's name
	// (ports_mac_key), SQLite by its columns (ports.mac). It is "" when
	// err is no unique violation.
	UniqueKey func(error) string
	// IsForeignKey reports whether err is a foreign-key violation.
	IsForeignKey func(error) bool
	// IsTransient reports whether err aborted a transaction that may
	// well succeed when run again: PostgreSQL's deadlocks and
	// serialization failures. SQLite runs one writer at a time and has
	// none.
	IsTransient func(error) bool
}

// Store implements store.Store.
type Store struct {
	db *sql.DB
	d  Dialect

	migrations docs[api.Migration]
	intents    docs[api.Intent]
	images     docs[api.Image]
	flavors    docs[api.NamedFlavor]
	keyPairs   docs[api.KeyPair]
	settings   docs[api.ClusterSettings]
	tokens     docs[store.Token]
	quotas     docs[api.Project]
	audit      docs[api.AuditRecord]
}

var _ store.Store = (*Store)(nil)

// New wraps an open database and applies the schema migrations.
func New(ctx context.Context, db *sql.DB, d Dialect) (*Store, error) {
	return newAt(ctx, db, d, len(migrations)-1)
}

// newAt is New with the schema migrated up to version v only.
func newAt(ctx context.Context, db *sql.DB, d Dialect, v int) (*Store, error) {
	s := &Store{db: db, d: d}
	s.migrations = docs[api.Migration]{s: s, kind: "migration", order: newestFirst,
		hint: "; list migrations with: godwit migration list", index: migrationIndex, stamp: stampMigration}
	s.intents = docs[api.Intent]{s: s, kind: "intent", order: newestFirst,
		hint: "; list intents with: godwit intent list", index: intentIndex, stamp: stampIntent}
	s.images = docs[api.Image]{s: s, kind: "image", order: byID, quote: true, index: imageIndex}
	s.flavors = docs[api.NamedFlavor]{s: s, kind: "flavor", order: byRef, quote: true, index: flavorIndex, conflict: s.flavorTaken}
	s.keyPairs = docs[api.KeyPair]{s: s, kind: "keypair", order: byRef, quote: true, index: keyPairIndex, conflict: keyPairTaken}
	s.settings = docs[api.ClusterSettings]{s: s, kind: "settings", order: byID, index: settingsIndex,
		stamp: func(v *api.ClusterSettings, _ string, now time.Time) { v.UpdatedAt = now }}
	s.tokens = docs[store.Token]{s: s, kind: "token", order: byID, hint: "; list tokens with: godwit token list",
		index: func(t *store.Token) index { return index{id: t.ID, created: t.CreatedAt.UnixNano()} },
		stamp: func(t *store.Token, id string, _ time.Time) { t.ID = id }}
	s.quotas = docs[api.Project]{s: s, kind: "quota", order: byID, quote: true,
		index: func(p *api.Project) index { return index{id: p.Name} },
		stamp: func(p *api.Project, id string, now time.Time) { p.Name, p.UpdatedAt = id, now }}
	s.audit = docs[api.AuditRecord]{s: s, kind: "audit", order: newestFirst,
		index: func(r *api.AuditRecord) index { return index{id: r.ID, ref: r.VMID, created: r.Time.UnixNano()} }}
	if err := s.migrate(ctx, v); err != nil {
		return nil, err
	}
	return s, nil
}

// q rewrites ? placeholders for the dialect.
func (s *Store) q(query string) string {
	if !s.d.Dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Kind implements store.Store.
func (s *Store) Kind() string { return s.d.Name }

// Close implements store.Store.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sqlstore: encode %T: %v", v, err)) // API types always encode
	}
	return string(b)
}

func decode[T any](doc string) (T, error) {
	var v T
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return v, fmt.Errorf("decode stored %T: %w", v, err)
	}
	return v, nil
}

// queryer is a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// one decodes the document that query selects (its one column is a doc);
// missing makes the error when there is none.
func one[T any](ctx context.Context, s *Store, q queryer, missing func() error, query string, args ...any) (T, error) {
	var doc string
	err := q.QueryRowContext(ctx, s.q(query), args...).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		err = missing()
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return decode[T](doc)
}

// list decodes the documents that query selects, in its order.
func list[T any](ctx context.Context, s *Store, q queryer, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		v, err := decode[T](doc)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// modify is the read-modify-write of the Update methods: in one
// transaction it reads the document that query selects, locking its row,
// applies fn and hands the result to write. fn's error aborts it and is
// returned as is; missing makes the error when there is no such row.
func modify[T any](ctx context.Context, s *Store, missing func() error, query string, args []any,
	fn func(*T) error, write func(*sql.Tx, *T) error) (T, error) {
	var v T
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if v, err = one[T](ctx, s, tx, missing, query+s.d.ForUpdate, args...); err != nil {
			return err
		}
		if err := fn(&v); err != nil {
			return err
		}
		return write(tx, &v)
	})
	return v, err
}

// notFound makes, when called, the error of a read that found nothing.
func notFound(format string, args ...any) func() error {
	return func() error { return errs.NotFound(format, args...) }
}

// deleted checks a DELETE's result: missing makes the error when it
// removed no row.
func deleted(res sql.Result, err error, missing func() error) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return missing()
	}
	return nil
}
