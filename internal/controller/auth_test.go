package controller_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// memberToken makes a member token of project.
func (tc *testCluster) memberToken(t *testing.T, name, project string) api.CreatedToken {
	t.Helper()
	tok, err := tc.client.CreateToken(context.Background(), api.CreateTokenRequest{Name: name, Project: project, Role: api.RoleMember})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// memberClient is a client with a new member token of project.
func (tc *testCluster) memberClient(t *testing.T, name, project string) (*api.Client, api.CreatedToken) {
	t.Helper()
	tok := tc.memberToken(t, name, project)
	c := tc.userClient(t)
	c.Token = tok.Secret
	return c, tok
}

// A token works until it is revoked; whoami says who it is; a member
// makes VMs in its own project only.
func TestTokenLifecycle(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 4, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	alice, tok := tc.memberClient(t, "alice", "alpha")
	if tok.Role != api.RoleMember || !strings.HasPrefix(tok.Secret, "gwt_") {
		t.Fatalf("token = %+v", tok)
	}
	p, err := alice.Whoami(ctx)
	if err != nil || p.Role != api.RoleMember || p.Project != "alpha" || p.TokenID != tok.ID {
		t.Fatalf("whoami = %+v, %v", p, err)
	}
	vm, err := alice.CreateVM(ctx, api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared, Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}})
	if err != nil || vm.Project != "alpha" {
		t.Fatalf("a member's VM: %+v, %v; want it in project alpha", vm, err)
	}
	_, err = alice.CreateVM(ctx, api.CreateVMRequest{Name: "web2", Project: "beta", Image: "guest", Pool: api.PoolShared, Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}})
	if !api.IsCode(err, api.CodeForbidden) || !strings.Contains(err.Error(), "own project, alpha") {
		t.Fatalf("a member's VM in another project: %v; want 403 naming its project", err)
	}
	ts, err := tc.client.Tokens(ctx)
	if err != nil || len(ts) != 2 {
		t.Fatalf("tokens = %+v, %v; want the bootstrap admin's and alice's", ts, err)
	}
	if _, err := tc.client.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	_, err = alice.VMs(ctx)
	if !api.IsCode(err, api.CodeUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked token: %v; want 401 saying it was revoked", err)
	}
}

// A project's quota refuses the VM or the resize that would exceed it,
// saying which limit and how to raise it; what fits still goes.
func TestProjectQuota(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 8, 4096)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	alice, _ := tc.memberClient(t, "alice", "alpha")
	if _, err := alice.SetQuota(ctx, "alpha", api.Quota{VMs: 5}); !api.IsCode(err, api.CodeForbidden) {
		t.Fatalf("a member sets its quota: %v; want 403", err)
	}
	if _, err := tc.client.SetQuota(ctx, "alpha", api.Quota{VMs: 2, VCPUs: 3, MemoryMiB: 1024}); err != nil {
		t.Fatal(err)
	}
	create := func(name string, vcpus, mem int) error {
		_, err := alice.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: "guest", Pool: api.PoolShared, Flavor: api.Flavor{VCPUs: vcpus, MemoryMiB: mem}})
		return err
	}
	if err := create("a1", 1, 256); err != nil {
		t.Fatal(err)
	}
	err := create("a2", 3, 256)
	if !api.IsCode(err, api.CodeForbidden) || !strings.Contains(err.Error(), "allows 3 of vCPUs") || !strings.Contains(err.Error(), "--vcpus") {
		t.Fatalf("over the vCPU quota: %v; want 403 naming the limit", err)
	}
	if err := create("a2", 2, 256); err != nil {
		t.Fatal(err)
	}
	if err := create("a3", 1, 64); !api.IsCode(err, api.CodeForbidden) || !strings.Contains(err.Error(), "of VMs") {
		t.Fatalf("over the VM quota: %v; want 403", err)
	}
	if _, err := alice.Resize(ctx, "a1", api.ResizeRequest{MemoryMiB: 1024}); !api.IsCode(err, api.CodeForbidden) || !strings.Contains(err.Error(), "of memory") {
		t.Fatalf("a resize over the memory quota: %v; want 403", err)
	}
	p, err := alice.Project(ctx, "alpha")
	if err != nil || p.Usage != (api.Quota{VMs: 2, VCPUs: 3, MemoryMiB: 512}) {
		t.Fatalf("alpha's usage = %+v, %v", p.Usage, err)
	}
	// Another project is not bound by alpha's quota.
	bob, _ := tc.memberClient(t, "bob", "beta")
	if _, err := bob.CreateVM(ctx, api.CreateVMRequest{Name: "b1", Image: "guest", Pool: api.PoolShared, Flavor: api.Flavor{VCPUs: 4, MemoryMiB: 64}}); err != nil {
		t.Fatal(err)
	}
}

// Every mutating request is in the audit log with who made it, how it
// ended, the ID its reply carried and the VM it acted on; heartbeats and
// reads are not.
func TestAuditLog(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 4, 2048)
	ctx := context.Background()
	start := time.Now()
	tc.importFakeKernel(t, "guest")
	alice, tok := tc.memberClient(t, "alice", "alpha")
	vm, err := alice.CreateVM(ctx, api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared, Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}})
	if err != nil {
		t.Fatal(err)
	}
	// Every reply carries its request's ID, which its record keeps.
	req, _ := http.NewRequestWithContext(ctx, "PATCH", tc.url+"/v1/vms/web", strings.NewReader(`{"description":"front"}`))
	req.Header.Set("Authorization", "Bearer "+tok.Secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := alice.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	patchID := resp.Header.Get("X-Request-Id")
	_, _ = alice.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive}) // 403
	_, _ = alice.VMs(ctx)
	time.Sleep(300 * time.Millisecond) // heartbeats
	// The requests that acted on the VM, by its ID (the refused migrate
	// did not).
	rs, err := tc.client.Audit(ctx, api.AuditFilter{VMID: vm.ID})
	if err != nil || len(rs) != 2 || rs[0].Method != "PATCH" || rs[0].RequestID != patchID || !strings.HasPrefix(patchID, "req-") ||
		rs[1].Path != "/v1/vms" || rs[1].Project != "alpha" || rs[1].RequestID == "" || rs[1].RequestID == patchID {
		t.Errorf("the records of the VM: %+v, %v; want the PATCH (%s) and the create", rs, err, patchID)
	}
	rs, err = tc.client.Audit(ctx, api.AuditFilter{Since: start})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.Method+" "+r.Path+" "+r.Who+" "+strconv.Itoa(r.Status))
		if strings.Contains(r.Path, "heartbeat") || r.Method == "GET" {
			t.Errorf("audited: %+v", r)
		}
	}
	want := []string{
		"POST /v1/vms/web/migrate member token " + tok.ID + " (alice, project alpha) 403",
		"POST /v1/vms member token " + tok.ID + " (alice, project alpha) 201",
		"POST /v1/tokens admin token",
	}
	joined := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("audit log lacks %q:\n%s", w, joined)
		}
	}
	if rs[0].Error == "" || !strings.Contains(rs[0].Error, "admin role") {
		t.Errorf("the refused request's record says %q; want the reason", rs[0].Error)
	}
	if _, err := alice.Audit(ctx, api.AuditFilter{}); !api.IsCode(err, api.CodeForbidden) {
		t.Errorf("a member reads the audit log: %v; want 403", err)
	}
}
