package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

// AuditRetention is how long audit records are kept.
const AuditRetention = 90 * 24 * time.Hour

// Authenticate returns who a bearer token belongs to: its holder's role
// and project. An unknown, revoked or expired token is refused with a
// message that says which, and what to do; never which part of an
// unknown token was wrong.
func (c *Service) Authenticate(ctx context.Context, secret string) (api.Principal, error) {
	id, ok := auth.ParseToken(secret)
	if !ok {
		return api.Principal{}, errs.Unauthenticated("the token is not a godwit API token (gwt_…); check --token or GODWIT_TOKEN")
	}
	t, err := c.store.Token(ctx, id)
	if errors.Is(err, errs.ErrNotFound) || (err == nil && !auth.Matches(secret, t.SHA256)) {
		return api.Principal{}, errs.Unauthenticated("the token is not valid: unknown to this cluster; ask an admin for one (godwit token create)")
	}
	if err != nil {
		return api.Principal{}, err
	}
	now := time.Now()
	switch {
	case !t.RevokedAt.IsZero():
		return api.Principal{}, errs.Unauthenticated("token %s (%s) was revoked at %s; ask an admin for a new one", t.ID, t.Name, t.RevokedAt.Format(time.RFC3339))
	case !t.ExpiresAt.IsZero() && now.After(t.ExpiresAt):
		return api.Principal{}, errs.Unauthenticated("token %s (%s) expired at %s; ask an admin for a new one", t.ID, t.Name, t.ExpiresAt.Format(time.RFC3339))
	}
	return api.Principal{Role: t.Role, Project: t.Project, Name: t.Name, TokenID: t.ID}, nil
}

// CreateToken makes an API token for a project and role; its secret is
// in the reply only.
func (c *Service) CreateToken(ctx context.Context, by api.Principal, req api.CreateTokenRequest) (api.CreatedToken, error) {
	if req.Project == "" {
		req.Project = "default"
	}
	if req.Role == "" {
		req.Role = api.RoleMember
	}
	id, secret, hash, err := auth.NewToken()
	if err != nil {
		return api.CreatedToken{}, err
	}
	t := api.Token{ID: id, Name: req.Name, Project: req.Project, Role: req.Role, CreatedAt: time.Now().UTC(), CreatedBy: by.TokenID}
	if req.ExpiresInHours > 0 {
		t.ExpiresAt = t.CreatedAt.Add(time.Duration(req.ExpiresInHours) * time.Hour)
	}
	if err := c.store.CreateToken(ctx, store.Token{Token: t, SHA256: hash}); err != nil {
		return api.CreatedToken{}, err
	}
	c.log.Info("token created", "id", id, "name", t.Name, "project", t.Project, "role", t.Role, "by", by.String())
	return api.CreatedToken{Token: t, Secret: secret}, nil
}

// Tokens lists API tokens, revoked ones too; never their hashes.
func (c *Service) Tokens(ctx context.Context) ([]api.Token, error) {
	ts, err := c.store.Tokens(ctx)
	out := make([]api.Token, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Token)
	}
	return out, err
}

// RevokeToken revokes a token: every request with it is refused from
// now on. Revoking a revoked token keeps its first revocation time.
func (c *Service) RevokeToken(ctx context.Context, id string) (api.Token, error) {
	if !auth.ValidTokenID(id) {
		return api.Token{}, errs.Invalid("%q is not a token ID (12 hex digits; list them with: godwit token list)", id)
	}
	t, err := c.store.UpdateToken(ctx, id, func(t *store.Token) error {
		if t.RevokedAt.IsZero() {
			t.RevokedAt = time.Now().UTC()
		}
		return nil
	})
	if err == nil {
		c.log.Info("token revoked", "id", id, "name", t.Name)
	}
	return t.Token, err
}

// AddBootstrapToken records the first admin token, written by godwit
// init or godwit up beside the CA (auth.Bootstrap), unless it is
// recorded already: a restart never undoes its revocation.
func (c *Service) AddBootstrapToken(ctx context.Context, b auth.Bootstrap) error {
	t := api.Token{ID: b.ID, Name: b.Name, Project: "default", Role: api.RoleAdmin, CreatedAt: b.CreatedAt}
	err := c.store.CreateToken(ctx, store.Token{Token: t, SHA256: b.SHA256})
	if errors.Is(err, errs.ErrConflict) {
		return nil
	}
	return err
}

// Projects lists every project with a quota or a VM, with its usage.
func (c *Service) Projects(ctx context.Context) ([]api.Project, error) {
	qs, err := c.store.Quotas(ctx)
	if err != nil {
		return nil, err
	}
	vms, err := c.store.VMs(ctx, store.VMFilter{})
	if err != nil {
		return nil, err
	}
	byName := map[string]*api.Project{}
	for _, q := range qs {
		byName[q.Name] = &q
	}
	for _, vm := range vms {
		p := byName[vm.Project]
		if p == nil {
			p = &api.Project{Name: vm.Project}
			byName[vm.Project] = p
		}
		p.Usage = addUsage(p.Usage, vm.Flavor, 1)
	}
	out := make([]api.Project, 0, len(byName))
	for _, p := range byName {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b api.Project) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Project returns a project's quota and usage. Projects exist by being
// named (by a token, a VM or a quota): an unnamed one reads as empty,
// without limits.
func (c *Service) Project(ctx context.Context, name string) (api.Project, error) {
	if err := api.ValidateName("project", name); err != nil {
		return api.Project{}, errs.Invalid("%v", err)
	}
	ps, err := c.Projects(ctx)
	if err != nil {
		return api.Project{}, err
	}
	for _, p := range ps {
		if p.Name == name {
			return p, nil
		}
	}
	return api.Project{Name: name}, nil
}

// SetQuota sets a project's limits (0: none). It never touches VMs that
// already exceed it: it only refuses what would grow them further.
func (c *Service) SetQuota(ctx context.Context, name string, q api.Quota) (api.Project, error) {
	if err := api.ValidateName("project", name); err != nil {
		return api.Project{}, errs.Invalid("%v", err)
	}
	if _, err := c.store.SetQuota(ctx, name, q); err != nil {
		return api.Project{}, err
	}
	return c.Project(ctx, name)
}

// CheckQuota refuses growth (vms more VMs, add more resources) that
// would take a project beyond its quota, with a message naming the
// limit, the use and what to do. Placement checks it under the
// scheduler's lock, so concurrent creates cannot both slip under it.
func (c *Service) CheckQuota(ctx context.Context, project string, add api.Flavor, vms int) error {
	p, err := c.Project(ctx, project)
	if err != nil {
		return err
	}
	q, u := p.Quota, p.Usage
	for _, l := range []struct {
		resource     string
		what         string
		limit, used  int
		more         int
		unit, option string
	}{
		{"vms", "VMs", q.VMs, u.VMs, vms, "", "--vms"},
		{"vcpus", "vCPUs", q.VCPUs, u.VCPUs, add.VCPUs, "", "--vcpus"},
		{"memory_mib", "memory", q.MemoryMiB, u.MemoryMiB, add.MemoryMiB, " MiB", "--memory-mib"},
		{"disk_mib", "disk", q.DiskMiB, u.DiskMiB, add.DiskMiB, " MiB", "--disk-mib"},
	} {
		if l.limit > 0 && l.more > 0 && l.used+l.more > l.limit {
			return &QuotaExceeded{Project: project, Resource: l.resource, Limit: l.limit, Used: l.used, Requested: l.more,
				msg: fmt.Sprintf("project %s's quota allows %d%s of %s; its VMs hold %d%s and this needs %d%s more; delete or shrink some, or ask an admin to raise it (godwit project quota %s %s N)",
					project, l.limit, l.unit, l.what, l.used, l.unit, l.more, l.unit, project, l.option)}
		}
	}
	return nil
}

// QuotaExceeded is CheckQuota's refusal: forbidden (errs.ErrForbidden,
// 403), with godwit's message, and the numbers another API words its
// own way (Nova's "Quota exceeded for cores: …", package nova).
type QuotaExceeded struct {
	Project string
	// Resource is the limit exceeded, by its api.Quota JSON name: vms,
	// vcpus, memory_mib or disk_mib.
	Resource               string
	Limit, Used, Requested int
	msg                    string
}

func (e *QuotaExceeded) Error() string { return e.msg }
func (e *QuotaExceeded) Unwrap() error { return errs.ErrForbidden }

func addUsage(u api.Quota, f api.Flavor, vms int) api.Quota {
	return api.Quota{VMs: u.VMs + vms, VCPUs: u.VCPUs + f.VCPUs, MemoryMiB: u.MemoryMiB + f.MemoryMiB, DiskMiB: u.DiskMiB + f.DiskMiB}
}

// RecordAudit appends an audit record; a failure to is logged, not
// returned: the request it records has been answered already.
func (c *Service) RecordAudit(ctx context.Context, r api.AuditRecord) {
	r.ID = NewID()
	if err := c.store.AddAudit(context.WithoutCancel(ctx), r); err != nil {
		c.log.Error("audit record lost", "who", r.Who, "method", r.Method, "path", r.Path, "status", r.Status, "err", err)
	}
}

// Audit lists audit records, newest first.
func (c *Service) Audit(ctx context.Context, f api.AuditFilter) ([]api.AuditRecord, error) {
	if f.Limit < 0 || f.Limit > 10000 {
		return nil, errs.Invalid("limit must be between 1 and 10000, not %d", f.Limit)
	}
	return c.store.Audit(ctx, f)
}

// pruneAudit drops audit records older than AuditRetention, hourly.
func (c *Service) pruneAudit(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := c.store.PruneAudit(ctx, time.Now().Add(-AuditRetention)); err != nil && ctx.Err() == nil {
			c.log.Warn("audit prune failed", "err", err)
		} else if n > 0 {
			c.log.Info("audit records pruned", "count", n, "older_than", fmt.Sprint(AuditRetention))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
