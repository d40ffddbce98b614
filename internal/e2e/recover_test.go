package e2e

import (
	"fmt"
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
	c.ctrl.kill(t)
	// While the controller is away, the hosts finish the quick one.
	src := hostapi.NewAgent("http://"+c.agentAddrs["host1"], 5*time.Second)
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
			if _, err := hostapi.NewAgent("http://"+c.agentAddrs[h], 5*time.Second).VM(bg, tc.vm.ID); err == nil {
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
