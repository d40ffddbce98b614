package controller_test

import (
	"context"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver/fake"
)

// insecure_migration in a cluster with a CA: a live move started while it
// is on is recorded unencrypted and neither agent is asked for TLS; off
// again, the next move is encrypted at both ends. A cold move's disk goes
// over the agents' API, TLS only, so it stays encrypted either way.
func TestInsecureMigrationSetting(t *testing.T) {
	faults := []*fake.Faults{{}, {}}
	tc := newTestClusterWith(t, clusterOptions{tls: true, faults: faults}, 2, 2048, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	vm, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "lab", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256}})
	if err != nil {
		t.Fatal(err)
	}
	move := func(kind api.MigrationKind) (api.Migration, string, string) {
		t.Helper()
		v, _ := tc.client.VM(ctx, "lab")
		from, to := v.Host, map[string]string{"host1": "host2", "host2": "host1"}[v.Host]
		m, err := tc.client.Migrate(ctx, "lab", api.MigrateRequest{Kind: kind, To: to})
		if err != nil {
			t.Fatal(err)
		}
		if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted {
			t.Fatalf("%s move: %s: %s", kind, m.State, m.Reason)
		}
		return m, from, to
	}
	// asked is what the move's two ends were asked: TLS as the source, as
	// the destination.
	asked := func(from, to string) (bool, bool) {
		_, out := faults[map[string]int{"host1": 0, "host2": 1}[from]].MigrationTLS(vm.ID)
		in, _ := faults[map[string]int{"host1": 0, "host2": 1}[to]].MigrationTLS(vm.ID)
		return out, in
	}

	on, off := true, false
	r, err := tc.client.UpdateClusterSettings(ctx, api.ClusterSettingsUpdate{InsecureMigration: &on})
	if err != nil || !r.Settings.InsecureMigration {
		t.Fatalf("turn insecure_migration on: %+v, %v", r.Settings, err)
	}
	m, from, to := move(api.KindLive)
	if m.Encrypted {
		t.Error("a live move with insecure_migration on is recorded encrypted")
	}
	if out, in := asked(from, to); out || in {
		t.Errorf("with insecure_migration on the agents were asked for TLS: source %v, destination %v", out, in)
	}
	if m, _, _ := move(api.KindCold); !m.Encrypted {
		t.Error("a cold move (the agents' API, TLS only) is recorded unencrypted")
	}

	if _, err := tc.client.UpdateClusterSettings(ctx, api.ClusterSettingsUpdate{InsecureMigration: &off}); err != nil {
		t.Fatal(err)
	}
	m, from, to = move(api.KindLive)
	if !m.Encrypted {
		t.Error("a live move with insecure_migration off again is recorded unencrypted")
	}
	if out, in := asked(from, to); !out || !in {
		t.Errorf("with insecure_migration off the agents were not both asked for TLS: source %v, destination %v", out, in)
	}
}

// Without a CA the setting changes nothing: moves are plain, as before.
func TestInsecureMigrationWithoutCA(t *testing.T) {
	tc := newTestCluster(t, 2, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "v", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256}}); err != nil {
		t.Fatal(err)
	}
	for _, insecure := range []bool{false, true} {
		if _, err := tc.client.UpdateClusterSettings(ctx, api.ClusterSettingsUpdate{InsecureMigration: &insecure}); err != nil {
			t.Fatal(err)
		}
		v, _ := tc.client.VM(ctx, "v")
		m, err := tc.client.Migrate(ctx, "v", api.MigrateRequest{Kind: api.KindLive, To: map[string]string{"host1": "host2", "host2": "host1"}[v.Host]})
		if err != nil {
			t.Fatal(err)
		}
		if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted || m.Encrypted {
			t.Errorf("insecure_migration=%v without a CA: %s, encrypted %v: %s", insecure, m.State, m.Encrypted, m.Reason)
		}
	}
}
