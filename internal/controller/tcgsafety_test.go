package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// oldTCG is a cluster of fake hosts that claim TCG on QEMU 7.2, whose
// live migrations lose guest writes, with a running VM "web" on host1.
func oldTCG(t *testing.T, opts clusterOptions, hosts int) *testCluster {
	t.Helper()
	mems := make([]int, hosts)
	for i := range mems {
		mems[i] = 1024
		opts.accels = append(opts.accels, "tcg")
		if i >= len(opts.qemus) {
			opts.qemus = append(opts.qemus, "7.2.22")
		}
	}
	tc := newTestClusterWith(t, opts, 2, mems...)
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateVM(context.Background(), api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}}); err != nil {
		t.Fatal(err)
	}
	return tc
}

// wantTCGRefusal checks a refusal by the TCG gate: 422, naming the bug,
// the fix and the override.
func wantTCGRefusal(t *testing.T, what string, err error) {
	t.Helper()
	if !api.IsCode(err, api.CodeNotSupported) {
		t.Fatalf("%s: %v; want 422 not_supported", what, err)
	}
	wantAPIError(t, err, 422, "loses guest writes")
	for _, s := range []string{"QEMU 7.2.22", "03bfc2188f06", "9.0 or later", "bookworm-backports", "KVM", "--allow-unsafe-tcg-migration"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: %q does not say %q", what, err, s)
		}
	}
}

// A live migration between TCG hosts on QEMU 7.2 is refused (422) however
// it is asked for; a cold one is not; and the host reports its version.
func TestLiveMigrationRefusedOnOldTCG(t *testing.T) {
	tc := oldTCG(t, clusterOptions{}, 2)
	ctx := context.Background()
	h, err := tc.client.Host(ctx, "host1")
	if err != nil {
		t.Fatal(err)
	}
	if h.Accelerator != "tcg" || h.QEMUVersion != "7.2.22" || h.PostCopy {
		t.Errorf("host1 reports %s on QEMU %q, post-copy %v; want tcg on 7.2.22, no post-copy", h.Accelerator, h.QEMUVersion, h.PostCopy)
	}
	_, err = tc.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive})
	wantTCGRefusal(t, "live, scheduler's choice", err)
	_, err = tc.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive, To: "host2"})
	wantTCGRefusal(t, "live to host2", err)
	_, err = tc.client.MigratePlan(ctx, "web", api.MigrateRequest{Kind: api.KindLive})
	wantTCGRefusal(t, "live dry run", err)
	if ms, _ := tc.client.Migrations(ctx, "web"); len(ms) != 0 {
		t.Fatalf("refused migrations left records: %+v", ms)
	}

	m, err := tc.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindCold})
	if err != nil {
		t.Fatalf("cold migration: %v", err)
	}
	if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted {
		t.Errorf("cold migration ended %s (%s)", m.State, m.Reason)
	}
}

// godwit serve --allow-unsafe-tcg-migration lets the same move run live,
// without post-copy, which the hosts do not offer.
func TestUnsafeTCGMigrationOverride(t *testing.T) {
	tc := oldTCG(t, clusterOptions{allowUnsafeTCG: true}, 2)
	ctx := context.Background()
	if _, err := tc.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive, PostCopy: true}); !api.IsCode(err, api.CodeNotSupported) ||
		!strings.Contains(err.Error(), "does not offer post-copy") {
		t.Errorf("post-copy on QEMU 7.2 TCG: %v; want 422 naming the host that does not offer it", err)
	}
	m, err := tc.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive})
	if err != nil {
		t.Fatalf("live migration with the override: %v", err)
	}
	if m.PostCopy {
		t.Error("post-copy offered between hosts whose drivers do not offer it")
	}
	if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted || m.Kind != api.KindLive {
		t.Errorf("%s migration ended %s (%s); want a completed live one", m.Kind, m.State, m.Reason)
	}
}

// Under KVM the kernel keeps the dirty log: QEMU 7.2 is fine there.
func TestLiveMigrationKVMOnOldQEMU(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{accels: []string{"kvm", "kvm"}, qemus: []string{"7.2.22", "7.2.22"}}, 2, 1024, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}}); err != nil {
		t.Fatal(err)
	}
	m, err := tc.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive})
	if err != nil {
		t.Fatalf("live migration under KVM on QEMU 7.2: %v", err)
	}
	if !m.PostCopy {
		t.Error("post-copy not offered under KVM")
	}
	if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted {
		t.Errorf("migration ended %s (%s)", m.State, m.Reason)
	}
}

// Post-copy is offered wherever both hosts' drivers offer it: under TCG
// on a current QEMU too (it used to be refused under TCG outright).
func TestPostCopyUnderTCGOnCurrentQEMU(t *testing.T) {
	tc := oldTCG(t, clusterOptions{qemus: []string{"10.0.2", "9.0.0"}}, 2)
	ctx := context.Background()
	m, err := tc.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive, PostCopy: true})
	if err != nil {
		t.Fatalf("post-copy under TCG on QEMU 10.0.2 and 9.0.0: %v", err)
	}
	if !m.PostCopy {
		t.Error("post-copy not armed")
	}
	if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted {
		t.Errorf("migration ended %s (%s)", m.State, m.Reason)
	}
}

// A migrate without a kind means "live if it can, else cold": on hosts
// the TCG gate refuses live it moves cold, and says why, in its plan and
// in the migration's decisions.
func TestMigrateWithoutKindOnOldTCGMovesCold(t *testing.T) {
	tc := oldTCG(t, clusterOptions{}, 2)
	ctx := context.Background()
	plan, err := tc.client.MigratePlan(ctx, "web", api.MigrateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Operations) != 1 || plan.Operations[0].Kind != api.OpCold || len(plan.Notes) == 0 ||
		!strings.Contains(strings.Join(plan.Notes, "\n"), "03bfc2188f06") {
		t.Errorf("plan = %+v, notes %q; want a cold move and the reason", plan.Operations, plan.Notes)
	}
	m, err := tc.client.Migrate(ctx, "web", api.MigrateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != api.KindCold || len(m.Decisions) != 1 || m.Decisions[0].Action != "cold instead of live" ||
		!strings.Contains(m.Decisions[0].Reason, "loses guest writes") {
		t.Errorf("migration %s, decisions %+v; want cold, with the reason", m.Kind, m.Decisions)
	}
	if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted {
		t.Errorf("migration ended %s (%s)", m.State, m.Reason)
	}
}

// The scheduler passes over a destination the TCG gate would refuse when
// another can take the VM live; naming that destination is refused.
func TestLiveMigrationAvoidsUnsafeDestination(t *testing.T) {
	// host2 has the most free memory but QEMU 7.2.
	tc := newTestClusterWith(t, clusterOptions{accels: []string{"tcg", "tcg", "tcg"}, qemus: []string{"10.0.2", "7.2.22", "9.0.0"}}, 2, 1024, 4096, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}}); err != nil {
		t.Fatal(err)
	}
	_, err := tc.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive, To: "host2"})
	wantTCGRefusal(t, "live to host2", err)
	m, err := tc.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive})
	if err != nil {
		t.Fatal(err)
	}
	if m.Destination != "host3" {
		t.Errorf("live migration went to %s; want host3, the one safe destination", m.Destination)
	}
	waitMigration(t, tc.client, m.ID)
}

// A drain of a host the TCG gate keeps VMs from leaving live says so in
// its plan, per VM, and then follows its failure policy: skip leaves the
// VM where it is with the reason; cold moves it cold.
func TestDrainOnOldTCG(t *testing.T) {
	tc := oldTCG(t, clusterOptions{}, 2)
	ctx := context.Background()
	plan, err := tc.client.Drain(ctx, "host1", api.DrainRequest{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if op := opOf(plan, "web"); op.Kind != api.OpLive || op.Destination != "" || !strings.Contains(op.Reason, "03bfc2188f06") ||
		!strings.Contains(op.Reason, "on failure skip") {
		t.Errorf("plan for web = %+v; want no destination, the TCG reason and the policy's effect", op)
	}
	in, err := tc.client.Drain(ctx, "host1", api.DrainRequest{})
	if err != nil {
		t.Fatal(err)
	}
	in = waitIntent(t, tc.client, in.ID, 30*time.Second)
	if op := opOf(in, "web"); op.State != api.OpSkipped || !strings.Contains(op.Reason, "loses guest writes") {
		t.Errorf("web after the drain: %+v; want skipped with the reason", op)
	}
	if vm, _ := tc.client.VM(ctx, "web"); vm.Host != "host1" || vm.State != api.VMRunning {
		t.Errorf("web is %s on %s; want running on host1", vm.State, vm.Host)
	}

	if _, err := tc.client.SetHostEnabled(ctx, "host1", true); err != nil {
		t.Fatal(err)
	}
	plan, err = tc.client.Drain(ctx, "host1", api.DrainRequest{DryRun: true, OnFailure: api.OnFailureCold})
	if err != nil {
		t.Fatal(err)
	}
	if op := opOf(plan, "web"); op.Kind != api.OpCold || op.Destination != "host2" || !strings.Contains(op.Reason, "loses guest writes") {
		t.Errorf("plan for web under on-failure cold = %+v; want cold to host2, with the reason", op)
	}
	in, err = tc.client.Drain(ctx, "host1", api.DrainRequest{OnFailure: api.OnFailureCold})
	if err != nil {
		t.Fatal(err)
	}
	in = waitIntent(t, tc.client, in.ID, 30*time.Second)
	if op := opOf(in, "web"); op.State != api.OpDone || op.Kind != api.OpCold {
		t.Errorf("web after the drain under on-failure cold: %+v; want done, cold", op)
	}
	if vm, _ := tc.client.VM(ctx, "web"); vm.Host != "host2" || vm.State != api.VMRunning {
		t.Errorf("web is %s on %s; want running on host2", vm.State, vm.Host)
	}
}
