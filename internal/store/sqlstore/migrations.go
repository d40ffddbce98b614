package sqlstore

import (
	"context"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/store"
)

// migrationIndex files a migration under its VM.
func migrationIndex(m *api.Migration) index {
	return index{id: m.ID, ref: m.VM, active: !m.State.Final(), created: m.CreatedAt.UnixNano()}
}

func stampMigration(m *api.Migration, id string, now time.Time) { m.ID, m.UpdatedAt = id, now }

// CreateMigration implements store.Store.
func (s *Store) CreateMigration(ctx context.Context, m api.Migration) error {
	return s.migrations.create(ctx, m)
}

// Migration implements store.Store.
func (s *Store) Migration(ctx context.Context, id string) (api.Migration, error) {
	return s.migrations.get(ctx, id)
}

// Migrations implements store.Store.
func (s *Store) Migrations(ctx context.Context, f store.MigrationFilter) ([]api.Migration, error) {
	return s.migrations.list(ctx, filter{ref: f.VM, active: f.Active})
}

// UpdateMigration implements store.Store.
func (s *Store) UpdateMigration(ctx context.Context, id string, fn func(*api.Migration) error) (api.Migration, error) {
	return s.migrations.update(ctx, id, fn)
}
