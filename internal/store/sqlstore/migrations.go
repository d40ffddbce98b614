package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

// finalMigration reports whether a migration state is final.
func finalMigration(state string) bool {
	switch state {
	case api.MigCompleted, api.MigRolledBack, api.MigCancelled, api.MigNeedsAttention:
		return true
	}
	return false
}

// CreateMigration implements store.Store.
func (s *Store) CreateMigration(ctx context.Context, m api.Migration) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO migrations (id, vm, active, created_at, doc) VALUES (?, ?, ?, ?, ?)`),
		m.ID, m.VM, !finalMigration(m.State), m.CreatedAt.UnixNano(), encode(m))
	if err != nil && s.d.IsUnique(err) {
		return errs.Conflict("migration %s already exists", m.ID)
	}
	return err
}

// Migration implements store.Store.
func (s *Store) Migration(ctx context.Context, id string) (api.Migration, error) {
	var doc string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT doc FROM migrations WHERE id = ?`), id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return api.Migration{}, errs.NotFound("migration %s not found; list migrations with: godwit migration list", id)
	}
	if err != nil {
		return api.Migration{}, err
	}
	return decode[api.Migration](doc)
}

// Migrations implements store.Store.
func (s *Store) Migrations(ctx context.Context, f store.MigrationFilter) ([]api.Migration, error) {
	q := `SELECT doc FROM migrations WHERE 1 = 1`
	var args []any
	if f.VM != "" {
		q += ` AND vm = ?`
		args = append(args, f.VM)
	}
	if f.Active {
		q += ` AND active = ?`
		args = append(args, true)
	}
	return list[api.Migration](ctx, s, q+` ORDER BY created_at DESC, id`, args...)
}

// UpdateMigration implements store.Store.
func (s *Store) UpdateMigration(ctx context.Context, id string, fn func(*api.Migration) error) (api.Migration, error) {
	var m api.Migration
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var doc string
		err := tx.QueryRowContext(ctx, s.q(`SELECT doc FROM migrations WHERE id = ?`+s.d.ForUpdate), id).Scan(&doc)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.NotFound("migration %s not found", id)
		}
		if err != nil {
			return err
		}
		if m, err = decode[api.Migration](doc); err != nil {
			return err
		}
		if err := fn(&m); err != nil {
			return err
		}
		m.ID = id
		m.UpdatedAt = time.Now().UTC()
		_, err = tx.ExecContext(ctx, s.q(`UPDATE migrations SET active = ?, doc = ? WHERE id = ?`), !finalMigration(m.State), encode(m), id)
		return err
	})
	return m, err
}
