package sqlstore

import (
	"context"
	"database/sql"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// Key pairs are a docs kind whose id is owner + "/" + name — unique per
// owner by the primary key, no schema change — and whose ref is the
// owner, which lists filter on. A name holds no '/' (api.
// ValidateKeyPairName), nor does an owner (a token's hex ID).

func keyPairID(owner, name string) string { return owner + "/" + name }

func keyPairIndex(k *api.KeyPair) index {
	return index{id: keyPairID(k.Owner, k.Name), ref: k.Owner, created: k.CreatedAt.UnixNano()}
}

// keyPairTaken is the key pairs' create error for a unique violation.
func keyPairTaken(_ error, k *api.KeyPair) error {
	return errs.Conflict("key pair %q already exists; choose another name or delete it first", k.Name)
}

// CreateKeyPair implements store.Store.
func (s *Store) CreateKeyPair(ctx context.Context, k api.KeyPair) error {
	return s.keyPairs.create(ctx, k)
}

// KeyPair implements store.Store.
func (s *Store) KeyPair(ctx context.Context, owner, name string) (api.KeyPair, error) {
	return one[api.KeyPair](ctx, s, s.db, notFound("key pair %q not found", name), selectDoc, s.keyPairs.kind, keyPairID(owner, name))
}

// KeyPairs implements store.Store.
func (s *Store) KeyPairs(ctx context.Context, owner string) ([]api.KeyPair, error) {
	return s.keyPairs.list(ctx, filter{ref: owner})
}

// DeleteKeyPair implements store.Store.
func (s *Store) DeleteKeyPair(ctx context.Context, owner, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM documents WHERE kind = ? AND id = ?`), s.keyPairs.kind, keyPairID(owner, name))
		return deleted(res, err, notFound("key pair %q not found", name))
	})
}
