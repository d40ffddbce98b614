package controller_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

func waitIntent(t *testing.T, c *api.Client, id string, within time.Duration) api.Intent {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		in, err := c.Intent(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if in.State.Final() {
			return in
		}
		if time.Now().After(deadline) {
			t.Fatalf("intent %s still %s: %+v", id, in.State, in.Operations)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func opOf(in api.Intent, vm string) api.Operation {
	for _, op := range in.Operations {
		if op.VM == vm {
			return op
		}
	}
	return api.Operation{}
}

func wantAPIError(t *testing.T, err error, status int, contains string) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != status || !strings.Contains(ae.Message, contains) {
		t.Fatalf("err = %v; want %d containing %q", err, status, contains)
	}
}

// A drain's plan names, per VM, the service operation, the driver
// strategy and the destination, and changes nothing; the drain then moves
// every VM that can move, and the one that cannot (no room anywhere)
// follows the failure policy and is reported.
func TestDrainPlanAndPolicy(t *testing.T) {
	tc := newTestClusterSized(t, 4, 8192, 2048, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	mk := func(name, pool string, mem, disk int) {
		if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: "guest", Pool: pool, Host: "host1",
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: mem, DiskMiB: disk}}); err != nil {
			t.Fatal(err)
		}
	}
	mk("shared-a", api.PoolShared, 256, 64)
	mk("shared-b", api.PoolShared, 512, 64)
	mk("local-a", api.PoolLocal, 256, 64)
	mk("huge", api.PoolShared, 3072, 0) // no other host has room
	mk("off", api.PoolLocal, 128, 64)
	if _, err := tc.client.VMAction(ctx, "off", "stop", api.VMActionRequest{Force: true}); err != nil {
		t.Fatal(err)
	}

	plan, err := tc.client.Drain(ctx, "host1", api.DrainRequest{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if plan.State != api.IntentPlanned || plan.ID != "" || len(plan.Operations) != 5 {
		t.Fatalf("plan = %+v", plan)
	}
	// The default bandwidth is said in the cap's unit, MB/s.
	if notes := strings.Join(plan.Notes, "\n"); !strings.Contains(notes, "crosses at 134 MB/s (QEMU's default cap, 128 MiB/s)") {
		t.Errorf("plan notes:\n%s\nwant the default bandwidth in MB/s", notes)
	}
	// An older client's cap, under the old name, is the same cap.
	old, err := tc.client.Drain(ctx, "host1", api.DrainRequest{DryRun: true, BandwidthMBps: 125})
	if err != nil || old.Params.BandwidthMBPerS != 125 || !strings.Contains(strings.Join(old.Notes, "\n"), "crosses at 125 MB/s;") {
		t.Errorf("drain with bandwidth_mbps 125: %v, params %+v, notes %q", err, old.Params, old.Notes)
	}
	for vm, want := range map[string]struct {
		kind     api.OperationKind
		strategy api.Strategy
	}{
		"shared-a": {api.OpLive, "shared-storage/pre-copy"},
		"local-a":  {api.OpLive, "block-copy/pre-copy"},
		"off":      {api.OpCold, "local-disk/disk-transfer"},
	} {
		op := opOf(plan, vm)
		if op.Kind != want.kind || op.Strategy != want.strategy || op.Destination == "" || op.Destination == "host1" || op.PredictedMS <= 0 {
			t.Errorf("plan for %s = %+v; want %s via %s to another host, with a prediction", vm, op, want.kind, want.strategy)
		}
	}
	if op := opOf(plan, "huge"); op.Destination != "" || !strings.Contains(op.Reason, "MiB memory free") || !strings.Contains(op.Reason, "stays on host1") {
		t.Errorf("plan for huge = %+v; want no destination and the reason", op)
	}
	if plan.Operations[0].VM != "huge" && plan.Operations[0].VM != "shared-b" {
		t.Errorf("plan order %v; want the longest move first", plan.Operations)
	}
	if h, _ := tc.client.Host(ctx, "host1"); !h.Enabled {
		t.Fatal("a dry run disabled the host")
	}
	if ins, _ := tc.client.Intents(ctx); len(ins) != 0 {
		t.Fatalf("a dry run recorded intents: %+v", ins)
	}

	in, err := tc.client.Drain(ctx, "host1", api.DrainRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := tc.client.Host(ctx, "host1"); h.Enabled {
		t.Error("host1 still enabled after the drain started")
	}
	if _, err := tc.client.Drain(ctx, "host1", api.DrainRequest{}); err == nil {
		t.Error("a second drain of host1 was accepted")
	}
	in = waitIntent(t, tc.client, in.ID, 60*time.Second)
	if in.State != api.IntentPartial {
		t.Errorf("drain ended %s (%s); want partial", in.State, in.Reason)
	}
	for _, op := range in.Operations {
		vm, _ := tc.client.VM(ctx, op.VM)
		switch op.VM {
		case "huge":
			if op.State != api.OpSkipped || vm.Host != "host1" || vm.State != api.VMRunning {
				t.Errorf("huge: op %+v, vm on %s %s; want skipped, still running on host1", op, vm.Host, vm.State)
			}
		default:
			if op.State != api.OpDone || vm.Host == "host1" || vm.Host != op.Destination || op.MigrationID == "" {
				t.Errorf("%s: op %+v, vm on %s; want done on its destination", op.VM, op, vm.Host)
			}
		}
	}
	if vm, _ := tc.client.VM(ctx, "off"); vm.State != api.VMStopped {
		t.Errorf("stopped vm is %s after its cold move; want stopped", vm.State)
	}
	m, _ := tc.client.Migrations(ctx, "shared-a")
	if len(m) != 1 || m[0].Intent != in.ID || m[0].Kind != api.KindLive {
		t.Errorf("shared-a's migrations = %+v; want one live, linked to the drain", m)
	}

	// The policy "stop" shuts the VM that cannot move down where it is.
	if _, err := tc.client.SetHostEnabled(ctx, "host1", true); err != nil {
		t.Fatal(err)
	}
	in, err = tc.client.Drain(ctx, "host1", api.DrainRequest{OnFailure: api.OnFailureStop})
	if err != nil {
		t.Fatal(err)
	}
	in = waitIntent(t, tc.client, in.ID, 60*time.Second)
	if op := opOf(in, "huge"); op.Kind != api.OpStop || op.State != api.OpDone {
		t.Errorf("huge under on-failure stop: %+v", op)
	}
	if vm, _ := tc.client.VM(ctx, "huge"); vm.State != api.VMStopped || vm.Host != "host1" {
		t.Errorf("huge is %s on %s; want stopped on host1", vm.State, vm.Host)
	}
}

func TestDrainBadInput(t *testing.T) {
	tc := newTestCluster(t, 2, 2048)
	ctx := context.Background()
	_, err := tc.client.Drain(ctx, "nope", api.DrainRequest{})
	wantAPIError(t, err, 404, "godwit host list")
	_, err = tc.client.Drain(ctx, "host1", api.DrainRequest{OnFailure: "panic"})
	wantAPIError(t, err, 400, "skip, cold, stop or abort")
	_, err = tc.client.Drain(ctx, "host1", api.DrainRequest{MaxPerSource: 1000})
	wantAPIError(t, err, 400, "max_per_source")
	_, err = tc.client.Evacuate(ctx, "host1", api.EvacuateRequest{HostIsDown: true})
	wantAPIError(t, err, 409, "godwit drain host1")
	if h, _ := tc.client.Host(ctx, "host1"); !h.Enabled {
		t.Error("a refused request disabled the host")
	}
}

// Cancelling a drain with abort_running rolls the running migration back
// and starts nothing more; every VM stays where it was.
func TestDrainCancel(t *testing.T) {
	tc := newTestClusterSized(t, 4, 2048, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	for _, name := range []string{"a", "b", "c"} {
		// Never converges at 1 MB/s with plain pre-copy: the migration
		// runs until aborted.
		if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: "guest", Pool: api.PoolShared, Host: "host1",
			Cmdline: "dirty_mb=64 dirty_rate_mb=50", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}}); err != nil {
			t.Fatal(err)
		}
	}
	in, err := tc.client.Drain(ctx, "host1", api.DrainRequest{BandwidthMBPerS: 1, MaxPerSource: 1, Policy: api.PolicyPreCopy})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cur, _ := tc.client.Intent(ctx, in.ID)
		if cur.Operations[0].MigrationID != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no migration started: %+v", cur.Operations)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := tc.client.CancelIntent(ctx, in.ID, api.CancelIntentRequest{AbortRunning: true}); err != nil {
		t.Fatal(err)
	}
	in = waitIntent(t, tc.client, in.ID, 30*time.Second)
	if in.State != api.IntentCancelled {
		t.Errorf("state %s; want cancelled", in.State)
	}
	for _, op := range in.Operations {
		if vm, _ := tc.client.VM(ctx, op.VM); vm.Host != "host1" || vm.State != api.VMRunning {
			t.Errorf("%s is %s on %s; want running on host1", op.VM, vm.State, vm.Host)
		}
		if op.State == api.OpDone || op.State == api.OpPending || op.State == api.OpRunning {
			t.Errorf("%s ended %s", op.VM, op.State)
		}
	}
	if _, err := tc.client.CancelIntent(ctx, in.ID, api.CancelIntentRequest{}); err == nil {
		t.Error("cancelling an ended intent was accepted")
	}
	if _, err := tc.client.SetHostEnabled(ctx, "host1", true); err != nil {
		t.Errorf("enable after a cancelled drain: %v", err)
	}
}

// Evacuate refuses a host that may be alive; once the operator confirms
// it is down, shared-pool VMs come back elsewhere on their disks, local
// ones are refused without consent to data loss, and the host, when it
// returns, removes its stale copies instead of running them.
func TestEvacuate(t *testing.T) {
	tc := newTestClusterSized(t, 4, 2048, 2048, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	for _, vm := range []struct{ name, pool string }{{"s1", api.PoolShared}, {"s2", api.PoolShared}, {"l1", api.PoolLocal}} {
		if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: vm.name, Image: "guest", Pool: vm.pool, Host: "host1",
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 64}}); err != nil {
			t.Fatal(err)
		}
	}
	s1, _ := tc.client.VM(ctx, "s1")
	_, err := tc.client.Evacuate(ctx, "host1", api.EvacuateRequest{HostIsDown: true})
	wantAPIError(t, err, 409, "is up")

	tc.stopAgent(1)
	deadline := time.Now().Add(15 * time.Second)
	for h, _ := tc.client.Host(ctx, "host1"); h.State != api.HostDown; h, _ = tc.client.Host(ctx, "host1") {
		if time.Now().After(deadline) {
			t.Fatal("host1 not marked down")
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err = tc.client.Evacuate(ctx, "host1", api.EvacuateRequest{})
	wantAPIError(t, err, 409, "--host-is-down")

	plan, err := tc.client.Evacuate(ctx, "host1", api.EvacuateRequest{HostIsDown: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if op := opOf(plan, "s1"); op.Kind != api.OpRebuild || op.Strategy != "shared-storage/reuse-disk" || op.Destination == "" {
		t.Errorf("plan for s1 = %+v", op)
	}
	if op := opOf(plan, "l1"); op.Kind != api.OpNone || !strings.Contains(op.Reason, "--allow-data-loss") {
		t.Errorf("plan for l1 = %+v", op)
	}

	in, err := tc.client.Evacuate(ctx, "host1", api.EvacuateRequest{HostIsDown: true})
	if err != nil {
		t.Fatal(err)
	}
	in = waitIntent(t, tc.client, in.ID, 30*time.Second)
	if in.State != api.IntentPartial {
		t.Errorf("evacuate ended %s; want partial (l1 refused)", in.State)
	}
	for _, name := range []string{"s1", "s2"} {
		vm, _ := tc.client.VM(ctx, name)
		if vm.Host == "host1" || vm.State != api.VMRunning || vm.ID != s1.ID && name == "s1" {
			t.Errorf("%s: %s on %s; want running elsewhere, same id", name, vm.State, vm.Host)
		}
		if len(vm.StaleCopies) != 1 || vm.StaleCopies[0] != "host1" {
			t.Errorf("%s: stale copies %v; want host1", name, vm.StaleCopies)
		}
	}
	if vm, _ := tc.client.VM(ctx, "l1"); vm.Host != "host1" {
		t.Errorf("l1 moved to %s without consent to data loss", vm.Host)
	}

	// With consent to lose its data, the local-disk VM is rebuilt from
	// its image elsewhere.
	in, err = tc.client.Evacuate(ctx, "host1", api.EvacuateRequest{HostIsDown: true, AllowDataLoss: true})
	if err != nil {
		t.Fatal(err)
	}
	in = waitIntent(t, tc.client, in.ID, 30*time.Second)
	if op := opOf(in, "l1"); in.State != api.IntentCompleted || op.Strategy != "local-disk/reimage" || op.State != api.OpDone {
		t.Errorf("evacuate --allow-data-loss: %s, l1 %+v", in.State, op)
	}
	if vm, _ := tc.client.VM(ctx, "l1"); vm.Host == "host1" || vm.State != api.VMRunning {
		t.Errorf("l1 is %s on %s; want running elsewhere", vm.State, vm.Host)
	}

	// host1 returns: it must remove its copies of s1 and s2 (keeping the
	// shared disks the new copies use), never run them.
	tc.startAgent(t, 1)
	deadline = time.Now().Add(15 * time.Second)
	for {
		a, _ := tc.client.VM(ctx, "s1")
		b, _ := tc.client.VM(ctx, "s2")
		l, _ := tc.client.VM(ctx, "l1")
		if len(a.StaleCopies) == 0 && len(b.StaleCopies) == 0 && len(l.StaleCopies) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stale copies not cleaned: s1 %v, s2 %v", a.StaleCopies, b.StaleCopies)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, name := range []string{"s1", "s2"} {
		if vm, _ := tc.client.VM(ctx, name); vm.State != api.VMRunning {
			t.Errorf("%s is %s after host1 cleaned its copy; want running on %s", name, vm.State, vm.Host)
		}
	}
}

// Rebuild reimages a VM in place: same host, same id, the new image; its
// dry run says the disk's data is lost and changes nothing.
func TestRebuild(t *testing.T) {
	tc := newTestCluster(t, 2, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	tc.importFakeKernel(t, "guest2")
	vm, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "app", Image: "guest", Pool: api.PoolLocal,
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 64}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.client.Rebuild(ctx, "app", api.RebuildRequest{Image: "nope"})
	wantAPIError(t, err, 400, "godwit image list")
	_, err = tc.client.Rebuild(ctx, "ghost", api.RebuildRequest{})
	wantAPIError(t, err, 404, "godwit vm list")

	plan, err := tc.client.Rebuild(ctx, "app", api.RebuildRequest{Image: "guest2", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if op := plan.Operations[0]; plan.State != api.IntentPlanned || op.Kind != api.OpRebuild || op.Destination != vm.Host || op.Strategy != "in-place/reimage" ||
		len(plan.Notes) == 0 || !strings.Contains(plan.Notes[0], "data on it is lost") {
		t.Errorf("plan = %+v", plan)
	}
	if got, _ := tc.client.VM(ctx, "app"); got.Image != "guest" {
		t.Fatalf("a dry run changed the image to %s", got.Image)
	}
	in, err := tc.client.Rebuild(ctx, "app", api.RebuildRequest{Image: "guest2"})
	if err != nil {
		t.Fatal(err)
	}
	in = waitIntent(t, tc.client, in.ID, 30*time.Second)
	got, _ := tc.client.VM(ctx, "app")
	if in.State != api.IntentCompleted || got.Image != "guest2" || got.Host != vm.Host || got.ID != vm.ID || got.State != api.VMRunning {
		t.Errorf("after rebuild: intent %s (%s), vm %+v", in.State, in.Reason, got)
	}
}

// Resize refuses what it cannot do with a message that says what to do,
// and its dry run names the strategy without changing anything.
func TestResizeRequests(t *testing.T) {
	tc := newTestClusterSized(t, 2, 2048, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "app", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 64}, MaxVCPUs: 4, MaxMemoryMiB: 1024}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		req    api.ResizeRequest
		status int
		msg    string
	}{
		{"nothing", api.ResizeRequest{}, 400, "nothing to resize"},
		{"same", api.ResizeRequest{VCPUs: 1}, 400, "nothing to change"},
		{"disk shrink", api.ResizeRequest{DiskMiB: 32}, 400, "shrinking a disk is refused"},
		{"above ceiling", api.ResizeRequest{VCPUs: 8}, 422, "--allow-restart"},
		{"below boot memory", api.ResizeRequest{MemoryMiB: 128}, 422, "booted with"},
		{"no room", api.ResizeRequest{MemoryMiB: 1024, VCPUs: 9, AllowRestart: true}, 507, "--allow-move"},
		{"absurd memory", api.ResizeRequest{MemoryMiB: 1}, 400, "memory_mib"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tc.client.Resize(ctx, "app", tt.req)
			var ae *api.Error
			if !errors.As(err, &ae) || !strings.Contains(ae.Message, tt.msg) {
				t.Fatalf("err = %v; want one containing %q", err, tt.msg)
			}
			if tt.status != 507 && ae.Status != tt.status {
				t.Errorf("status %d; want %d", ae.Status, tt.status)
			}
		})
	}
	plan, err := tc.client.Resize(ctx, "app", api.ResizeRequest{VCPUs: 2, MemoryMiB: 512, DiskMiB: 128, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if op := plan.Operations[0]; len(plan.Operations) != 1 || op.Kind != api.OpResize || op.Strategy != "online/hotplug" || op.Destination != "host1" {
		t.Errorf("plan = %+v", plan.Operations)
	}
	if vm, _ := tc.client.VM(ctx, "app"); vm.Flavor.VCPUs != 1 || vm.Flavor.MemoryMiB != 256 {
		t.Errorf("a dry run changed the flavor: %+v", vm.Flavor)
	}
}

// Resize on the fake driver, through the agents: online within the
// ceilings (same process), a restart in place above them with consent, a
// stopped VM's definition, and --allow-move when its host is full.
func TestResize(t *testing.T) {
	tc := newTestClusterSized(t, 2, 1024, 4096)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	vm, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "app", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 64}, MaxVCPUs: 4, MaxMemoryMiB: 1024})
	if err != nil {
		t.Fatal(err)
	}
	run := func(req api.ResizeRequest) (api.Intent, api.VM) {
		t.Helper()
		in, err := tc.client.Resize(ctx, "app", req)
		if err != nil {
			t.Fatal(err)
		}
		in = waitIntent(t, tc.client, in.ID, 30*time.Second)
		if in.State != api.IntentCompleted {
			t.Fatalf("resize %+v ended %s: %+v", req, in.State, in.Operations)
		}
		got, _ := tc.client.VM(ctx, "app")
		return in, got
	}
	in, got := run(api.ResizeRequest{VCPUs: 2, MemoryMiB: 512, DiskMiB: 128})
	if op := in.Operations[0]; op.Strategy != "online/hotplug" || got.PID != vm.PID || got.Flavor != (api.Flavor{VCPUs: 2, MemoryMiB: 512, DiskMiB: 128}) {
		t.Errorf("online resize: op %+v, vm pid %d (was %d) flavor %+v", op, got.PID, vm.PID, got.Flavor)
	}
	in, got = run(api.ResizeRequest{VCPUs: 6, AllowRestart: true})
	if op := in.Operations[0]; op.Strategy != "offline/restart" || got.PID == vm.PID || got.Flavor.VCPUs != 6 || got.MaxVCPUs < 6 || got.State != api.VMRunning {
		t.Errorf("restart resize: op %+v, vm %+v", op, got)
	}
	if h, _ := tc.client.Host(ctx, "host1"); h.AllocatedCPUs != 6 || h.AllocatedMemoryMiB != 512 {
		t.Errorf("host1 allocations %d vCPUs %d MiB; want the new flavor's 6 and 512", h.AllocatedCPUs, h.AllocatedMemoryMiB)
	}
	if _, err := tc.client.VMAction(ctx, "app", "stop", api.VMActionRequest{Force: true}); err != nil {
		t.Fatal(err)
	}
	in, got = run(api.ResizeRequest{MemoryMiB: 768})
	if op := in.Operations[0]; op.Strategy != "offline/definition" || got.Flavor.MemoryMiB != 768 || got.State != api.VMStopped {
		t.Errorf("stopped resize: op %+v, vm %+v", op, got)
	}
	if _, err := tc.client.VMAction(ctx, "app", "start", api.VMActionRequest{}); err != nil {
		t.Fatal(err)
	}
	// host1 offers 1 GiB: 1.5 GiB does not fit; with --allow-move the
	// VM moves live to host2 and grows there.
	_, err = tc.client.Resize(ctx, "app", api.ResizeRequest{MemoryMiB: 1536, AllowRestart: true})
	wantAPIError(t, err, 409, "--allow-move")
	in, got = run(api.ResizeRequest{MemoryMiB: 1536, AllowMove: true, AllowRestart: true})
	if len(in.Operations) != 2 || in.Operations[0].Kind != api.OpLive || in.Operations[0].State != api.OpDone || got.Host != "host2" || got.Flavor.MemoryMiB != 1536 {
		t.Errorf("resize with move: %+v; vm on %s with %+v", in.Operations, got.Host, got.Flavor)
	}
}

// The policy "abort" stops a drain at the first VM that cannot move: the
// moves not yet started never start, and the drain ends failed.
func TestDrainAbortPolicy(t *testing.T) {
	tc := newTestClusterSized(t, 4, 8192, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	for _, vm := range []struct {
		name string
		mem  int
	}{{"huge", 4096}, {"small-a", 128}, {"small-b", 128}} {
		if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: vm.name, Image: "guest", Pool: api.PoolShared, Host: "host1",
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: vm.mem}}); err != nil {
			t.Fatal(err)
		}
	}
	in, err := tc.client.Drain(ctx, "host1", api.DrainRequest{OnFailure: api.OnFailureAbort, MaxPerSource: 1})
	if err != nil {
		t.Fatal(err)
	}
	in = waitIntent(t, tc.client, in.ID, 30*time.Second)
	if in.State != api.IntentFailed || !strings.Contains(in.Reason, "huge") {
		t.Errorf("drain ended %s (%s); want failed naming huge", in.State, in.Reason)
	}
	if op := opOf(in, "huge"); op.State != api.OpFailed {
		t.Errorf("huge: %+v", op)
	}
	for _, name := range []string{"small-a", "small-b"} {
		op := opOf(in, name)
		vm, _ := tc.client.VM(ctx, name)
		if op.State != api.OpCancelled || vm.Host != "host1" {
			t.Errorf("%s: op %s, on %s; want cancelled, still on host1", name, op.State, vm.Host)
		}
	}
}
