package e2e

import (
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// Live moves started while the guest is still booting, 2 s after its
// QEMU started, on shared storage and by block copy: the guest arrives
// healthy (no oops, no restart, heartbeats from 1 on without a gap, and
// after a reboot on the destination every disk record it wrote checks
// out). A new user found this one: on QEMU 7.2 under TCG a Debian guest
// moved mid-boot came up looping in general protection faults while
// godwit showed it running (docs/migration.md, "Guest crashes under
// TCG").
func TestLiveMoveDuringBootQEMU(t *testing.T) {
	requireQEMU(t)
	c := newCluster(t, clusterOpts{hosts: 2, driver: "qemu"})
	c.importGuest()
	for _, pool := range []string{api.PoolShared, api.PoolLocal} {
		func() {
			name := "booting-" + pool
			_, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: name, Image: "testguest", Pool: pool, Host: "host1",
				Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 192, DiskMiB: 64}, Cmdline: "dirty_mb=16 dirty_rate_mb=4"})
			if err != nil {
				t.Fatal(err)
			}
			c.eventually(60*time.Second, name+" to start", func() error {
				got, err := c.client.VM(bg, name)
				if err == nil && got.State != api.VMRunning {
					err = errString("state " + got.State)
				}
				return err
			})
			time.Sleep(2 * time.Second)
			if hb, err := c.Heartbeat(bg, name, 0); err == nil && hb.Counter > 0 {
				t.Logf("the guest printed heartbeat %d before the move: it booted faster than usual", hb.Counter)
			}
			m, err := c.client.Migrate(bg, name, api.MigrateRequest{Kind: api.KindLive})
			if err != nil {
				t.Fatal(err)
			}
			m = c.waitMigration(m.ID, 180*time.Second)
			if m.State != api.MigCompleted {
				t.Fatalf("%s: move during boot ended %s: %s", pool, m.State, m.Reason)
			}
			moved, _ := c.client.VM(bg, name)
			if moved.Host != m.Destination || moved.State != api.VMRunning {
				t.Fatalf("after the move %s is %s on %s; want running on %s", name, moved.State, moved.Host, m.Destination)
			}
			c.oneQEMU("after the move", moved)
			h := c.healthy(name, 0)
			during := c.waitHeartbeat(name, h.Last.Counter+5, 60*time.Second)
			c.healthy(name, 0)
			after := c.rebootVerifies(name)
			c.noTrouble(name)
			t.Logf("%s: moved %d ms into the boot via %s in %d ms (downtime %d ms); on arrival heartbeats %d..%d, %d disk records, %d verified after a reboot",
				pool, (2 * time.Second).Milliseconds(), m.Strategy, m.Progress.TotalTimeMS, m.Progress.DowntimeMS, h.First.Counter, during.Counter, during.DiskRecords, after.DiskRecords)
			if err := c.client.DeleteVM(bg, name); err != nil {
				t.Fatal(err)
			}
		}()
	}
}
