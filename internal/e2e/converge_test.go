package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/hostinfo"
)

// The convergence engine on real QEMU: the guest rewrites a 16 MiB hot set
// at 8 MB/s and the migration may use 4 MB/s, so plain pre-copy never
// converges (each pass leaves the whole hot set dirty again). godwit's
// auto policy measured the dirty rate before the move, chose a way to
// finish — throttling under TCG, where post-copy is not offered — and
// the migration completes: the VM runs on the destination only, and the
// record explains the choice (migration show).
//
// The guest's health after arrival (heartbeat carrying on, no oops, no
// lost writes) is asserted under KVM. Under TCG it is logged: there,
// QEMU 7.2 crashes guests that keep writing memory through many passes
// whatever the policy — plain pre-copy converging by itself included —
// and this move takes about ten (docs/migration.md, "Guest crashes under
// TCG"). GODWIT_TEST_TCG_HEAVY=1 asserts it under TCG too.
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
	before, _ := c.heartbeat("hot", 0)
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
	if why := c.guestHealth("hot", before.Counter); why != "" {
		hosts, _ := c.client.Hosts(bg)
		tcg := len(hosts) > 0 && hosts[0].Accelerator == "tcg"
		if tcg && os.Getenv("GODWIT_TEST_TCG_HEAVY") == "" {
			t.Logf("guest after arrival, under TCG (known QEMU defect, docs/migration.md): %s", why)
		} else {
			t.Errorf("guest after arrival: %s", why)
		}
	}
	if err := c.client.DeleteVM(bg, "hot"); err != nil {
		t.Fatal(err)
	}
}

// guestHealth says what is wrong with a guest that arrived by migration
// ("" when nothing): no heartbeat within 20 s, a counter that restarted
// (its source had reached from), an oops, or writes the move lost.
func (c *cluster) guestHealth(vm string, from int64) string {
	var b []byte
	var first guestlog.Heartbeat
	deadline := time.Now().Add(20 * time.Second)
	for {
		if rc, err := c.client.Console(bg, vm, 0, false); err == nil {
			b, _ = io.ReadAll(rc)
			rc.Close()
		}
		if first = guestlog.First(bytes.NewReader(b)); first.Counter > 0 {
			break
		}
		if time.Now().After(deadline) {
			return "no heartbeat within 20 s of arrival"
		}
		time.Sleep(500 * time.Millisecond)
	}
	var why []string
	if first.Counter < from {
		why = append(why, fmt.Sprintf("the heartbeat counter restarted (%d after %d)", first.Counter, from))
	}
	for _, bad := range []string{"Oops", "BUG:", "Kernel panic", "general protection fault"} {
		if i := bytes.Index(b, []byte(bad)); i >= 0 {
			line, _, _ := bytes.Cut(b[i:], []byte("\n"))
			why = append(why, fmt.Sprintf("the console shows %q", line))
			break
		}
	}
	if n := maxMemBad(b); n > 0 {
		why = append(why, fmt.Sprintf("%d pages of the guest's dirty set lost its last write", n))
	}
	return strings.Join(why, "; ")
}

// maxMemBad is the most pages the guest ever reported lost (mem_bad) in
// a console: writes a migration did not carry over.
func maxMemBad(console []byte) int64 {
	var worst int64
	sc := bufio.NewScanner(bytes.NewReader(console))
	for sc.Scan() {
		if hb, ok := guestlog.Parse(sc.Text()); ok {
			worst = max(worst, hb.MemBad)
		}
	}
	return worst
}
