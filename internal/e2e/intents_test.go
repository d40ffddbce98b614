package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/hostinfo"
)

// waitIntent polls an intent until it ends.
func (c *cluster) waitIntent(id string, d time.Duration) api.Intent {
	c.t.Helper()
	return waitEnded(c, d, "intent "+id, func() (api.Intent, error) { return c.client.Intent(bg, id) },
		func(in api.Intent) api.IntentState { return in.State })
}

// Drain of a 3-host cluster's host holding 4 real QEMU VMs, two on the
// shared pool and two with local disks (moved by block copy), with the
// controller killed (-9) in the middle: after its restart the drain
// finishes — the interrupted move recovered, retried if it was rolled
// back — and every VM runs on another host with its heartbeat counter
// continuous and its disk records intact; none is lost or duplicated; the
// host is out of scheduling. A fifth VM, stopped and too big for any other
// host, follows the failure policy (skip) and is reported.
func TestDrainQEMU(t *testing.T) {
	requireQEMU(t)
	small := []string{"--memory", "1G"} // too-big fits nowhere else
	c := newCluster(t, clusterOpts{hosts: 3, driver: "qemu", hostArgs: map[string][]string{"host2": small, "host3": small}})
	c.importGuest()
	type guest struct {
		name, pool string
		id         string
		before     guestlog.Heartbeat
	}
	guests := []*guest{{name: "shared-a", pool: api.PoolShared}, {name: "shared-b", pool: api.PoolShared},
		{name: "local-a", pool: api.PoolLocal}, {name: "local-b", pool: api.PoolLocal}}
	for _, g := range guests {
		vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: g.name, Image: "testguest", Pool: g.pool, Host: "host1",
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 64}, Cmdline: "dirty_mb=16 dirty_rate_mb=4"})
		if err != nil {
			t.Fatal(err)
		}
		g.id = vm.ID
	}
	off := false
	big := 1100
	if _, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "too-big", Image: "testguest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: big}, Start: &off}); err != nil {
		t.Fatal(err)
	}
	for _, g := range guests {
		c.waitDiskRecords(g.name, 2, 120*time.Second)
	}

	plan, err := c.client.Drain(bg, "host1", api.DrainRequest{DryRun: true, BandwidthMBps: 125})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range plan.Operations {
		t.Logf("plan: %-8s %-5s %-26s %s → %-6s %5d ms  %s", op.VM, op.Kind, op.Strategy, op.Source, op.Destination, op.PredictedMS, op.Reason)
	}
	for _, g := range guests {
		g.before, _ = c.Heartbeat(bg, g.name, 0)
	}
	in, err := c.client.Drain(bg, "host1", api.DrainRequest{BandwidthMBps: 125})
	if err != nil {
		t.Fatal(err)
	}
	// Kill the controller once the first move is under way.
	c.eventually(60*time.Second, "a migration of the drain to start", func() error {
		cur, err := c.client.Intent(bg, in.ID)
		if err != nil {
			return err
		}
		for _, op := range cur.Operations {
			if op.MigrationID != "" {
				return nil
			}
		}
		return errString("no migration yet")
	})
	c.Controller().Kill()
	t.Log("controller killed mid-drain")
	c.startController()
	in = c.waitIntent(in.ID, 300*time.Second)
	if in.State != api.IntentPartial {
		t.Errorf("drain ended %s (%s); want partial: too-big cannot move", in.State, in.Reason)
	}
	for _, op := range in.Operations {
		t.Logf("drain: %-8s %-5s %-8s %s → %-6s %s", op.VM, op.Kind, op.State, op.Source, op.Destination, op.Reason)
	}
	if op := in.Operations[len(in.Operations)-1]; op.VM != "too-big" || op.State != api.OpSkipped {
		t.Errorf("too-big: %+v; want skipped, last (the plan orders the longest first but it has no move)", op)
	}
	for _, g := range guests {
		vm, _ := c.client.VM(bg, g.name)
		if vm.Host == "host1" || vm.State != api.VMRunning {
			t.Errorf("%s is %s on %s; want running on another host", g.name, vm.State, vm.Host)
			continue
		}
		if pids := hostinfo.QEMUPIDs(g.id); len(pids) != 1 || pids[0] != vm.PID {
			t.Errorf("%s: qemu processes %v; want exactly the one on %s (pid %d)", g.name, pids, vm.Host, vm.PID)
		}
		c.healthy(g.name, g.before.Counter)
		if g.pool == api.PoolLocal {
			if _, err := os.Stat(filepath.Join(c.StateDir("host1"), "pool", g.id+".qcow2")); !os.IsNotExist(err) {
				t.Errorf("%s: the local disk on host1 is still there: %v", g.name, err)
			}
		}
	}
	if h, _ := c.client.Host(bg, "host1"); h.Enabled {
		t.Error("host1 is back in scheduling after its drain")
	}
	// The local disks crossed by block copy: a reboot has the guest verify
	// every record it wrote before and during the move.
	for _, g := range guests[2:] {
		c.rebootVerifies(g.name)
	}
	for _, g := range guests {
		if err := c.client.DeleteVM(bg, g.name); err != nil {
			t.Error(err)
		}
	}
}

// Evacuate on real QEMU: refused while the host may be alive (409 with the
// reason), then, with --host-is-down after its agent and QEMUs were
// killed, the shared-pool VM comes back on another host and finds every
// disk record it wrote; the local-disk VM is refused without
// --allow-data-loss. When the old agent restarts, it does not start the
// evacuated VM: it removes its stale copy and reports it cleaned, and the
// shared disk stays.
func TestEvacuateQEMU(t *testing.T) {
	requireQEMU(t)
	// Renewals every 500 ms: --host-is-down is refused while the lease
	// was renewed lately, and 3 s after the kill it must not have been.
	c := newCluster(t, clusterOpts{hosts: 3, driver: "qemu", downAfter: 3 * time.Second, agentArgs: []string{"--lease-renew", "500ms"}})
	c.importGuest()
	shared, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "keeper", Image: "testguest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 64}})
	if err != nil {
		t.Fatal(err)
	}
	local, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "loner", Image: "testguest", Pool: api.PoolLocal, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 64}})
	if err != nil {
		t.Fatal(err)
	}
	before := c.waitDiskRecords("keeper", 3, 120*time.Second)
	c.waitHeartbeat("loner", 0, 60*time.Second)
	if _, err := c.client.Evacuate(bg, "host1", api.EvacuateRequest{HostIsDown: true}); !api.IsCode(err, api.CodeConflict) {
		t.Fatalf("evacuate of a live host: %v; want 409", err)
	}

	// The host dies: its agent and its QEMUs.
	c.Agent("host1").Kill()
	for _, id := range []string{shared.ID, local.ID} {
		for _, pid := range hostinfo.QEMUPIDs(id) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	c.eventually(15*time.Second, "host1 down", func() error {
		if h, err := c.client.Host(bg, "host1"); err != nil || h.State != api.HostDown {
			return fmt.Errorf("host1 is %s (%v)", h.State, err)
		}
		return nil
	})
	_, err = c.client.Evacuate(bg, "host1", api.EvacuateRequest{})
	if !api.IsCode(err, api.CodeConflict) {
		t.Fatalf("evacuate without proof of death: %v; want 409", err)
	}
	t.Logf("refused without proof: %v", err)

	in, err := c.client.Evacuate(bg, "host1", api.EvacuateRequest{HostIsDown: true})
	if err != nil {
		t.Fatal(err)
	}
	in = c.waitIntent(in.ID, 120*time.Second)
	for _, op := range in.Operations {
		t.Logf("evacuate: %-7s %-7s %-8s %-26s → %-6s %s", op.VM, op.Kind, op.State, op.Strategy, op.Destination, op.Reason)
	}
	if in.State != api.IntentPartial {
		t.Errorf("evacuate ended %s; want partial (the local-disk VM refused)", in.State)
	}
	moved, _ := c.client.VM(bg, "keeper")
	if moved.Host == "host1" || moved.State != api.VMRunning || moved.ID != shared.ID {
		t.Fatalf("keeper is %s on %s; want running elsewhere", moved.State, moved.Host)
	}
	hb := c.waitHeartbeat("keeper", 0, 120*time.Second)
	c.noTrouble("keeper")
	if hb.DiskBad != 0 || hb.DiskRecords < before.DiskRecords {
		t.Errorf("rebuilt on %s the guest verified %d records, %d bad; it had written %d on host1", moved.Host, hb.DiskRecords, hb.DiskBad, before.DiskRecords)
	}
	if lo, _ := c.client.VM(bg, "loner"); lo.Host != "host1" {
		t.Errorf("the local-disk vm moved to %s without --allow-data-loss", lo.Host)
	}

	// host1 returns. It must not start keeper; it removes its copy.
	c.startAgent("host1")
	c.eventually(30*time.Second, "host1's stale copy removed", func() error {
		vm, err := c.client.VM(bg, "keeper")
		if err == nil && len(vm.StaleCopies) > 0 {
			err = fmt.Errorf("stale copies on %v", vm.StaleCopies)
		}
		return err
	})
	if pids := hostinfo.QEMUPIDs(shared.ID); len(pids) != 1 || pids[0] != moved.PID {
		t.Errorf("qemu processes of keeper: %v; want only the one on %s (%d)", pids, moved.Host, moved.PID)
	}
	if _, err := os.Stat(filepath.Join(c.StateDir("host1"), "qemu", "vms", shared.ID)); !os.IsNotExist(err) {
		t.Errorf("host1 kept its state for the evacuated vm: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.SharedDir(), "vms", shared.ID+".qcow2")); err != nil {
		t.Errorf("the shared disk is gone: %v", err)
	}
	c.waitHeartbeat("keeper", hb.Counter+3, 30*time.Second)

	// The local-disk VM the evacuation refused is reimaged in place now
	// that its host is back: same host and id, a fresh disk.
	lonerBefore, _ := c.Heartbeat(bg, "loner", 0)
	rb, err := c.client.Rebuild(bg, "loner", api.RebuildRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rb = c.waitIntent(rb.ID, 120*time.Second); rb.State != api.IntentCompleted {
		t.Fatalf("rebuild ended %s: %+v", rb.State, rb.Operations)
	}
	lo, _ := c.client.VM(bg, "loner")
	if lo.Host != "host1" || lo.ID != local.ID || lo.State != api.VMRunning || lo.PID == 0 {
		t.Errorf("rebuilt loner: %s on %s pid %d", lo.State, lo.Host, lo.PID)
	}
	fresh := c.healthy("loner", 0).First // the console is new too
	if fresh.DiskBad != 0 || (lonerBefore.DiskRecords > 1 && fresh.DiskRecords >= lonerBefore.DiskRecords) {
		t.Errorf("rebuilt loner's disk: %d records at first, %d bad; it had %d before: not a fresh disk", fresh.DiskRecords, fresh.DiskBad, lonerBefore.DiskRecords)
	}
	t.Logf("rebuild in place: loner runs again on host1 (pid %d), %d records on its fresh disk (had %d)", lo.PID, fresh.DiskRecords, lonerBefore.DiskRecords)
	for _, name := range []string{"keeper", "loner"} {
		if err := c.client.DeleteVM(bg, name); err != nil {
			t.Error(err)
		}
	}
}

// Online resize on real QEMU: vCPUs 1→2, memory up and then down, the
// disk 1→2 GiB; the guest reports each new size and the QEMU process is
// the same one throughout. Then a resize its host has no room for is
// refused, and with --allow-move it becomes a live migration to a host
// with room followed by the resize, the guest running throughout.
func TestResizeQEMU(t *testing.T) {
	requireQEMU(t)
	c := newCluster(t, clusterOpts{hosts: 2, driver: "qemu", hostArgs: map[string][]string{"host1": {"--memory", "768M"}}})
	c.importGuest()
	vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "elastic", Image: "testguest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 1024}, MaxMemoryMiB: 1024, Cmdline: "dirty_mb=16 dirty_rate_mb=4"})
	if err != nil {
		t.Fatal(err)
	}
	start := c.waitHeartbeat("elastic", 3, 120*time.Second)
	resize := func(req api.ResizeRequest) api.Intent {
		t.Helper()
		in, err := c.client.Resize(bg, "elastic", req)
		if err != nil {
			t.Fatal(err)
		}
		in = c.waitIntent(in.ID, 180*time.Second)
		for _, op := range in.Operations {
			t.Logf("resize %+v: %s %s %s via %s: %s", req, op.Kind, op.State, op.Destination, op.Strategy, op.Reason)
		}
		if in.State != api.IntentCompleted {
			t.Fatalf("resize %+v ended %s: %s", req, in.State, in.Reason)
		}
		return in
	}
	// guestSees waits until the guest's heartbeat shows what check wants.
	guestSees := func(what string, check func(guestlog.Heartbeat) bool) guestlog.Heartbeat {
		t.Helper()
		return c.waitGuest("elastic", 0, 60*time.Second, "the guest to see "+what, func(hb guestlog.Heartbeat) error {
			if !check(hb) {
				return fmt.Errorf("guest reports cpus=%d mem_mib=%d disk_mib=%d", hb.CPUs, hb.MemMiB, hb.DiskMiB)
			}
			return nil
		})
	}

	resize(api.ResizeRequest{VCPUs: 2, MemoryMiB: 640, DiskMiB: 2048})
	up := guestSees("2 vCPUs, more memory and a 2 GiB disk", func(hb guestlog.Heartbeat) bool {
		return hb.CPUs == 2 && hb.MemMiB >= start.MemMiB+300 && hb.DiskMiB == 2048
	})
	resize(api.ResizeRequest{MemoryMiB: 384})
	down := guestSees("less memory", func(hb guestlog.Heartbeat) bool { return hb.MemMiB <= up.MemMiB-200 })
	got, _ := c.client.VM(bg, "elastic")
	if got.PID != vm.PID || got.Host != "host1" {
		t.Errorf("after online resizes the vm runs as pid %d on %s; want pid %d on host1", got.PID, got.Host, vm.PID)
	}
	if got.Flavor.VCPUs != 2 || got.Flavor.DiskMiB != 2048 || got.Flavor.MemoryMiB > 384+64 {
		t.Errorf("recorded flavor %+v", got.Flavor)
	}
	if hb := c.waitHeartbeat("elastic", down.Counter+2, 30*time.Second); hb.Counter < start.Counter {
		t.Errorf("heartbeat went back from %d to %d: the guest restarted", start.Counter, hb.Counter)
	}
	c.healthy("elastic", 0)
	t.Logf("guest saw: cpus %d→%d, mem_mib %d→%d→%d, disk_mib %d→%d; pid %d throughout",
		start.CPUs, up.CPUs, start.MemMiB, up.MemMiB, down.MemMiB, start.DiskMiB, up.DiskMiB, got.PID)

	// host1 offers 768 MiB: the VM holds 384 of it and cannot grow to
	// 1 GiB there.
	if _, err := c.client.Resize(bg, "elastic", api.ResizeRequest{MemoryMiB: 1024}); !api.IsCode(err, api.CodeNoCapacity) {
		t.Fatalf("resize beyond the host's room: %v; want no capacity", err)
	}
	before, _ := c.Heartbeat(bg, "elastic", 0)
	// It holds 128 MiB of hot-plugged memory: under TCG it cannot move
	// live (scheduler.RefuseLive), so the move is cold; under KVM, live.
	in := resize(api.ResizeRequest{MemoryMiB: 1024, AllowMove: true})
	wantMove := api.OpLive
	if h, _ := c.client.Host(bg, "host1"); h.Accelerator == "tcg" {
		wantMove = api.OpCold
	}
	if len(in.Operations) != 2 || in.Operations[0].Kind != wantMove || in.Operations[1].Kind != api.OpResize {
		t.Errorf("operations %+v; want a %s migration, then the resize", in.Operations, wantMove)
	}
	moved, _ := c.client.VM(bg, "elastic")
	if moved.Host != "host2" || moved.Flavor.MemoryMiB != 1024 || moved.State != api.VMRunning {
		t.Errorf("after resize --allow-move: %s on %s with %+v", moved.State, moved.Host, moved.Flavor)
	}
	if wantMove == api.OpLive {
		c.healthy("elastic", before.Counter)
	} else {
		c.noTrouble("elastic")
	}
	guestSees("1 GiB", func(hb guestlog.Heartbeat) bool { return hb.MemMiB >= down.MemMiB+500 })
	if err := c.client.DeleteVM(bg, "elastic"); err != nil {
		t.Fatal(err)
	}
}
