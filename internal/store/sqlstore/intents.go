package sqlstore

import (
	"context"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/store"
)

// intentIndex files an intent under its target.
func intentIndex(in *api.Intent) index {
	return index{id: in.ID, ref: in.Target, active: !in.State.Final(), created: in.CreatedAt.UnixNano()}
}

func stampIntent(in *api.Intent, id string, now time.Time) { in.ID, in.UpdatedAt = id, now }

// CreateIntent implements store.Store.
func (s *Store) CreateIntent(ctx context.Context, in api.Intent) error {
	return s.intents.create(ctx, in)
}

// Intent implements store.Store.
func (s *Store) Intent(ctx context.Context, id string) (api.Intent, error) {
	return s.intents.get(ctx, id)
}

// Intents implements store.Store.
func (s *Store) Intents(ctx context.Context, f store.IntentFilter) ([]api.Intent, error) {
	return s.intents.list(ctx, filter{ref: f.Target, active: f.Active})
}

// UpdateIntent implements store.Store.
func (s *Store) UpdateIntent(ctx context.Context, id string, fn func(*api.Intent) error) (api.Intent, error) {
	return s.intents.update(ctx, id, fn)
}
