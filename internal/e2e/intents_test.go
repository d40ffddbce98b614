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
)

// waitIntent polls an intent until it ends.
func (c *cluster) waitIntent(id string, d time.Duration) api.Intent {
	c.t.Helper()
	var in api.Intent
	c.eventually(d, "intent "+id+" to end", func() error {
		var err error
		if in, err = c.client.Intent(bg, id); err != nil {
			return err
		}
		if !api.FinalIntent(in.State) {
			return fmt.Errorf("intent is %s", in.State)
		}
		return nil
	})
	return in
}

// Drain of a 3-host cluster's host holding 4 real QEMU VMs, two on the
// shared pool and two with local disks (moved by block copy): every VM runs on another host with its heartbeat counter
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
		c.eventually(120*time.Second, g.name+" writing disk records", func() error {
			hb, err := c.heartbeat(g.name, 0)
			if err == nil && hb.DiskRecords < 2 {
				err = errString("too few records yet")
			}
			return err
		})
	}

	plan, err := c.client.Drain(bg, "host1", api.DrainRequest{DryRun: true, BandwidthMBps: 125})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range plan.Operations {
		t.Logf("plan: %-8s %-5s %-26s %s → %-6s %5d ms  %s", op.VM, op.Kind, op.Strategy, op.Source, op.Dest, op.PredictedMS, op.Reason)
	}
	for _, g := range guests {
		g.before, _ = c.heartbeat(g.name, 0)
	}
	in, err := c.client.Drain(bg, "host1", api.DrainRequest{BandwidthMBps: 125})
	if err != nil {
		t.Fatal(err)
	}
	in = c.waitIntent(in.ID, 300*time.Second)
	if in.State != api.IntentPartial {
		t.Errorf("drain ended %s (%s); want partial: too-big cannot move", in.State, in.Reason)
	}
	for _, op := range in.Operations {
		t.Logf("drain: %-8s %-5s %-8s %s → %-6s %s", op.VM, op.Kind, op.State, op.Source, op.Dest, op.Reason)
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
		if pids := qemuPIDs(g.id); len(pids) != 1 || pids[0] != vm.PID {
			t.Errorf("%s: qemu processes %v; want exactly the one on %s (pid %d)", g.name, pids, vm.Host, vm.PID)
		}
		first := c.firstHeartbeat(g.name)
		if first.Counter < g.before.Counter {
			t.Errorf("%s: first heartbeat on %s is %d, it had reached %d: the guest restarted", g.name, vm.Host, first.Counter, g.before.Counter)
		}
		if g.pool == api.PoolLocal {
			if _, err := os.Stat(filepath.Join(c.stateDir("host1"), "pool", g.id+".qcow2")); !os.IsNotExist(err) {
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
		from := c.consoleLen(g.name)
		during, _ := c.heartbeat(g.name, 0)
		if _, err := c.client.VMAction(bg, g.name, "reboot", api.VMActionRequest{}); err != nil {
			t.Fatal(err)
		}
		hb := c.waitHeartbeatFrom(g.name, from, 0, 120*time.Second)
		if hb.DiskBad != 0 || hb.DiskRecords < during.DiskRecords {
			t.Errorf("%s: after the drain and a reboot the guest verified %d records, %d bad; it had written %d", g.name, hb.DiskRecords, hb.DiskBad, during.DiskRecords)
		}
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
	c := newCluster(t, clusterOpts{hosts: 3, driver: "qemu", downAfter: 3 * time.Second})
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
	var before guestlog.Heartbeat
	c.eventually(120*time.Second, "disk records on the shared disk", func() error {
		var err error
		if before, err = c.heartbeat("keeper", 0); err == nil && before.DiskRecords < 3 {
			err = errString("too few records yet")
		}
		return err
	})
	c.waitHeartbeat("loner", 0, 60*time.Second)
	if _, err := c.client.Evacuate(bg, "host1", api.EvacuateRequest{HostIsDown: true}); !api.IsCode(err, api.CodeConflict) {
		t.Fatalf("evacuate of a live host: %v; want 409", err)
	}

	// The host dies: its agent and its QEMUs.
	c.agents["host1"].kill(t)
	for _, id := range []string{shared.ID, local.ID} {
		for _, pid := range qemuPIDs(id) {
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
		t.Logf("evacuate: %-7s %-7s %-8s %-26s → %-6s %s", op.VM, op.Kind, op.State, op.Strategy, op.Dest, op.Reason)
	}
	if in.State != api.IntentPartial {
		t.Errorf("evacuate ended %s; want partial (the local-disk VM refused)", in.State)
	}
	moved, _ := c.client.VM(bg, "keeper")
	if moved.Host == "host1" || moved.State != api.VMRunning || moved.ID != shared.ID {
		t.Fatalf("keeper is %s on %s; want running elsewhere", moved.State, moved.Host)
	}
	hb := c.waitHeartbeat("keeper", 0, 120*time.Second)
	c.noOops("keeper")
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
	if pids := qemuPIDs(shared.ID); len(pids) != 1 || pids[0] != moved.PID {
		t.Errorf("qemu processes of keeper: %v; want only the one on %s (%d)", pids, moved.Host, moved.PID)
	}
	if _, err := os.Stat(filepath.Join(c.stateDir("host1"), "qemu", "vms", shared.ID)); !os.IsNotExist(err) {
		t.Errorf("host1 kept its state for the evacuated vm: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.sharedDir(), "vms", shared.ID+".qcow2")); err != nil {
		t.Errorf("the shared disk is gone: %v", err)
	}
	c.waitHeartbeat("keeper", hb.Counter+3, 30*time.Second)
	for _, name := range []string{"keeper", "loner"} {
		if err := c.client.DeleteVM(bg, name); err != nil {
			t.Error(err)
		}
	}
}
