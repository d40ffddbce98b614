package sqlstore

import (
	"context"
	"database/sql"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/store"
)

// Latest is the schema version New migrates to.
var Latest = len(migrations) - 1

// NewAt is New with the schema migrated up to version v only: the
// database as an older godwit left it.
func NewAt(ctx context.Context, db *sql.DB, d Dialect, v int) (*Store, error) {
	return newAt(ctx, db, d, v)
}

// Exec runs a statement written with ? placeholders.
func (s *Store) Exec(ctx context.Context, query string, args ...any) error {
	_, err := s.db.ExecContext(ctx, s.q(query), args...)
	return err
}

// Conn is one connection to s's database.
func (s *Store) Conn(ctx context.Context) (*sql.Conn, error) { return s.db.Conn(ctx) }

// ListQuery is one query that a list runs.
type ListQuery struct {
	Name  string // kind and filter, e.g. "migration active"
	Table string // the table it reads
	Query string // with the dialect's placeholders
	Args  []any
}

// ListQueries are the queries of every docs list, under every filter its
// kind is listed with, and of Ports under the filters that narrow it.
func (s *Store) ListQueries() []ListQuery {
	var out []ListQuery
	add := func(kind string, listQuery func(filter) (string, []any), fs map[string]filter) {
		for name, f := range fs {
			q, args := listQuery(f)
			out = append(out, ListQuery{Name: kind + " " + name, Table: "documents", Query: s.q(q), Args: args})
		}
	}
	filtered := map[string]filter{"all": {}, "active": {active: true}, "ref": {ref: "x"}, "ref active": {ref: "x", active: true}}
	add("migration", s.migrations.listQuery, filtered)
	add("intent", s.intents.listQuery, filtered)
	add("image", s.images.listQuery, map[string]filter{"all": {}})
	add("flavor", s.flavors.listQuery, map[string]filter{"all": {}})
	q, args := s.auditQuery(api.AuditFilter{VMID: "v"})
	out = append(out, ListQuery{Name: "audit vm", Table: "documents", Query: s.q(q), Args: args})
	for name, f := range map[string]store.PortFilter{"network": {Network: "n"}, "vm": {VMID: "v"}, "network vm": {Network: "n", VMID: "v"}} {
		q, args := portsQuery(f)
		out = append(out, ListQuery{Name: "port " + name, Table: "ports", Query: s.q(q), Args: args})
	}
	return out
}
