package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/hostapi"
)

// A controller killed (-9) in the middle of live migrations does not
// leave them behind: the restarted controller asks both hosts what exists
// and ends each one. A migration still sending when it comes back is
// cancelled and rolled back; one the hosts finished on their own while it
// was away is completed forward. Either way the VM runs on exactly one
// host, its record says which, and no claim is left.
func TestControllerKilledDuringLiveMigrations(t *testing.T) {
	c := newCluster(t, clusterOpts{hosts: 2, driver: "fake"})
	c.fakeGuestImage()
	mk := func(name, cmdline string) api.VM {
		vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: name, Image: "testguest", Pool: api.PoolShared, Host: "host1",
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}, Cmdline: cmdline})
		if err != nil {
			t.Fatal(err)
		}
		return vm
	}
	stuck := mk("stuck", "dirty_mb=64 dirty_rate_mb=50") // never converges at 1 MB/s with pre-copy
	quick := mk("quick", "")                             // 128 MiB at 20 MB/s: about 7 s
	ms, err := c.client.Migrate(bg, "stuck", api.MigrateRequest{Kind: api.KindLive, BandwidthMBps: 1, Policy: api.PolicyPreCopy})
	if err != nil {
		t.Fatal(err)
	}
	mq, err := c.client.Migrate(bg, "quick", api.MigrateRequest{Kind: api.KindLive, BandwidthMBps: 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ms.ID, mq.ID} {
		c.eventually(10*time.Second, "transfer of "+id, func() error {
			m, err := c.client.Migration(bg, id)
			if err == nil && m.State != api.MigTransferring {
				err = fmt.Errorf("state %s", m.State)
			}
			return err
		})
	}
	c.Controller().Kill()
	// While the controller is away, the hosts finish the quick one.
	src := c.AgentClient("host1", 5*time.Second)
	c.eventually(30*time.Second, "the hosts to finish the quick migration", func() error {
		st, err := src.MigrationStatus(bg, quick.ID)
		if err == nil && st.Status != "completed" {
			err = fmt.Errorf("status %s", st.Status)
		}
		return err
	})
	c.startController()

	m := c.waitMigration(ms.ID, 30*time.Second)
	if m.State != api.MigRolledBack || !strings.Contains(m.Reason, "still sending") {
		t.Errorf("stuck migration ended %s: %s", m.State, m.Reason)
	}
	m = c.waitMigration(mq.ID, 30*time.Second)
	if m.State != api.MigCompleted {
		t.Errorf("quick migration ended %s: %s", m.State, m.Reason)
	}
	for _, tc := range []struct {
		vm   api.VM
		host string
	}{{stuck, "host1"}, {quick, "host2"}} {
		got, _ := c.client.VM(bg, tc.vm.Name)
		if got.Host != tc.host || got.State != api.VMRunning {
			t.Errorf("%s is %s on %s; want running on %s", tc.vm.Name, got.State, got.Host, tc.host)
		}
		copies := 0
		for _, h := range []string{"host1", "host2"} {
			if _, err := c.AgentClient(h, 5*time.Second).VM(bg, tc.vm.ID); err == nil {
				copies++
			}
		}
		if copies != 1 {
			t.Errorf("%s has %d copies on the hosts; want exactly 1", tc.vm.Name, copies)
		}
	}
	hosts, _ := c.client.Hosts(bg)
	for _, h := range hosts {
		if h.VMs != 1 || h.AllocatedMemoryMiB != 128 {
			t.Errorf("%s holds %d VMs, %d MiB; want 1 and 128 (no leaked claim)", h.Name, h.VMs, h.AllocatedMemoryMiB)
		}
	}
	// The VMs are free for the next operation.
	if _, err := c.client.VMAction(bg, "stuck", "reboot", api.VMActionRequest{}); err != nil {
		t.Errorf("reboot after recovery: %v", err)
	}
}

// A destination prepared for a migration that then ended without it (its
// agent away when the rollback came) is a copy with no operation behind
// it. The controller tells its host to remove it once the VM has run
// undisturbed on its own host for a heartbeat's grace: the copy and its
// local disk go, a shared-pool disk stays, and the VM itself is untouched.
func TestOrphanCopyRemoved(t *testing.T) {
	c := newCluster(t, clusterOpts{hosts: 2, driver: "fake"})
	c.fakeGuestImage()
	im, err := c.client.Image(bg, "testguest")
	if err != nil {
		t.Fatal(err)
	}
	for _, pool := range []string{api.PoolShared, api.PoolLocal} {
		vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "vm-" + pool, Image: "testguest", Pool: pool, Host: "host1",
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 64}})
		if err != nil {
			t.Fatal(err)
		}
		// What a migration's prepare step leaves on its destination.
		if _, err := c.agentAPI("host2").PrepareIncoming(bg, hostapi.CreateVM{ID: vm.ID, Name: vm.Name, VCPUs: 1, MemoryMiB: 128,
			DiskMiB: 64, Pool: pool, Image: im}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.agentAPI("host2").VM(bg, vm.ID); err != nil {
			t.Fatalf("%s: the prepared copy is not there: %v", pool, err)
		}
		c.eventually(30*time.Second, "host2's orphan copy of "+vm.Name+" removed", func() error {
			if _, err := c.agentAPI("host2").VM(bg, vm.ID); err == nil {
				return errString("still there")
			}
			return nil
		})
		now := c.checkOneCopy(vm, []string{"host1", "host2"}) // also: no definition or local disk left on host2
		if now.Host != "host1" {
			t.Errorf("%s: vm on %s; want host1", vm.Name, now.Host)
		}
		if pool == api.PoolShared {
			if _, err := os.Stat(filepath.Join(c.SharedDir(), "vms", vm.ID+".qcow2")); err != nil {
				t.Errorf("the shared disk of %s: %v; want it kept", vm.Name, err)
			}
		}
	}
}
