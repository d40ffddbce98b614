package controller_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/pki"
)

// A cluster with a CA: hosts join with one-time tokens, the controller and
// the agents speak mutual TLS only, VMs are created and moved live (a
// local disk, so the destination pulls the disk from the source's agent
// too), and a host speaks only for itself; a revoked host is refused.
func TestMutualTLSCluster(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 2, 2048, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	for _, pool := range []string{api.PoolShared, api.PoolLocal} {
		name := "vm-" + pool
		if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: "guest", Pool: pool, Host: "host1",
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 64}}); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []api.MigrationKind{api.KindLive, api.KindCold} {
			v, _ := tc.client.VM(ctx, name)
			to := map[string]string{"host1": "host2", "host2": "host1"}[v.Host]
			m, err := tc.client.Migrate(ctx, name, api.MigrateRequest{Kind: kind, To: to})
			if err != nil {
				t.Fatal(err)
			}
			if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted || !m.Encrypted {
				t.Fatalf("%s move of %s over mutual TLS: %s (encrypted %v): %s", kind, name, m.State, m.Encrypted, m.Reason)
			}
		}
	}

	host1, ok, err := pki.LoadIdentity(filepath.Join(tc.agents[0].cfg.StateDir, "tls"))
	if err != nil || !ok {
		t.Fatalf("host1's certificate: %v %v", ok, err)
	}
	// Its migration credentials, as QEMU reads them (the qemu driver's
	// TestMigrationTLSQEMU moves a guest with them).
	if _, err := os.Stat(filepath.Join(tc.agents[0].cfg.StateDir, "tls", "qemu", "server-cert.pem")); err != nil {
		t.Errorf("host1 has no migration credentials: %v", err)
	}
	asHost := func(id *pki.Identity) *api.Client {
		c := api.NewClient(tc.url)
		c.HTTP = api.NewHTTPClient(api.HTTPOptions{TLS: id.ClientConfig(pki.Peer{Roles: []string{pki.RoleController}})})
		return c
	}
	// host1 claims to be host2.
	h2, _ := tc.client.Host(ctx, "host2")
	err = asHost(host1).Do(ctx, http.MethodPost, "/v1/internal/heartbeat", hostapi.Heartbeat{Host: api.Host{Name: "host2", Address: "https://127.0.0.1:1"}}, nil)
	if !api.IsCode(err, api.CodeForbidden) {
		t.Errorf("host1's heartbeat as host2: %v; want 403", err)
	}
	if h, _ := tc.client.Host(ctx, "host2"); h.Address != h2.Address {
		t.Errorf("host2's address changed to %s", h.Address)
	}
	// A user (no certificate) may not heartbeat, nor reach an agent.
	err = tc.client.Do(ctx, http.MethodPost, "/v1/internal/heartbeat", hostapi.Heartbeat{Host: api.Host{Name: "host9", Address: "https://127.0.0.1:1"}}, nil)
	if !api.IsCode(err, api.CodeForbidden) {
		t.Errorf("a heartbeat without a certificate: %v; want 403", err)
	}
	agentURL := tc.agents[0].cfg.Advertise
	user := tc.userClient(t)
	user.BaseURL = agentURL
	if err := user.Do(ctx, http.MethodGet, "/v1/vms", nil, nil); err == nil {
		t.Error("an agent answered a client without a certificate")
	}
	plain := api.NewClient(strings.Replace(agentURL, "https://", "http://", 1))
	if err := plain.Do(ctx, http.MethodGet, "/v1/vms", nil, nil); err == nil {
		t.Error("an agent answered plain HTTP")
	}

	// Revoked, host1 is refused at the handshake.
	if r, err := tc.client.RevokeHost(ctx, "host1"); err != nil || r.Revoked != 1 {
		t.Fatalf("revoke host1: %+v, %v", r, err)
	}
	if err := asHost(host1).Do(ctx, http.MethodPost, "/v1/internal/heartbeat", hostapi.Heartbeat{Host: api.Host{Name: "host1", Address: "https://127.0.0.1:1"}}, nil); err == nil {
		t.Error("a revoked host's heartbeat was taken")
	}
}

// Without a CA the PKI routes say how to get one.
func TestJoinTokenWithoutCA(t *testing.T) {
	tc := newTestCluster(t, 1, 1024)
	_, err := tc.client.JoinToken(context.Background(), "host9", api.JoinTokenRequest{})
	if !api.IsCode(err, api.CodeNotSupported) || !strings.Contains(err.Error(), "godwit init") {
		t.Errorf("join token without a CA: %v", err)
	}
}
