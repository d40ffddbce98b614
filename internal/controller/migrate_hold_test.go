package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// holdMigrate starts a held cold migration of vm and waits for its intent
// to await confirmation: the reply is the migration, naming the intent.
func holdMigrate(t *testing.T, c *api.Client, vm string, req api.MigrateRequest) (api.Migration, api.Intent) {
	t.Helper()
	req.Hold = true
	m, err := c.Migrate(context.Background(), vm, req)
	if err != nil {
		t.Fatal(err)
	}
	if m.Intent == "" || m.Kind != api.KindCold || m.VM != vm {
		t.Fatalf("held migration %+v: want a cold migration of %s naming its intent", m, vm)
	}
	in := waitSettled(t, c, m.Intent, 30*time.Second)
	if in.State != api.IntentAwaitingConfirm || in.Kind != api.IntentMigrate || in.Revert == nil || !in.FinishedAt.IsZero() {
		t.Fatalf("held migration %+v ended %s (%s), revert %+v: %+v", req, in.State, in.Reason, in.Revert, in.Operations)
	}
	if len(in.Operations) != 1 || in.Operations[0].MigrationID != m.ID || in.Operations[0].State != api.OpDone {
		t.Fatalf("held migration's operations %+v; want its one cold move, migration %s, done", in.Operations, m.ID)
	}
	return m, in
}

// holdCluster is two hosts and vm "app" running on host1.
func holdCluster(t *testing.T, mems ...int) *testCluster {
	t.Helper()
	tc := newTestClusterSized(t, 2, mems...)
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateVM(context.Background(), api.CreateVMRequest{Name: "app", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256}, MaxVCPUs: 4, MaxMemoryMiB: 1024}); err != nil {
		t.Fatal(err)
	}
	return tc
}

// A held cold migration moves the VM and waits in awaiting-confirmation,
// the VM running on its destination; while it waits the VM is neither
// migrated nor resized (409 naming the intent); confirm keeps it there
// (completed). Hold is cold only: with a live kind it is a 400; without a
// kind it means cold, and its dry run is the plan it would record.
func TestMigrateHoldConfirm(t *testing.T) {
	tc := holdCluster(t, 2048, 2048)
	ctx := context.Background()

	_, err := tc.client.Migrate(ctx, "app", api.MigrateRequest{Kind: api.KindLive, Hold: true})
	wantAPIError(t, err, 400, "hold is for cold migrations only")
	plan, err := tc.client.MigratePlan(ctx, "app", api.MigrateRequest{Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	if op := plan.Operations[0]; plan.State != api.IntentPlanned || !plan.Params.Hold || plan.Revert == nil || plan.Revert.Host != "host1" ||
		op.Kind != api.OpCold || op.Destination != "host2" {
		t.Errorf("dry run of a held migration: %s, hold %v, revert %+v, operations %+v; want a cold move to host2, back to host1", plan.State, plan.Params.Hold, plan.Revert, plan.Operations)
	}
	if ins, _ := tc.client.Intents(ctx); len(ins) != 0 {
		t.Errorf("the dry run recorded intents: %+v", ins)
	}

	m, in := holdMigrate(t, tc.client, "app", api.MigrateRequest{}) // no kind: cold
	if in.Revert.Host != "host1" || in.Params.Migrate == nil || !in.Params.Migrate.Hold || in.Params.Migrate.Kind != api.KindCold {
		t.Errorf("held migration's record: revert %+v, params %+v; want the way back to host1 and the cold request", *in.Revert, in.Params.Migrate)
	}
	if got := waitMigration(t, tc.client, m.ID); got.State != api.MigCompleted || got.Intent != in.ID {
		t.Errorf("the migration ended %s (intent %q)", got.State, got.Intent)
	}
	if vm, _ := tc.client.VM(ctx, "app"); vm.Host != "host2" || vm.State != api.VMRunning {
		t.Errorf("awaiting confirmation, the vm is %s on %s; want running on host2", vm.State, vm.Host)
	}
	_, err = tc.client.Migrate(ctx, "app", api.MigrateRequest{Kind: api.KindCold})
	wantAPIError(t, err, 409, "has a cold migration awaiting confirmation (intent "+in.ID+")")
	wantAPIError(t, err, 409, "godwit intent revert "+in.ID)
	_, err = tc.client.Migrate(ctx, "app", api.MigrateRequest{Hold: true})
	wantAPIError(t, err, 409, "awaiting confirmation (intent "+in.ID+")")
	_, err = tc.client.Resize(ctx, "app", api.ResizeRequest{VCPUs: 2})
	wantAPIError(t, err, 409, "awaiting confirmation (intent "+in.ID+")")
	_, err = tc.client.CancelIntent(ctx, in.ID, api.CancelIntentRequest{})
	wantAPIError(t, err, 409, "godwit intent confirm "+in.ID)

	got, err := tc.client.ConfirmResize(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != api.IntentCompleted || got.FinishedAt.IsZero() || !strings.Contains(strings.Join(got.Notes, "\n"), "confirmed: vm app stays on host2") {
		t.Errorf("confirmed: %s, finished %v, notes %q", got.State, got.FinishedAt, got.Notes)
	}
	if vm, _ := tc.client.VM(ctx, "app"); vm.Host != "host2" {
		t.Errorf("confirmed, the vm is on %s; want host2", vm.Host)
	}
	_, err = tc.client.RevertResize(ctx, in.ID)
	wantAPIError(t, err, 409, "is completed, not awaiting-confirmation")

	// Confirmed, it moves again; a migration without hold is no intent.
	m, err = tc.client.Migrate(ctx, "app", api.MigrateRequest{Kind: api.KindCold})
	if err != nil {
		t.Fatal(err)
	}
	if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted || m.Intent != "" {
		t.Errorf("plain migration after the confirm: %s, intent %q", m.State, m.Intent)
	}
	if ins, _ := tc.client.Intents(ctx); len(ins) != 1 {
		t.Errorf("%d intents; want the held migration's only", len(ins))
	}
}

// Revert moves the VM back, cold, to the host it came from, as operations
// appended to the same intent; it ends reverted and the VM is free again.
func TestMigrateHoldRevert(t *testing.T) {
	tc := holdCluster(t, 2048, 2048)
	ctx := context.Background()
	_, in := holdMigrate(t, tc.client, "app", api.MigrateRequest{Kind: api.KindCold})
	started, err := tc.client.RevertResize(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if started.State != api.IntentReverting || started.Revert.FirstOperation != 1 || len(started.Operations) != 2 ||
		started.Operations[1].Kind != api.OpCold || started.Operations[1].Source != "host2" || started.Operations[1].Destination != "host1" {
		t.Fatalf("revert started: %s, revert %+v, operations %+v; want a cold move host2 → host1", started.State, *started.Revert, started.Operations)
	}
	in = waitIntent(t, tc.client, in.ID, 60*time.Second)
	vm, _ := tc.client.VM(ctx, "app")
	if in.State != api.IntentReverted || vm.Host != "host1" || vm.State != api.VMRunning || in.Operations[1].State != api.OpDone || in.Operations[1].MigrationID == "" {
		t.Errorf("reverted: intent %s (%s) %+v; vm %s on %s; want running on host1", in.State, in.Reason, in.Operations, vm.State, vm.Host)
	}
	if h, _ := tc.client.Host(ctx, "host2"); h.AllocatedMemoryMiB != 0 {
		t.Errorf("host2 still has %d MiB allocated after the move back", h.AllocatedMemoryMiB)
	}
	_, err = tc.client.ConfirmResize(ctx, in.ID)
	wantAPIError(t, err, 409, "is reverted")
	if _, err := tc.client.Migrate(ctx, "app", api.MigrateRequest{Kind: api.KindCold, DryRun: true}); err != nil {
		t.Errorf("migrate after the revert: %v", err)
	}
}

// A revert whose old host has no room left leaves the VM where it is and
// says why; the intent ends reverted, with nothing moved.
func TestMigrateHoldRevertNoRoomBack(t *testing.T) {
	tc := holdCluster(t, 1024, 2048)
	ctx := context.Background()
	_, in := holdMigrate(t, tc.client, "app", api.MigrateRequest{Kind: api.KindCold})
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "filler", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 1024}}); err != nil {
		t.Fatal(err)
	}
	started, err := tc.client.RevertResize(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	in = waitIntent(t, tc.client, in.ID, 30*time.Second)
	vm, _ := tc.client.VM(ctx, "app")
	if len(started.Operations) != 1 || in.State != api.IntentReverted || vm.Host != "host2" || !containsAll(in.Reason, "stays on host2", "host1 has no room") {
		t.Errorf("reverted without room back: %s (%q) %+v; vm on %s", in.State, in.Reason, in.Operations, vm.Host)
	}
}

// A controller restarted while a held migration awaits confirmation
// resumes it awaiting, running nothing; restarted again while its revert
// moves the VM back, it finishes the revert.
func TestMigrateHoldRestart(t *testing.T) {
	tc := holdCluster(t, 2048, 2048)
	ctx := context.Background()
	m, in := holdMigrate(t, tc.client, "app", api.MigrateRequest{Kind: api.KindCold})

	tc.restartController(t)
	time.Sleep(500 * time.Millisecond) // two of the runner's ticks, had it anything to run
	got, err := tc.client.Intent(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != api.IntentAwaitingConfirm || len(got.Operations) != 1 || got.Revert.Host != "host1" {
		t.Fatalf("after a restart the held migration is %s, operations %+v, revert %+v", got.State, got.Operations, got.Revert)
	}
	if vm, _ := tc.client.VM(ctx, "app"); vm.Host != "host2" {
		t.Errorf("after a restart the vm is on %s; want host2", vm.Host)
	}
	if ms, _ := tc.client.Migrations(ctx, "app"); len(ms) != 1 || ms[0].ID != m.ID {
		t.Errorf("after a restart: migrations %+v; want the held one only", ms)
	}
	_, err = tc.client.Migrate(ctx, "app", api.MigrateRequest{Kind: api.KindCold})
	wantAPIError(t, err, 409, "awaiting confirmation (intent "+in.ID+")")

	if _, err := tc.client.RevertResize(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	tc.restartController(t)
	in = waitIntent(t, tc.client, in.ID, 60*time.Second)
	vm, _ := tc.client.VM(ctx, "app")
	if in.State != api.IntentReverted || vm.Host != "host1" || vm.State != api.VMRunning {
		t.Errorf("revert across a restart: intent %s (%s) %+v; vm %s on %s; want running on host1", in.State, in.Reason, in.Operations, vm.State, vm.Host)
	}
}
