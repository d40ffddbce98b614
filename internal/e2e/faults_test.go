package e2e

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/guestlog"
)

// The controller is killed (SIGKILL, by a failpoint) at every named step
// of both migration kinds, on both pools; after its restart every case
// ends completed or rolled back, the VM runs on exactly one host and its
// record says which, and no claim or copy is left behind. Fake driver:
// the whole matrix runs in seconds (docs/reliability.md has the table).
func TestControllerKilledAtEveryStep(t *testing.T) {
	steps := map[api.MigrationKind][]string{
		api.KindLive: {"after-scheduling", "after-prepare", "mid-transfer", "switch-over", "before-source-cleanup"},
		api.KindCold: {"after-scheduling", "after-stop", "mid-transfer", "switch-over", "before-source-cleanup"},
	}
	var table []string
	for _, kind := range []api.MigrationKind{api.KindLive, api.KindCold} {
		for _, pool := range []string{api.PoolShared, api.PoolLocal} {
			t.Run(string(kind)+"-"+pool, func(t *testing.T) {
				c := newCluster(t, clusterOpts{hosts: 2, driver: "fake"})
				c.fakeGuestImage()
				vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "victim", Image: "testguest", Pool: pool,
					Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 64}})
				if err != nil {
					t.Fatal(err)
				}
				for _, step := range steps[kind] {
					if kind == api.KindCold && pool == api.PoolShared && step == "mid-transfer" {
						table = append(table, fmt.Sprintf("%-5s %-6s %-22s %s", kind, pool, step, "n/a: a shared disk is not copied"))
						continue
					}
					out := c.killAt(string(kind)+"/"+step, vm)
					table = append(table, fmt.Sprintf("%-5s %-6s %-22s %s", kind, pool, step, out))
				}
			})
		}
	}
	sort.Strings(table)
	t.Logf("controller kill -9 at each step → outcome after restart:\n%s", strings.Join(table, "\n"))
	faultTable(t, "controller-kills", table)
}

// killAt migrates vm to the other host with the failpoint armed, waits for
// the controller to die there, restarts it, and checks the end. It returns
// the outcome for the table.
func (c *cluster) killAt(point string, vm api.VM) string {
	t := c.t
	t.Helper()
	cur, _ := c.client.VM(bg, vm.Name)
	kind := api.MigrationKind(strings.Split(point, "/")[0])
	c.Controller().Stop()
	c.startController(failpoint.Env + "=" + point + "=kill")
	// Capped: uncapped TCG migrations occasionally oops the guest. The
	// reply may never come: the controller may die first.
	_, _ = c.client.Migrate(bg, vm.Name, api.MigrateRequest{Kind: kind, BandwidthMBps: 125})
	reached := c.restartAfterKill()
	ms, err := c.client.Migrations(bg, vm.Name)
	if err != nil || len(ms) == 0 {
		t.Fatalf("%s: no migration recorded: %v", point, err)
	}
	m := c.waitMigration(ms[0].ID, 30*time.Second)
	if m.State != api.MigCompleted && m.State != api.MigRolledBack {
		t.Errorf("%s: migration ended %s: %s", point, m.State, m.Reason)
	}
	// Exactly one host has the VM, running, and the record names it; the
	// other keeps no definition, disk or QEMU of it; no claim is left.
	now := c.checkOneCopy(vm, []string{"host1", "host2"})
	t.Logf("%s: %s: %s", point, m.State, m.Reason)
	moved := "stayed on " + cur.Host
	if now.Host != cur.Host {
		moved = "moved to " + now.Host
	}
	if !reached {
		return fmt.Sprintf("step not reached; %s, %s", m.State, moved)
	}
	return fmt.Sprintf("%s, %s", m.State, moved)
}

// The real-QEMU matrix: a live migration on the shared pool and a cold one
// with a disk transfer (in CI), plus a live block copy and a cold restart
// on the shared pool (make test-faults: GODWIT_FAULTS_FULL=1), the
// controller killed at every step. Beyond the fake driver's checks, the
// guest proves it: after a live case its heartbeat counter has never gone
// back (no reboot), and after a cold one it has verified every disk
// record it wrote.
func TestControllerKilledAtEveryStepQEMU(t *testing.T) {
	requireQEMU(t)
	type kindPool struct {
		kind api.MigrationKind
		pool string
	}
	cases := []kindPool{{api.KindLive, api.PoolShared}, {api.KindCold, api.PoolLocal}}
	if os.Getenv("GODWIT_FAULTS_FULL") != "" {
		cases = append(cases, kindPool{api.KindLive, api.PoolLocal}, kindPool{api.KindCold, api.PoolShared})
	}
	var all []string
	for _, tc := range cases {
		t.Run(string(tc.kind)+"-"+tc.pool, func(t *testing.T) {
			c := newCluster(t, clusterOpts{hosts: 2, driver: "qemu"})
			c.importGuest()
			vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "victim", Image: "testguest", Pool: tc.pool,
				Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 64}, Cmdline: "dirty_mb=8 dirty_rate_mb=4"})
			if err != nil {
				t.Fatal(err)
			}
			c.waitHeartbeat("victim", 3, 120*time.Second)
			var table []string
			steps := []string{"after-scheduling", "after-prepare", "mid-transfer", "switch-over", "before-source-cleanup"}
			if tc.kind == api.KindCold {
				steps = []string{"after-scheduling", "after-stop", "mid-transfer", "switch-over", "before-source-cleanup"}
			}
			for _, step := range steps {
				before := c.currentHeartbeat("victim")
				out := c.killAt(string(tc.kind)+"/"+step, vm)
				// Same console (stayed) or a new one (moved): a live case's
				// counter carries on; a cold move or rollback restarts the
				// guest, which verifies its disk records at boot.
				c.guestSurvived("victim", tc.kind, before)
				table = append(table, fmt.Sprintf("%-22s %s", step, out))
				all = append(all, fmt.Sprintf("%-5s %-6s %-22s %s", tc.kind, tc.pool, step, out))
			}
			if tc.kind == api.KindLive {
				c.rebootVerifies("victim") // the disk kept every record
			}
			t.Logf("%s %s, controller kill -9 at each step:\n%s", tc.kind, tc.pool, strings.Join(table, "\n"))
			if err := c.client.DeleteVM(bg, "victim"); err != nil {
				t.Error(err)
			}
		})
	}
	faultTable(t, "controller-kills-qemu", all)
}

// currentHeartbeat waits until the guest's console shows three new
// heartbeats and returns the last: the guest program of the boot that
// runs now is up (a console also holds the lines of earlier boots, and a
// guest stopped in the middle of booting ignores the power button).
func (c *cluster) currentHeartbeat(vm string) guestlog.Heartbeat {
	c.t.Helper()
	hb, ok := c.freshHeartbeat(vm)
	if !ok {
		c.t.Fatalf("waited 2m0s for three fresh heartbeats of %s", vm)
	}
	return hb
}

// freshHeartbeat is currentHeartbeat that reports a guest giving no
// fresh heartbeats within 2 minutes instead of failing the test.
func (c *cluster) freshHeartbeat(vm string) (guestlog.Heartbeat, bool) {
	prev, _ := c.Heartbeat(bg, vm, 0)
	changes := 0
	_, err := c.WaitHeartbeat(bg, vm, 0, 120*time.Second, func(hb guestlog.Heartbeat) error {
		if hb != prev {
			changes++
			prev = hb
		}
		if changes < 3 {
			return fmt.Errorf("%d fresh heartbeats", changes)
		}
		return nil
	})
	return prev, err == nil
}
