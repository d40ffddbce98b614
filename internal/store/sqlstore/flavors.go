package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// Stored flavors are a docs kind with two unique keys: the document's id
// is the flavor's ID (the primary key), its ref the flavor's name, unique
// among flavors by an index of its own (schema version 7). The database
// holds both under any concurrency; the errors say which was taken.

var (
	flavorIDKey   = uniqueKey{"documents_pkey", "documents.kind, documents.id"}
	flavorNameKey = uniqueKey{"documents_flavor_name", "documents.ref"}
)

func flavorIndex(f *api.NamedFlavor) index {
	return index{id: f.ID, ref: f.Name, created: f.CreatedAt.UnixNano()}
}

// flavorTaken is the flavors' create error for a unique violation.
func (s *Store) flavorTaken(err error, f *api.NamedFlavor) error {
	switch {
	case s.violates(err, flavorNameKey):
		return errs.Conflict("flavor name %q is taken", f.Name)
	case s.violates(err, flavorIDKey):
		return errs.Conflict("flavor id %q is taken", f.ID)
	}
	return errs.Conflict("flavor %q (id %s) already exists", f.Name, f.ID)
}

// CreateFlavor implements store.Store.
func (s *Store) CreateFlavor(ctx context.Context, f api.NamedFlavor) error {
	return s.flavors.create(ctx, f)
}

// Flavor implements store.Store.
func (s *Store) Flavor(ctx context.Context, nameOrID string) (api.NamedFlavor, error) {
	f, err := s.flavors.get(ctx, nameOrID)
	if !errors.Is(err, errs.ErrNotFound) {
		return f, err
	}
	return one[api.NamedFlavor](ctx, s, s.db, notFound("flavor %q not found", nameOrID),
		`SELECT doc FROM documents WHERE kind = ? AND ref = ?`, s.flavors.kind, nameOrID)
}

// Flavors implements store.Store.
func (s *Store) Flavors(ctx context.Context) ([]api.NamedFlavor, error) {
	return s.flavors.list(ctx, filter{})
}

// DeleteFlavor implements store.Store.
func (s *Store) DeleteFlavor(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.flavors.remove(ctx, tx, id) })
}
