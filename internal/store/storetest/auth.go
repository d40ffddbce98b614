package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

// Tokens keep their hash beside the API record; IDs are unique; a
// revocation is an update that sticks.
func testTokens(t *testing.T, s store.Store) {
	tok := store.Token{Token: api.Token{ID: "0123456789ab", Name: "ci", Project: "p1", Role: api.RoleMember, CreatedAt: now()}, SHA256: "aa"}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, tok); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("a second token with ID %s: %v; want a conflict", tok.ID, err)
	}
	if _, err := s.Token(ctx, "ffffffffffff"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("unknown token: %v; want not found", err)
	}
	at := now()
	if _, err := s.UpdateToken(ctx, tok.ID, func(t *store.Token) error { t.RevokedAt = at; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Token(ctx, tok.ID)
	if err != nil || got.SHA256 != "aa" || !got.RevokedAt.Equal(at) || got.Project != "p1" || !got.CreatedAt.Equal(tok.CreatedAt) {
		t.Fatalf("token after revoke = %+v, %v", got, err)
	}
	if err := s.CreateToken(ctx, store.Token{Token: api.Token{ID: "000000000000", Name: "a", CreatedAt: now()}, SHA256: "bb"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Tokens(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "000000000000" {
		t.Fatalf("tokens = %+v, %v; want 2, by ID", all, err)
	}
}

// A quota is set, replaced and listed by project.
func testQuotas(t *testing.T, s store.Store) {
	if ps, err := s.Quotas(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("quotas before any = %+v, %v", ps, err)
	}
	if _, err := s.SetQuota(ctx, "p2", api.Quota{VMs: 2}); err != nil {
		t.Fatal(err)
	}
	p, err := s.SetQuota(ctx, "p2", api.Quota{VCPUs: 4})
	if err != nil || p.Name != "p2" || p.Quota != (api.Quota{VCPUs: 4}) || p.UpdatedAt.IsZero() {
		t.Fatalf("quota after a second set = %+v, %v; want only vcpus 4", p, err)
	}
	if _, err := s.SetQuota(ctx, "p1", api.Quota{MemoryMiB: 512}); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Quotas(ctx)
	if err != nil || len(ps) != 2 || ps[0].Name != "p1" || ps[1].Quota.VCPUs != 4 {
		t.Fatalf("quotas = %+v, %v", ps, err)
	}
}

// Audit records list newest first, from a time, up to a limit, of one
// VM, and prune by age.
func testAudit(t *testing.T, s store.Store) {
	base := now().Add(-time.Hour)
	for i := range 5 {
		r := api.AuditRecord{ID: fmt.Sprintf("r%d", i), Time: base.Add(time.Duration(i) * time.Minute), Who: "admin", Method: "POST", Path: "/v1/vms", Status: 201}
		if i%2 == 1 {
			r.VMID, r.Project = "vm-odd", "p"
		}
		if err := s.AddAudit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := s.Audit(ctx, api.AuditFilter{VMID: "vm-odd"})
	if err != nil || len(rs) != 2 || rs[0].ID != "r3" || rs[1].ID != "r1" || rs[0].Project != "p" {
		t.Fatalf("audit of vm-odd = %+v, %v; want r3, r1", rs, err)
	}
	rs, err = s.Audit(ctx, api.AuditFilter{})
	if err != nil || len(rs) != 5 || rs[0].ID != "r4" || !rs[0].Time.Equal(base.Add(4*time.Minute)) {
		t.Fatalf("audit = %+v, %v; want 5, newest first", rs, err)
	}
	rs, err = s.Audit(ctx, api.AuditFilter{Since: base.Add(2 * time.Minute), Limit: 2})
	if err != nil || len(rs) != 2 || rs[0].ID != "r4" || rs[1].ID != "r3" {
		t.Fatalf("audit since +2m, limit 2 = %+v, %v", rs, err)
	}
	n, err := s.PruneAudit(ctx, base.Add(90*time.Second))
	if err != nil || n != 2 {
		t.Fatalf("prune = %d, %v; want 2", n, err)
	}
	if rs, _ := s.Audit(ctx, api.AuditFilter{}); len(rs) != 3 || rs[2].ID != "r2" {
		t.Fatalf("audit after prune = %+v", rs)
	}
}
