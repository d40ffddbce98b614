package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"time"

	"github.com/godwit/godwit/api"
)

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
			h.DisabledReason, h.ForcedDown = old.DisabledReason, old.ForcedDown
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
	return one[api.Host](ctx, s, s.db, notFound("host %q not found", name), `SELECT doc FROM hosts WHERE name = ?`, name)
}

// Hosts implements store.Store.
func (s *Store) Hosts(ctx context.Context) ([]api.Host, error) {
	return list[api.Host](ctx, s, s.db, `SELECT doc FROM hosts ORDER BY name`)
}

// MarkHostsDown implements store.Store.
func (s *Store) MarkHostsDown(ctx context.Context, staleBefore time.Time) ([]string, error) {
	var names []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		names = names[:0]
		hosts, err := list[api.Host](ctx, s, tx, `SELECT doc FROM hosts WHERE state = ? AND last_heartbeat < ?`+s.d.ForUpdate,
			api.HostUp, staleBefore.UnixNano())
		if err != nil {
			return err
		}
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
	_, err := modify(ctx, s, notFound("host %q not found", name), `SELECT doc FROM hosts WHERE name = ?`, []any{name},
		func(h *api.Host) error { h.Enabled = enabled; return nil },
		func(tx *sql.Tx, h *api.Host) error {
			_, err := tx.ExecContext(ctx, s.q(`UPDATE hosts SET enabled = ?, doc = ? WHERE name = ?`), h.Enabled, encode(*h), name)
			return err
		})
	return err
}

// UpdateHost implements store.Store.
func (s *Store) UpdateHost(ctx context.Context, name string, fn func(*api.Host) error) (api.Host, error) {
	return modify(ctx, s, notFound("host %q not found", name), `SELECT doc FROM hosts WHERE name = ?`, []any{name}, fn,
		func(tx *sql.Tx, h *api.Host) error {
			_, err := tx.ExecContext(ctx, s.q(`UPDATE hosts SET enabled = ?, doc = ? WHERE name = ?`), h.Enabled, encode(*h), name)
			return err
		})
}
