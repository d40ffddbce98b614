package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
)

// runOverhead live-migrates an idle guest back and forth on the shared
// pool and sets the end-to-end time, from the POST to the moment polling
// sees the record completed, against QEMU's own total time.
func (b *bench) runOverhead(ctx context.Context, c *cluster) ([]overheadRun, error) {
	const name = "idle"
	spec := vmSpec{name: name, memoryMiB: 256, rateMB: 0}
	b.log.Info("overhead: booting the idle guest", "vm", name, "runs", b.cfg.OverheadRuns)
	if err := c.createVMs(ctx, gcluster.HostName(1), []vmSpec{spec}, hbHz); err != nil {
		return nil, err
	}
	if err := sleep(ctx, b.cfg.Settle); err != nil {
		return nil, err
	}
	var runs []overheadRun
	for i := 0; i < b.cfg.OverheadRuns; i++ {
		vm, err := c.client.VM(ctx, name)
		if err != nil {
			return runs, err
		}
		start := time.Now()
		m, err := c.client.Migrate(ctx, name, api.MigrateRequest{Kind: api.KindLive, To: otherHost(vm.Host), BandwidthMBPerS: convBandwidthMBPerS})
		if err != nil {
			return runs, fmt.Errorf("migrate the idle guest: %w", err)
		}
		m, _, err = b.follow(ctx, c, m, start, 2*time.Minute)
		if err != nil {
			return runs, err
		}
		r := overheadRun{E2E: time.Since(start), QEMU: time.Duration(m.Progress.TotalTimeMS) * time.Millisecond, State: m.State, Reason: m.Reason}
		r.phaseSplit(m)
		runs = append(runs, r)
		b.log.Info("overhead run", "run", i+1, "state", m.State, "e2e", r.E2E, "qemu_total", r.QEMU, "overhead", r.overhead(),
			"prepare", r.Prepare, "switch_over", r.Finish)
		if err := c.waitBeating(ctx, name, 60*time.Second); err != nil {
			return runs, err
		}
		if err := sleep(ctx, time.Second); err != nil {
			return runs, err
		}
	}
	return runs, c.deleteVMs(ctx, []string{name})
}
