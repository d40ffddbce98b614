package e2e

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/hostinfo"
)

// The controller is killed (SIGKILL, by a failpoint) at each named step of
// a drain and of an evacuation of a host holding three shared-pool VMs;
// after its restart the intent ends completed, every VM runs on exactly
// one host other than the drained or dead one, its record says which, and
// no claim is left. Fake driver (docs/reliability.md has the table).
func TestControllerKilledDuringIntents(t *testing.T) {
	table := intentKillMatrix(t, "fake", 3)
	t.Logf("controller kill -9 at each intent step → outcome after restart:\n%s", strings.Join(table, "\n"))
	faultTable(t, "intent-kills", table)
}

// The same on real QEMU with two guests that write memory and disk
// records (make test-faults only: six clusters of TCG guests take
// minutes). Beyond the fake driver's checks: a drained guest's heartbeat
// counter never went back, an evacuated one (rebuilt on its shared disk)
// verified every disk record it wrote, and one QEMU of each VM remains.
func TestControllerKilledDuringIntentsQEMU(t *testing.T) {
	requireQEMU(t)
	if os.Getenv("GODWIT_FAULTS_FULL") == "" {
		t.Skip("the real-QEMU intent matrix runs under make test-faults (GODWIT_FAULTS_FULL=1); CI runs it on the fake driver")
	}
	table := intentKillMatrix(t, "qemu", 2)
	t.Logf("controller kill -9 at each intent step (QEMU) → outcome after restart:\n%s", strings.Join(table, "\n"))
	faultTable(t, "intent-kills-qemu", table)
}

// intentKillMatrix drains and evacuates host1 of n shared-pool VMs with
// the controller killed at each step, and returns the table.
func intentKillMatrix(t *testing.T, driver string, n int) []string {
	var table []string
	for _, step := range []string{"after-plan", "move-started", "move-done"} {
		t.Run("drain-"+step, func(t *testing.T) {
			c := newCluster(t, clusterOpts{hosts: 3, driver: driver})
			vms, before := c.intentVictims(n)
			c.armController("drain/" + step)
			// Capped, as every real-QEMU migration in the tests.
			_, _ = c.client.Drain(bg, "host1", api.DrainRequest{BandwidthMBps: 125}) // the reply may never come
			out := c.intentAfterKill("drain/"+step, vms, []string{"host1", "host2", "host3"})
			c.intentGuestsSurvived(vms, api.KindLive, before)
			table = append(table, fmt.Sprintf("%-8s %-15s %s", "drain", step, out))
		})
	}
	for _, step := range []string{"after-plan", "before-rebuild", "after-rebuild"} {
		t.Run("evacuate-"+step, func(t *testing.T) {
			// Renewals every 500 ms: --host-is-down is refused while the
			// lease was renewed lately (as in TestEvacuateQEMU).
			c := newCluster(t, clusterOpts{hosts: 3, driver: driver, downAfter: 3 * time.Second,
				agentArgs: []string{"--lease-renew", "500ms"}})
			vms, before := c.intentVictims(n)
			c.armController("evacuate/" + step)
			// The host dies: its agent, and its QEMUs with it.
			c.Agent("host1").Kill()
			for _, vm := range vms {
				for _, pid := range hostinfo.QEMUPIDs(vm.ID) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			c.eventually(15*time.Second, "host1 down", func() error {
				if h, err := c.client.Host(bg, "host1"); err != nil || h.State != api.HostDown {
					return fmt.Errorf("host1 is %s (%v)", h.State, err)
				}
				return nil
			})
			c.eventually(15*time.Second, "evacuate accepted", func() error {
				_, err := c.client.Evacuate(bg, "host1", api.EvacuateRequest{HostIsDown: true})
				if api.IsCode(err, api.CodeConflict) {
					return err // the lease not lapsed yet
				}
				return nil // accepted, or the controller died answering
			})
			out := c.intentAfterKill("evacuate/"+step, vms, []string{"host2", "host3"})
			c.intentGuestsSurvived(vms, api.KindCold, before)
			table = append(table, fmt.Sprintf("%-8s %-15s %s", "evacuate", step, out))
		})
	}
	return table
}

// intentVictims creates n running shared-pool VMs on host1 and, on QEMU,
// returns each guest's heartbeat once it runs and writes disk records.
func (c *cluster) intentVictims(n int) ([]api.VM, map[string]guestlog.Heartbeat) {
	t := c.t
	t.Helper()
	if c.driver == "qemu" {
		c.importGuest()
	} else {
		c.fakeGuestImage()
	}
	var vms []api.VM
	for i := 1; i <= n; i++ {
		vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: fmt.Sprintf("vm%d", i), Image: "testguest", Pool: api.PoolShared,
			Host: "host1", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 64}, Cmdline: "dirty_mb=8 dirty_rate_mb=4"})
		if err != nil {
			t.Fatal(err)
		}
		vms = append(vms, vm)
	}
	c.eventually(30*time.Second, "the vms running", func() error {
		for _, vm := range vms {
			if v, err := c.client.VM(bg, vm.Name); err != nil || v.State != api.VMRunning {
				return fmt.Errorf("%s is %s (%v)", vm.Name, v.State, err)
			}
		}
		return nil
	})
	before := map[string]guestlog.Heartbeat{}
	if c.driver == "qemu" {
		for _, vm := range vms {
			before[vm.Name] = c.waitDiskRecords(vm.Name, 2, 120*time.Second)
		}
	}
	return vms, before
}

// intentGuestsSurvived checks every guest of a QEMU intent case: a live
// move kept its counter going, a rebuild kept its disk records.
func (c *cluster) intentGuestsSurvived(vms []api.VM, kind api.MigrationKind, before map[string]guestlog.Heartbeat) {
	if c.driver != "qemu" {
		return
	}
	for _, vm := range vms {
		c.guestSurvived(vm.Name, kind, before[vm.Name])
		if kind == api.KindLive {
			c.rebootVerifies(vm.Name)
		}
		if err := c.client.DeleteVM(bg, vm.Name); err != nil {
			c.t.Error(err)
		}
	}
}

// armController restarts the controller with the failpoint armed.
func (c *cluster) armController(point string) {
	c.Controller().Stop()
	c.startController(failpoint.Env + "=" + point + "=kill")
}

// restartAfterKill waits up to 30 s for the armed controller to die at
// its failpoint and starts it again. It says whether the step was reached
// (if not, the controller still runs).
func (c *cluster) restartAfterKill() bool {
	select {
	case <-c.Controller().Done():
		c.startController()
		return true
	case <-time.After(30 * time.Second):
		return false // this operation never passes that step
	}
}

// intentAfterKill waits for the armed controller to die, restarts it,
// waits for the host1 intent to end and checks that every VM runs on
// exactly one of hosts (never host1), where its record says, with no
// claim left. It returns the outcome for the table.
func (c *cluster) intentAfterKill(point string, vms []api.VM, hosts []string) string {
	t := c.t
	t.Helper()
	reached := c.restartAfterKill()
	ins, err := c.client.Intents(bg)
	if err != nil || len(ins) == 0 {
		t.Fatalf("%s: no intent recorded: %v", point, err)
	}
	var id string
	for _, in := range ins {
		if in.Target == "host1" {
			id = in.ID
		}
	}
	if id == "" {
		t.Fatalf("%s: no intent for host1 in %+v", point, ins)
	}
	in := c.waitIntent(id, 3*time.Minute)
	for _, op := range in.Operations {
		t.Logf("%s: %s %-5s %-8s %s → %-6s attempts %d: %s", point, op.VM, op.Kind, op.State, op.Source, op.Destination, op.Attempts, op.Reason)
	}
	if in.State != api.IntentCompleted {
		t.Errorf("%s: intent ended %s (%s); want completed", point, in.State, in.Reason)
	}
	per := map[string]int{}
	var where []string
	for _, vm := range vms {
		var holders []string
		for _, h := range hosts {
			rep, err := c.AgentClient(h, 5*time.Second).VM(bg, vm.ID)
			if err == nil {
				holders = append(holders, h+":"+rep.State)
			}
		}
		now, _ := c.client.VM(bg, vm.Name)
		per[now.Host]++
		where = append(where, now.Host)
		c.oneQEMU(point, now)
		if len(holders) != 1 || holders[0] != now.Host+":running" || now.State != api.VMRunning || now.Host == "host1" {
			t.Errorf("%s: %s: copies on %v, record says %s on %s; want one running copy off host1 where the record says",
				point, vm.Name, holders, now.State, now.Host)
		}
	}
	hs, _ := c.client.Hosts(bg)
	for _, h := range hs {
		if h.VMs != per[h.Name] {
			t.Errorf("%s: %s counts %d VMs; want %d (a leaked or lost claim)", point, h.Name, h.VMs, per[h.Name])
		}
	}
	retried := 0
	for _, op := range in.Operations {
		if op.Attempts > 1 {
			retried++
		}
	}
	out := fmt.Sprintf("%s, vms on %s", in.State, strings.Join(where, ","))
	if retried > 0 {
		out += fmt.Sprintf(", %d op(s) retried", retried)
	}
	if !reached {
		out = "step not reached; " + out
	}
	return out
}

// The controller killed at each step of a resize that restarts its VM
// and of a rebuild in place (fake driver): after the restart the intent
// ends completed and the VM runs, once, on its host, at its new size or
// anew from its image, with its host's claim exact.
func TestControllerKilledDuringResizeAndRebuild(t *testing.T) {
	var table []string
	for _, point := range []string{"resize/after-plan", "resize/after-stop", "rebuild/after-plan", "rebuild/after-delete"} {
		t.Run(strings.ReplaceAll(point, "/", "-"), func(t *testing.T) {
			c := newCluster(t, clusterOpts{hosts: 1, driver: "fake"})
			vms, _ := c.intentVictims(1)
			kind := api.IntentKind(strings.Split(point, "/")[0])
			c.armController(point)
			// The reply may never come: the controller may die first.
			if kind == api.IntentResize {
				// Below the memory it booted with: only offline.
				_, _ = c.client.Resize(bg, "vm1", api.ResizeRequest{MemoryMiB: 64, AllowRestart: true})
			} else {
				_, _ = c.client.Rebuild(bg, "vm1", api.RebuildRequest{})
			}
			reached := c.restartAfterKill()
			ins, err := c.client.Intents(bg)
			if err != nil || len(ins) != 1 || ins[0].Kind != kind {
				t.Fatalf("%s: intents %+v (%v); want the one %s", point, ins, err, kind)
			}
			in := c.waitIntent(ins[0].ID, time.Minute)
			if in.State != api.IntentCompleted {
				t.Errorf("%s: intent ended %s (%s); want completed", point, in.State, in.Reason)
			}
			now := c.checkOneCopy(vms[0], []string{"host1"})
			if kind == api.IntentResize && now.Flavor.MemoryMiB != 64 {
				t.Errorf("%s: vm has %d MiB; want 64 after the resize", point, now.Flavor.MemoryMiB)
			}
			out := fmt.Sprintf("%s, vm %s on %s with %d MiB", in.State, now.State, now.Host, now.Flavor.MemoryMiB)
			if !reached {
				out = "step not reached; " + out
			}
			table = append(table, fmt.Sprintf("%-22s %s", point, out))
		})
	}
	t.Logf("controller kill -9 during resize and rebuild → outcome after restart:\n%s", strings.Join(table, "\n"))
	faultTable(t, "resize-rebuild-kills", table)
}

// The controller killed once a held cold migration's intent is recorded
// and before its migration starts (the request's reply never comes):
// after the restart the intent's runner starts the move, the intent
// awaits confirmation with the VM on host2, and a revert brings it back
// to host1, one copy of it, no claim left (fake driver).
func TestControllerKilledDuringHeldMigration(t *testing.T) {
	c := newCluster(t, clusterOpts{hosts: 2, driver: "fake"})
	vms, _ := c.intentVictims(1)
	c.armController("migrate/after-plan")
	_, _ = c.client.Migrate(bg, "vm1", api.MigrateRequest{Kind: api.KindCold, Hold: true})
	if !c.restartAfterKill() {
		t.Fatal("the controller did not die at migrate/after-plan")
	}
	ins, err := c.client.Intents(bg)
	if err != nil || len(ins) != 1 || ins[0].Kind != api.IntentMigrate || ins[0].Revert == nil || ins[0].Revert.Host != "host1" {
		t.Fatalf("intents %+v (%v); want the held migration, back to host1", ins, err)
	}
	id := ins[0].ID
	var in api.Intent
	c.eventually(30*time.Second, "the held migration awaiting confirmation", func() error {
		if in, err = c.client.Intent(bg, id); err == nil && in.State != api.IntentAwaitingConfirm {
			err = fmt.Errorf("intent %s is %s (%s): %+v", id, in.State, in.Reason, in.Operations)
		}
		return err
	})
	if now := c.checkOneCopy(vms[0], []string{"host1", "host2"}); now.Host != "host2" {
		t.Errorf("awaiting confirmation, vm1 is on %s; want host2", now.Host)
	}
	if _, err := c.client.RevertResize(bg, id); err != nil {
		t.Fatal(err)
	}
	if in = c.waitIntent(id, time.Minute); in.State != api.IntentReverted {
		t.Errorf("the revert ended %s (%s)", in.State, in.Reason)
	}
	if now := c.checkOneCopy(vms[0], []string{"host1", "host2"}); now.Host != "host1" {
		t.Errorf("reverted, vm1 is on %s; want host1", now.Host)
	}
}
