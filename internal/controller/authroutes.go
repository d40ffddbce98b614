package controller

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/errs"
)

// authRoutes are the routes of tokens, projects and the audit log.
func (c *Controller) authRoutes(m routes) {
	s := c.svc
	m.HandleFunc("GET /v1/whoami", get(c, func(ctx context.Context, r *http.Request) (api.Principal, error) {
		return auth.From(ctx), nil
	}))
	m.HandleFunc("POST /v1/tokens", call(c, required, http.StatusCreated, func(ctx context.Context, r *http.Request, req api.CreateTokenRequest) (api.CreatedToken, error) {
		if err := c.needCA(); err != nil {
			return api.CreatedToken{}, err
		}
		return s.CreateToken(ctx, auth.From(ctx), req)
	}))
	m.HandleFunc("GET /v1/tokens", get(c, func(ctx context.Context, r *http.Request) ([]api.Token, error) { return s.Tokens(ctx) }))
	m.HandleFunc("POST /v1/tokens/{id}/revoke", call(c, none, http.StatusOK, func(ctx context.Context, r *http.Request, _ struct{}) (api.Token, error) {
		return s.RevokeToken(ctx, r.PathValue("id"))
	}))
	m.HandleFunc("GET /v1/projects", get(c, func(ctx context.Context, r *http.Request) ([]api.Project, error) { return s.Projects(ctx) }))
	m.HandleFunc("GET /v1/projects/{name}", get(c, func(ctx context.Context, r *http.Request) (api.Project, error) {
		return s.Project(ctx, r.PathValue("name"))
	}))
	m.HandleFunc("PUT /v1/projects/{name}/quota", call(c, required, http.StatusOK, func(ctx context.Context, r *http.Request, q api.Quota) (api.Project, error) {
		return s.SetQuota(ctx, r.PathValue("name"), q)
	}))
	m.HandleFunc("GET /v1/audit", get(c, func(ctx context.Context, r *http.Request) ([]api.AuditRecord, error) {
		f, err := auditFilter(r)
		if err != nil {
			return nil, err
		}
		return s.Audit(ctx, f)
	}))
}

// auditFilter reads GET /v1/audit's query: since (RFC 3339), limit and
// vm_id.
func auditFilter(r *http.Request) (api.AuditFilter, error) {
	q := r.URL.Query()
	f := api.AuditFilter{VMID: q.Get("vm_id")}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return f, errs.Invalid("since must be a time in RFC 3339, e.g. 2026-12-05T10:00:00Z, not %q", v)
		}
		f.Since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, errs.Invalid("limit must be a positive count, not %q", v)
		}
		f.Limit = n
	}
	return f, nil
}
