package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/hostinfo"
)

// The convergence engine on real QEMU: the guest rewrites a 16 MiB hot set
// at 8 MB/s and the migration may use 4 MB/s, so plain pre-copy never
// converges (each pass leaves the whole hot set dirty again). godwit's
// auto policy measured the dirty rate before the move, chose a way to
// finish (post-copy, or throttling where post-copy is not allowed) and
// the migration completes: the VM runs on the destination only, and the
// record explains the choice (migration show).
//
// The guest's health after arrival (heartbeat carrying on, no oops, no
// lost writes) is asserted, under TCG too: QEMU 7.2 crashed guests that
// kept writing memory through many passes (docs/migration.md, "Guest
// crashes under TCG"); QEMU 9.0 fixed that and godwit needs it there.
func TestConvergenceEngineQEMU(t *testing.T) {
	requireQEMU(t)
	c := newCluster(t, clusterOpts{hosts: 2, driver: "qemu"})
	c.importGuest()
	vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "hot", Image: "testguest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 192}, Cmdline: "dirty_mb=16 dirty_rate_mb=8"})
	if err != nil {
		t.Fatal(err)
	}
	c.waitHeartbeat("hot", 3, 90*time.Second)
	time.Sleep(7 * time.Second) // the agent samples dirty rates every 5 s
	before, _ := c.Heartbeat(bg, "hot", 0)
	m, err := c.client.Migrate(bg, "hot", api.MigrateRequest{Kind: api.KindLive, BandwidthMBps: 4})
	if err != nil {
		t.Fatal(err)
	}
	m = c.waitMigration(m.ID, 150*time.Second)
	if m.State != api.MigCompleted {
		t.Fatalf("migration ended %s: %s (decisions %+v)", m.State, m.Reason, m.Decisions)
	}
	cv := m.Convergence
	if m.Policy != api.PolicyAuto || cv == nil || cv.Policy != api.PolicyAuto || cv.Strategy == "" || cv.Bandwidth != 4e6 {
		t.Fatalf("policy %q, convergence %+v", m.Policy, cv)
	}
	if !strings.HasPrefix(cv.DirtyRateSource, "page-sampling") || cv.DirtyRate < 4e6 || cv.Prediction == "" {
		t.Errorf("the dirty rate was not measured before the move: %+v", cv)
	}
	if len(m.Decisions) == 0 || m.Decisions[0].Action == "pre-copy" {
		t.Errorf("first decision %+v: pre-copy cannot converge here", m.Decisions)
	}
	moved, _ := c.client.VM(bg, "hot")
	if moved.Host != m.Destination || moved.State != api.VMRunning {
		t.Errorf("after the move the vm is %s on %s; want running on %s", moved.State, moved.Host, m.Destination)
	}
	if pids := hostinfo.QEMUPIDs(vm.ID); len(pids) != 1 || pids[0] != moved.PID {
		t.Errorf("qemu processes of the vm = %v; want only the destination's %d", pids, moved.PID)
	}
	t.Logf("converged via %s (engine: %s, throttle %d %%) in %d ms, %d passes, downtime %d ms, %d MB sent for %d MiB of RAM; dirty rate %d MB/s measured (%s); %s",
		m.Strategy, cv.Strategy, cv.Throttle, m.Progress.TotalTimeMS, m.Progress.Pass, m.Progress.DowntimeMS,
		m.Progress.MemoryTransferred/1e6, m.Progress.MemoryTotal>>20, cv.DirtyRate/1e6, cv.DirtyRateSource, cv.Prediction)
	for _, d := range m.Decisions {
		t.Logf("decision %s: %s", d.Action, d.Reason)
	}
	c.healthy("hot", before.Counter)
	if err := c.client.DeleteVM(bg, "hot"); err != nil {
		t.Fatal(err)
	}
}
