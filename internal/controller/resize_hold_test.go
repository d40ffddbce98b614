package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// waitSettled waits until an intent runs nothing: ended, or held
// awaiting confirmation.
func waitSettled(t *testing.T, c *api.Client, id string, within time.Duration) api.Intent {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		in, err := c.Intent(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if in.State.Settled() {
			return in
		}
		if time.Now().After(deadline) {
			t.Fatalf("intent %s still %s: %+v", id, in.State, in.Operations)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// holdResize starts a held resize of vm and waits for it to await
// confirmation.
func holdResize(t *testing.T, c *api.Client, vm string, req api.ResizeRequest) api.Intent {
	t.Helper()
	req.Hold = true
	in, err := c.Resize(context.Background(), vm, req)
	if err != nil {
		t.Fatal(err)
	}
	in = waitSettled(t, c, in.ID, 30*time.Second)
	if in.State != api.IntentAwaitingConfirm || in.Revert == nil || !in.FinishedAt.IsZero() {
		t.Fatalf("held resize %+v ended %s (%s), revert %+v: %+v", req, in.State, in.Reason, in.Revert, in.Operations)
	}
	return in
}

// A held resize waits in awaiting-confirmation with the new size; confirm
// keeps it (completed), and a held resize blocks another resize until then.
// Confirm or revert in any other state is a 409 naming it.
func TestResizeHoldConfirm(t *testing.T) {
	tc := newTestClusterSized(t, 2, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "app", Image: "guest", Pool: api.PoolShared,
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256}, MaxVCPUs: 4, MaxMemoryMiB: 1024}); err != nil {
		t.Fatal(err)
	}
	in := holdResize(t, tc.client, "app", api.ResizeRequest{VCPUs: 2, MemoryMiB: 512})
	if in.Revert.Flavor != (api.Flavor{VCPUs: 1, MemoryMiB: 256}) || in.Revert.Host != "" {
		t.Errorf("revert data %+v; want the old sizes and no host (it did not move)", *in.Revert)
	}
	if vm, _ := tc.client.VM(ctx, "app"); vm.Flavor != (api.Flavor{VCPUs: 2, MemoryMiB: 512}) {
		t.Errorf("awaiting confirmation, the vm has %+v; want the new size", vm.Flavor)
	}
	_, err := tc.client.Resize(ctx, "app", api.ResizeRequest{VCPUs: 3})
	wantAPIError(t, err, 409, "awaiting confirmation (intent "+in.ID+")")
	_, err = tc.client.CancelIntent(ctx, in.ID, api.CancelIntentRequest{})
	wantAPIError(t, err, 409, "godwit intent confirm "+in.ID)

	got, err := tc.client.ConfirmResize(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != api.IntentCompleted || got.FinishedAt.IsZero() {
		t.Errorf("confirmed: %s, finished %v", got.State, got.FinishedAt)
	}
	if vm, _ := tc.client.VM(ctx, "app"); vm.Flavor != (api.Flavor{VCPUs: 2, MemoryMiB: 512}) {
		t.Errorf("confirmed, the vm has %+v; want the new size kept", vm.Flavor)
	}
	if in, _ = tc.client.Intent(ctx, in.ID); in.State != api.IntentCompleted {
		t.Errorf("after confirm the intent is %s", in.State)
	}
	_, err = tc.client.ConfirmResize(ctx, in.ID)
	wantAPIError(t, err, 409, "is completed, not awaiting-confirmation")
	_, err = tc.client.RevertResize(ctx, in.ID)
	wantAPIError(t, err, 409, "is completed, not awaiting-confirmation")

	// A resize made without hold is never awaiting confirmation.
	plain, err := tc.client.Resize(ctx, "app", api.ResizeRequest{VCPUs: 3})
	if err != nil {
		t.Fatal(err)
	}
	if plain = waitIntent(t, tc.client, plain.ID, 30*time.Second); plain.State != api.IntentCompleted {
		t.Fatalf("plain resize %s", plain.State)
	}
	_, err = tc.client.RevertResize(ctx, plain.ID)
	wantAPIError(t, err, 409, "was not held for confirmation (it is completed)")
	_, err = tc.client.ConfirmResize(ctx, "00000000-0000-4000-8000-000000000000")
	wantAPIError(t, err, 404, "not found")
}

// Revert in place: the old vCPUs and memory come back online, and the
// intent ends reverted with the way back as its own operations.
func TestResizeHoldRevertInPlace(t *testing.T) {
	tc := newTestClusterSized(t, 2, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	vm, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "app", Image: "guest", Pool: api.PoolShared,
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256}, MaxVCPUs: 4, MaxMemoryMiB: 1024})
	if err != nil {
		t.Fatal(err)
	}
	in := holdResize(t, tc.client, "app", api.ResizeRequest{VCPUs: 2, MemoryMiB: 512})
	started, err := tc.client.RevertResize(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if started.State != api.IntentReverting || started.Revert.FirstOperation != 1 || len(started.Operations) != 2 {
		t.Fatalf("revert started: %s, revert %+v, operations %+v", started.State, *started.Revert, started.Operations)
	}
	in = waitIntent(t, tc.client, in.ID, 30*time.Second)
	got, _ := tc.client.VM(ctx, "app")
	if in.State != api.IntentReverted || got.Flavor != vm.Flavor || got.PID != vm.PID || got.Host != vm.Host {
		t.Errorf("reverted: intent %s (%s) %+v; vm on %s pid %d (was %d) with %+v; want %+v", in.State, in.Reason, in.Operations, got.Host, got.PID, vm.PID, got.Flavor, vm.Flavor)
	}
	if op := in.Operations[1]; op.Kind != api.OpResize || op.State != api.OpDone || op.Strategy != api.StrategyHotplug {
		t.Errorf("the way back: %+v; want an online resize, done", op)
	}
	_, err = tc.client.RevertResize(ctx, in.ID)
	wantAPIError(t, err, 409, "is reverted")
	// The VM is free for another resize.
	if _, err := tc.client.Resize(ctx, "app", api.ResizeRequest{VCPUs: 2, DryRun: true}); err != nil {
		t.Errorf("resize after the revert: %v", err)
	}
}

// A resize that had to move the VM (allow_move) is reverted by the old
// sizes and a cold move back to the host it came from.
func TestResizeHoldRevertMove(t *testing.T) {
	tc := newTestClusterSized(t, 2, 1024, 4096)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	vm, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "app", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256}, MaxVCPUs: 4, MaxMemoryMiB: 1024})
	if err != nil {
		t.Fatal(err)
	}
	in := holdResize(t, tc.client, "app", api.ResizeRequest{MemoryMiB: 1536, AllowMove: true, AllowRestart: true})
	if got, _ := tc.client.VM(ctx, "app"); got.Host != "host2" || got.Flavor.MemoryMiB != 1536 || in.Revert.Host != "host1" {
		t.Fatalf("held resize with a move: vm on %s with %+v; revert %+v", got.Host, got.Flavor, *in.Revert)
	}
	started, err := tc.client.RevertResize(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(started.Operations); n != 4 || started.Operations[2].Kind != api.OpResize || started.Operations[3].Kind != api.OpCold || started.Operations[3].Destination != "host1" {
		t.Fatalf("the way back: %+v; want a resize, then a cold move to host1", started.Operations[2:])
	}
	in = waitIntent(t, tc.client, in.ID, 60*time.Second)
	got, _ := tc.client.VM(ctx, "app")
	if in.State != api.IntentReverted || got.Host != "host1" || got.Flavor != vm.Flavor || got.State != api.VMRunning {
		t.Errorf("reverted: intent %s (%s) %+v; vm %s on %s with %+v; want running on host1 with %+v", in.State, in.Reason, in.Operations, got.State, got.Host, got.Flavor, vm.Flavor)
	}
	if h, _ := tc.client.Host(ctx, "host2"); h.AllocatedMemoryMiB != 0 {
		t.Errorf("host2 still has %d MiB allocated after the move back", h.AllocatedMemoryMiB)
	}
}

// A revert whose old host has no room left leaves the VM where it is, at
// its old size, and says why.
func TestResizeHoldRevertNoRoomBack(t *testing.T) {
	tc := newTestClusterSized(t, 2, 1024, 4096)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "app", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256}, MaxVCPUs: 4, MaxMemoryMiB: 1024}); err != nil {
		t.Fatal(err)
	}
	in := holdResize(t, tc.client, "app", api.ResizeRequest{MemoryMiB: 1536, AllowMove: true, AllowRestart: true})
	// Meanwhile another VM takes host1's memory.
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "filler", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 1024}}); err != nil {
		t.Fatal(err)
	}
	started, err := tc.client.RevertResize(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	in = waitIntent(t, tc.client, in.ID, 60*time.Second)
	got, _ := tc.client.VM(ctx, "app")
	if len(started.Operations) != 3 || in.State != api.IntentReverted || got.Host != "host2" || got.Flavor.MemoryMiB != 256 ||
		!containsAll(in.Reason, "stays on host2", "host1 has no room") {
		t.Errorf("reverted without room back: %s (%q) %+v; vm on %s with %+v", in.State, in.Reason, in.Operations, got.Host, got.Flavor)
	}
}

// A resize that grew the disk cannot be reverted: disks never shrink.
// The refusal changes nothing; confirm still works.
func TestResizeHoldRevertDiskRefused(t *testing.T) {
	tc := newTestClusterSized(t, 2, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "app", Image: "guest", Pool: api.PoolShared,
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 64}, MaxVCPUs: 4}); err != nil {
		t.Fatal(err)
	}
	in := holdResize(t, tc.client, "app", api.ResizeRequest{VCPUs: 2, DiskMiB: 128})
	_, err := tc.client.RevertResize(ctx, in.ID)
	wantAPIError(t, err, 409, "disks never shrink")
	wantAPIError(t, err, 409, "godwit intent confirm "+in.ID)
	if got, _ := tc.client.Intent(ctx, in.ID); got.State != api.IntentAwaitingConfirm {
		t.Errorf("a refused revert left the intent %s", got.State)
	}
	if got, err := tc.client.ConfirmResize(ctx, in.ID); err != nil || got.State != api.IntentCompleted {
		t.Errorf("confirm after the refused revert: %v, %s", err, got.State)
	}
}

// A member confirms and reverts its own held resizes; another project's
// read as not found.
func TestResizeHoldMembers(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 4, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	alice, _ := tc.memberClient(t, "alice", "alpha")
	bob, _ := tc.memberClient(t, "bob", "beta")
	if _, err := alice.CreateVM(ctx, api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared,
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}, MaxVCPUs: 4}); err != nil {
		t.Fatal(err)
	}
	in := holdResize(t, alice, "web", api.ResizeRequest{VCPUs: 2})
	_, err := bob.ConfirmResize(ctx, in.ID)
	wantAPIError(t, err, 404, "not found")
	_, err = bob.RevertResize(ctx, in.ID)
	wantAPIError(t, err, 404, "not found")
	if got, err := alice.RevertResize(ctx, in.ID); err != nil || got.State != api.IntentReverting {
		t.Fatalf("alice reverts her resize: %v, %s", err, got.State)
	}
	if got := waitIntent(t, alice, in.ID, 30*time.Second); got.State != api.IntentReverted {
		t.Errorf("alice's revert ended %s (%s)", got.State, got.Reason)
	}
	in = holdResize(t, alice, "web", api.ResizeRequest{VCPUs: 3})
	if got, err := alice.ConfirmResize(ctx, in.ID); err != nil || got.State != api.IntentCompleted {
		t.Errorf("alice confirms her resize: %v, %s", err, got.State)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
