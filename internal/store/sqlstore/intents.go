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

// CreateIntent implements store.Store.
func (s *Store) CreateIntent(ctx context.Context, in api.Intent) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO intents (id, target, active, created_at, doc) VALUES (?, ?, ?, ?, ?)`),
		in.ID, in.Target, !api.FinalIntent(in.State), in.CreatedAt.UnixNano(), encode(in))
	if err != nil && s.d.IsUnique(err) {
		return errs.Conflict("intent %s already exists", in.ID)
	}
	return err
}

// Intent implements store.Store.
func (s *Store) Intent(ctx context.Context, id string) (api.Intent, error) {
	var doc string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT doc FROM intents WHERE id = ?`), id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return api.Intent{}, errs.NotFound("intent %s not found; list intents with: godwit intent list", id)
	}
	if err != nil {
		return api.Intent{}, err
	}
	return decode[api.Intent](doc)
}

// Intents implements store.Store.
func (s *Store) Intents(ctx context.Context, f store.IntentFilter) ([]api.Intent, error) {
	q := `SELECT doc FROM intents WHERE 1 = 1`
	var args []any
	if f.Target != "" {
		q += ` AND target = ?`
		args = append(args, f.Target)
	}
	if f.Active {
		q += ` AND active = ?`
		args = append(args, true)
	}
	return list[api.Intent](ctx, s, q+` ORDER BY created_at DESC, id`, args...)
}

// UpdateIntent implements store.Store.
func (s *Store) UpdateIntent(ctx context.Context, id string, fn func(*api.Intent) error) (api.Intent, error) {
	var in api.Intent
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var doc string
		err := tx.QueryRowContext(ctx, s.q(`SELECT doc FROM intents WHERE id = ?`+s.d.ForUpdate), id).Scan(&doc)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.NotFound("intent %s not found", id)
		}
		if err != nil {
			return err
		}
		if in, err = decode[api.Intent](doc); err != nil {
			return err
		}
		if err := fn(&in); err != nil {
			return err
		}
		in.ID = id
		in.UpdatedAt = time.Now().UTC()
		_, err = tx.ExecContext(ctx, s.q(`UPDATE intents SET active = ?, doc = ? WHERE id = ?`), !api.FinalIntent(in.State), encode(in), id)
		return err
	})
	return in, err
}
