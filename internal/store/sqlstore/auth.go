package sqlstore

import (
	"context"
	"errors"

	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

// CreateToken implements store.Store.
func (s *Store) CreateToken(ctx context.Context, t store.Token) error { return s.tokens.create(ctx, t) }

// Token implements store.Store.
func (s *Store) Token(ctx context.Context, id string) (store.Token, error) {
	return s.tokens.get(ctx, id)
}

// Tokens implements store.Store.
func (s *Store) Tokens(ctx context.Context) ([]store.Token, error) {
	return s.tokens.list(ctx, filter{})
}

// UpdateToken implements store.Store.
func (s *Store) UpdateToken(ctx context.Context, id string, fn func(*store.Token) error) (store.Token, error) {
	return s.tokens.update(ctx, id, fn)
}

// Quotas implements store.Store.
func (s *Store) Quotas(ctx context.Context) ([]api.Project, error) {
	return s.quotas.list(ctx, filter{})
}

// SetQuota implements store.Store.
func (s *Store) SetQuota(ctx context.Context, project string, q api.Quota) (api.Project, error) {
	set := func(p *api.Project) error { p.Quota = q; return nil }
	p, err := s.quotas.update(ctx, project, set)
	if !errors.Is(err, errs.ErrNotFound) {
		return p, err
	}
	// The first quota of the project (a concurrent first one that made
	// the record is as good).
	if err := s.quotas.create(ctx, api.Project{Name: project}); err != nil && !errors.Is(err, errs.ErrConflict) {
		return p, err
	}
	return s.quotas.update(ctx, project, set)
}

// AddAudit implements store.Store.
func (s *Store) AddAudit(ctx context.Context, r api.AuditRecord) error { return s.audit.create(ctx, r) }

// Audit implements store.Store.
func (s *Store) Audit(ctx context.Context, f api.AuditFilter) ([]api.AuditRecord, error) {
	q, args := s.auditQuery(f)
	return list[api.AuditRecord](ctx, s, s.db, q, args...)
}

// auditQuery is Audit's query: a VM's records are found through the
// index on ref (documents_ref).
func (s *Store) auditQuery(f api.AuditFilter) (string, []any) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var since int64
	if !f.Since.IsZero() {
		since = f.Since.UnixNano()
	}
	q := `SELECT doc FROM documents WHERE kind = ?`
	args := []any{s.audit.kind}
	if f.VMID != "" {
		q += ` AND ref = ?`
		args = append(args, f.VMID)
	}
	return q + ` AND created_at >= ? ORDER BY ` + newestFirst + ` LIMIT ?`, append(args, since, limit)
}

// PruneAudit implements store.Store.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM documents WHERE kind = ? AND created_at < ?`), s.audit.kind, before.UnixNano())
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
