package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/guestlog"
)

// hbHz is how many heartbeats a second the convergence and overhead
// guests print: a gap much above 1/hbHz is a stall.
const hbHz = 50

// Polling periods: the migration record (as the issue asks: 20 ms), and
// the console logs.
const (
	migrationPoll = 20 * time.Millisecond
	consolePoll   = 20 * time.Millisecond
)

// runConvergence boots one guest per dirty rate on the shared pool and
// migrates it back and forth between host1 and host2, once per policy.
func (b *bench) runConvergence(ctx context.Context, c *cluster) ([]convRun, error) {
	var runs []convRun
	for _, rate := range b.cfg.Rates {
		name := fmt.Sprintf("conv-%d", rate)
		spec := vmSpec{name: name, memoryMiB: b.cfg.ConvMemoryMiB, dirtyMiB: b.cfg.ConvDirtyMiB, rateMB: rate}
		b.log.Info("convergence: booting the guest", "vm", name, "memory_mib", spec.memoryMiB, "dirty_mib", spec.dirtyMiB, "rate_mb", rate)
		if err := c.createVMs(ctx, gcluster.HostName(1), []vmSpec{spec}, hbHz); err != nil {
			return runs, err
		}
		if err := sleep(ctx, b.cfg.Settle); err != nil {
			return runs, err
		}
		for _, p := range b.cfg.Policies {
			r, err := b.migrateOnce(ctx, c, name, rate, api.Policy(p))
			if err != nil {
				return runs, err
			}
			// The next policy starts from a guest that runs and dirties
			// its set again, wherever it is now. One that never beats
			// again (under TCG, QEMU 7.2 crashes guests that write
			// through many passes: docs/migration.md) is counted against
			// this run and replaced by a fresh one.
			beatErr := c.waitBeating(ctx, name, 60*time.Second)
			if beatErr != nil && ctx.Err() == nil {
				r.Oops = strings.TrimSpace(r.Oops + " hung: no heartbeat within 60 s of arrival")
				b.log.Warn("the guest did not beat again after the move: booting a fresh one", "vm", name, "policy", p, "err", beatErr)
				if err := c.deleteVMs(ctx, []string{name}); err != nil {
					return runs, err
				}
				if err := c.createVMs(ctx, gcluster.HostName(1), []vmSpec{spec}, hbHz); err != nil {
					return runs, err
				}
				beatErr = c.waitBeating(ctx, name, 120*time.Second)
			}
			runs = append(runs, r)
			b.log.Info("convergence run", "rate_mb", rate, "policy", p, "converged", r.Converged, "total_ms", r.TotalMS,
				"bound_ms", r.BoundMS, "downtime_ms", r.DowntimeMS, "worst_gap", r.WorstGap, "strategy", r.Strategy, "outcome", r.Outcome, "oops", r.Oops)
			if beatErr != nil {
				return runs, fmt.Errorf("after the %s migration at %d MB/s: %w", p, rate, beatErr)
			}
			if err := sleep(ctx, b.cfg.Settle); err != nil {
				return runs, err
			}
		}
		if err := c.deleteVMs(ctx, []string{name}); err != nil {
			return runs, err
		}
	}
	return runs, nil
}

// migrateOnce moves the VM to the other host under one policy, following
// both consoles, and aborts the move at the limit. Only a failure of the
// benchmark itself is an error; a refused or failed migration is a run.
func (b *bench) migrateOnce(ctx context.Context, c *cluster, name string, rate int, policy api.Policy) (convRun, error) {
	run := convRun{RateMB: rate, Policy: policy}
	vm, err := c.client.VM(ctx, name)
	if err != nil {
		return run, err
	}
	src, dst := vm.Host, otherHost(vm.Host)
	t := &tailer{}
	t.follow(c.consolePath(src, vm.ID), true)
	t.follow(c.consolePath(dst, vm.ID), true)
	tctx, stopTail := context.WithCancel(ctx)
	tailDone := make(chan struct{})
	go func() { t.run(tctx, consolePoll); close(tailDone) }()
	defer func() { stopTail(); <-tailDone }()
	var pr *probe
	if c.net != nil && len(vm.Ports) > 0 {
		if pr, err = c.net.start(ctx, b.godwit, vm.Ports[0].IP); err != nil {
			return run, err
		}
		defer func() {
			if pr != nil {
				_, _, _ = pr.stop()
			}
		}()
	}
	// A few heartbeats before the start, so the first gap is measured
	// (and the client's probe is connected).
	if err := sleep(ctx, 500*time.Millisecond); err != nil {
		return run, err
	}

	req := api.MigrateRequest{Kind: api.KindLive, To: dst, BandwidthMBPerS: convBandwidthMBPerS, Policy: policy}
	if policy != api.PolicyAuto {
		// The peers run QEMU's default downtime limit; godwit's engine
		// picks its own.
		req.MaxDowntimeMS = peerDowntimeLimitMS
	}
	start := time.Now()
	m, err := c.client.Migrate(ctx, name, req)
	var apiErr *api.Error
	if errors.As(err, &apiErr) {
		run.Outcome = fmt.Sprintf("refused (%d): %s", apiErr.Status, apiErr.Message)
		return run, nil
	} else if err != nil {
		return run, err
	}
	m, aborted, err := b.follow(ctx, c, m, start, b.cfg.Limit)
	if err != nil {
		return run, err
	}
	end := time.Now()
	runFromMigration(&run, m, end.Sub(start), convBandwidthMBPerS*api.MB)
	run.Converged = m.State == api.MigCompleted && !aborted && end.Sub(start) <= b.cfg.Limit
	if aborted {
		run.Outcome = fmt.Sprintf("aborted at the %s limit, then %s", b.cfg.Limit, m.State)
	}

	// The stall ends with the first heartbeat after the move: wait for
	// it (a guest that never beats again stalls until the wait ends).
	windowEnd := end.Add(10 * time.Second)
	for time.Now().Before(windowEnd) && t.beatsSince(end) == 0 && ctx.Err() == nil {
		time.Sleep(consolePoll)
	}
	if now := time.Now(); now.Before(windowEnd) {
		windowEnd = now
	}
	stopTail()
	<-tailDone
	beats, text := t.snapshot()
	run.WorstGap = worstGap(beats, start, windowEnd)
	if pr != nil {
		// The client's view: a blackout still going on when the probe
		// stops counts until then.
		ping, stream, err := pr.stop()
		pr = nil
		if err != nil {
			return run, err
		}
		run.Measured = true
		run.Blackout = max(ping.LongestGap, ping.SinceLastReply)
		run.StreamGap = max(stream.LongestGap, stream.SinceLastLine)
		run.TCP = stream.Survived && !stream.SeqBroken
		run.ClientErr = stream.Err
	}
	if b.cfg.Keep {
		path := filepath.Join(c.Dir(), "timelines", fmt.Sprintf("%s-%s.txt", name, policy))
		if err := writeTimeline(path, start, end, beats, text); err != nil {
			b.log.Warn("write the heartbeat timeline", "err", err)
		}
	}
	run.Oops = guestlog.Check([]byte(text)).Trouble
	if run.Oops == "" && rebooted(beats) {
		run.Oops = "rebooted"
	}
	return run, ctx.Err()
}

// follow polls a migration until it ends; past limit it asks for an
// abort (once) and waits for the rollback.
func (b *bench) follow(ctx context.Context, c *cluster, m api.Migration, start time.Time, limit time.Duration) (api.Migration, bool, error) {
	aborted := false
	var abortAt time.Time
	for !m.State.Final() {
		if err := sleep(ctx, migrationPoll); err != nil {
			return m, aborted, err
		}
		got, err := c.client.Migration(ctx, m.ID)
		if err != nil {
			b.log.Warn("poll migration", "id", m.ID, "err", err)
			continue
		}
		m = got
		switch {
		case m.State.Final():
		case !aborted && time.Since(start) > limit:
			aborted, abortAt = true, time.Now()
			b.log.Info("limit reached: aborting the migration", "id", m.ID, "vm", m.VM, "limit", limit, "state", m.State)
			if _, err := c.client.AbortMigration(ctx, m.ID); err != nil {
				// Past the switch-over an abort is refused: it finishes.
				b.log.Warn("abort refused", "id", m.ID, "err", err)
			}
		case aborted && time.Since(abortAt) > 2*time.Minute:
			return m, aborted, fmt.Errorf("migration %s of %s still %s two minutes after the abort", m.ID, m.VM, m.State)
		}
	}
	return m, aborted, nil
}

// otherHost is the other end of a two-host cluster.
func otherHost(h string) string {
	if h == gcluster.HostName(1) {
		return gcluster.HostName(2)
	}
	return gcluster.HostName(1)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
