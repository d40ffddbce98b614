// Package sqlstore is the one implementation of store.Store over
// database/sql, shared by the SQLite and PostgreSQL engines. A small
// dialect covers what differs between them (placeholders, row locks).
//
// Records are kept as JSON documents beside the columns that queries
// filter or join on, so adding a field to an API type needs no schema
// change, and times round-trip exactly.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
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
}

// Store implements store.Store.
type Store struct {
	db *sql.DB
	d  Dialect
}

var _ store.Store = (*Store)(nil)

// New wraps an open database and applies the schema migrations.
func New(ctx context.Context, db *sql.DB, d Dialect) (*Store, error) {
	s := &Store{db: db, d: d}
	if err := s.migrate(ctx); err != nil {
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

// migrations are applied in order, each once; append, never edit.
var migrations = []string{
	1: `CREATE TABLE hosts (
		name TEXT PRIMARY KEY,
		state TEXT NOT NULL,
		enabled BOOLEAN NOT NULL,
		last_heartbeat BIGINT NOT NULL,
		doc TEXT NOT NULL
	);
	CREATE TABLE vms (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL UNIQUE,
		host TEXT NOT NULL,
		project TEXT NOT NULL,
		image TEXT NOT NULL,
		doc TEXT NOT NULL
	);
	CREATE INDEX vms_host ON vms (host);
	CREATE INDEX vms_image ON vms (image);
	CREATE TABLE images (
		name TEXT PRIMARY KEY,
		doc TEXT NOT NULL
	)`,
	2: `CREATE TABLE migrations (
		id TEXT PRIMARY KEY,
		vm TEXT NOT NULL,
		active BOOLEAN NOT NULL,
		created_at BIGINT NOT NULL,
		doc TEXT NOT NULL
	);
	CREATE INDEX migrations_vm ON migrations (vm, active)`,
	3: `CREATE TABLE intents (
		id TEXT PRIMARY KEY,
		target TEXT NOT NULL,
		active BOOLEAN NOT NULL,
		created_at BIGINT NOT NULL,
		doc TEXT NOT NULL
	);
	CREATE INDEX intents_active ON intents (active)`,
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var have sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for v := int(have.Int64) + 1; v < len(migrations); v++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			for _, stmt := range strings.Split(migrations[v], ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version) VALUES (?)`), v)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply schema migration %d: %w", v, err)
		}
	}
	return nil
}

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

// UpsertHost implements store.Store.
func (s *Store) UpsertHost(ctx context.Context, h api.Host) (bool, error) {
	created := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var doc string
		err := tx.QueryRowContext(ctx, s.q(`SELECT doc FROM hosts WHERE name = ?`+s.d.ForUpdate), h.Name).Scan(&doc)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			h.Enabled = true
			h.RegisteredAt = h.LastHeartbeat
		case err != nil:
			return err
		default:
			old, err := decode[api.Host](doc)
			if err != nil {
				return err
			}
			h.Enabled, h.RegisteredAt = old.Enabled, old.RegisteredAt
		}
		h.State = api.HostUp
		h.AllocatedCPUs, h.AllocatedMemoryMiB, h.AllocatedDiskMiB, h.VMs = 0, 0, 0, 0
		if created {
			_, err = tx.ExecContext(ctx, s.q(`INSERT INTO hosts (name, state, enabled, last_heartbeat, doc) VALUES (?, ?, ?, ?, ?)`),
				h.Name, h.State, h.Enabled, h.LastHeartbeat.UnixNano(), encode(h))
		} else {
			_, err = tx.ExecContext(ctx, s.q(`UPDATE hosts SET state = ?, enabled = ?, last_heartbeat = ?, doc = ? WHERE name = ?`),
				h.State, h.Enabled, h.LastHeartbeat.UnixNano(), encode(h), h.Name)
		}
		return err
	})
	return created, err
}

// Host implements store.Store.
func (s *Store) Host(ctx context.Context, name string) (api.Host, error) {
	var doc string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT doc FROM hosts WHERE name = ?`), name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return api.Host{}, errs.NotFound("host %q not found", name)
	}
	if err != nil {
		return api.Host{}, err
	}
	return decode[api.Host](doc)
}

// Hosts implements store.Store.
func (s *Store) Hosts(ctx context.Context) ([]api.Host, error) {
	return list[api.Host](ctx, s, `SELECT doc FROM hosts ORDER BY name`)
}

func list[T any](ctx context.Context, s *Store, query string, args ...any) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
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

// MarkHostsDown implements store.Store.
func (s *Store) MarkHostsDown(ctx context.Context, staleBefore time.Time) ([]string, error) {
	var names []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		names = names[:0]
		rows, err := tx.QueryContext(ctx, s.q(`SELECT doc FROM hosts WHERE state = ? AND last_heartbeat < ?`+s.d.ForUpdate),
			api.HostUp, staleBefore.UnixNano())
		if err != nil {
			return err
		}
		var hosts []api.Host
		for rows.Next() {
			var doc string
			if err := rows.Scan(&doc); err != nil {
				rows.Close()
				return err
			}
			h, err := decode[api.Host](doc)
			if err != nil {
				rows.Close()
				return err
			}
			hosts = append(hosts, h)
		}
		rows.Close()
		for _, h := range hosts {
			h.State = api.HostDown
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE hosts SET state = ?, doc = ? WHERE name = ?`), h.State, encode(h), h.Name); err != nil {
				return err
			}
			names = append(names, h.Name)
		}
		return nil
	})
	sort.Strings(names)
	return names, err
}

// SetHostEnabled implements store.Store.
func (s *Store) SetHostEnabled(ctx context.Context, name string, enabled bool) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var doc string
		err := tx.QueryRowContext(ctx, s.q(`SELECT doc FROM hosts WHERE name = ?`+s.d.ForUpdate), name).Scan(&doc)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.NotFound("host %q not found", name)
		}
		if err != nil {
			return err
		}
		h, err := decode[api.Host](doc)
		if err != nil {
			return err
		}
		h.Enabled = enabled
		_, err = tx.ExecContext(ctx, s.q(`UPDATE hosts SET enabled = ?, doc = ? WHERE name = ?`), enabled, encode(h), name)
		return err
	})
}
