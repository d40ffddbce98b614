package qemu

import (
	"context"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/converge"
)

// The convergence engine (package converge) decides; this file measures
// for it and carries out what it decides.
//
// Measuring before the move: every running VM's dirty rate is sampled in
// the background with QEMU's calc-dirty-rate in page-sampling mode (it
// hashes a sample of pages at the start and end of one second). It is the
// one mode that works under TCG too (dirty-bitmap and dirty-ring crash
// QEMU 7.2 there) and it costs the guest nothing measurable. It counts
// the distinct pages written in that second, which is what a pre-copy
// pass has to resend, so at high rates over a small hot set it reads the
// hot set per second rather than the raw write rate. A migration starts
// with the last estimate when it is fresh, and the engine corrects it
// from the migration's own pass statistics.

// Dirty-rate sampling.
const (
	defaultDirtySampleEvery = 5 * time.Second
	// Sampled pages per GiB (QEMU's default is 512): a small guest's
	// hot set is only a few dozen samples at 1024, too noisy to choose on.
	dirtySamplePages    = 4096
	dirtyEstimateMaxAge = 30 * time.Second
	superviseEvery      = 100 * time.Millisecond
)

// dirtyEstimate is a VM's dirty rate as last sampled.
type dirtyEstimate struct {
	rate     float64 // bytes/s
	at       time.Time
	measured bool
	pending  bool // a calc-dirty-rate of ours is running
}

// sampleDirtyRates measures every running VM's dirty rate until stop.
func (d *Driver) sampleDirtyRates(stop <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		for _, v := range d.all() {
			d.sampleDirtyRate(v)
		}
	}
}

// sampleDirtyRate reads the last measurement of v and starts the next.
// A VM busy with something else (a migration, a resize) is skipped.
func (d *Driver) sampleDirtyRate(v *vm) {
	if !v.mu.TryLock() {
		return
	}
	defer v.mu.Unlock()
	if v.st.PID == 0 || v.resizing || (v.out != nil && !v.out.over && !v.out.cancelled) || !alive(v.st.PID, v.st.Launch.Spec.ID) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var run struct {
		Status string `json:"status"`
	}
	if err := d.qmpRun(ctx, v, "query-status", nil, &run); err != nil || run.Status != "running" {
		return // paused, or still arriving by migration: nothing to learn
	}
	var q struct {
		Status    string `json:"status"`
		DirtyRate int64  `json:"dirty-rate"` // MiB/s
	}
	if err := d.qmpRun(ctx, v, "query-dirty-rate", nil, &q); err != nil {
		return
	}
	if q.Status == "measuring" {
		return
	}
	if q.Status == "measured" && v.dirty.pending {
		v.dirty = dirtyEstimate{rate: float64(q.DirtyRate) * (1 << 20), at: time.Now(), measured: true}
	}
	args := map[string]any{"calc-time": 1, "sample-pages": dirtySamplePages, "mode": "page-sampling"}
	if err := d.qmpRun(ctx, v, "calc-dirty-rate", args, nil); err == nil {
		v.dirty.pending = true
	}
}

// estimate returns v's dirty-rate estimate when fresh enough.
func (v *vm) estimate() converge.Estimate {
	if !v.dirty.measured || time.Since(v.dirty.at) > dirtyEstimateMaxAge {
		return converge.Estimate{}
	}
	return converge.Estimate{DirtyRate: v.dirty.rate, Source: "page-sampling " + time.Since(v.dirty.at).Round(100*time.Millisecond).String() + " before the move"}
}

// supervise feeds the engine the migration's statistics and carries out
// its actions, until the migration ends or another replaces it.
func (d *Driver) supervise(v *vm, out *outgoing) {
	ctx := context.Background()
	start := time.Now()
	for {
		time.Sleep(superviseEvery)
		v.mu.Lock()
		if v.gone || v.st.PID == 0 || v.out != out || out.cancelled || out.over {
			v.mu.Unlock()
			return
		}
		if out.switched || out.paused {
			v.mu.Unlock()
			return // the engine has nothing more to decide
		}
		if !out.started {
			v.mu.Unlock()
			continue
		}
		var q queryMigrate
		if err := d.qmpRun(ctx, v, "query-migrate", nil, &q); err != nil {
			v.mu.Unlock()
			continue
		}
		switch q.Status {
		case "completed", "failed", "cancelled":
			out.over = true
			v.mu.Unlock()
			return
		}
		s := converge.Sample{Elapsed: time.Since(start), Throttle: q.CPUThrottle}
		if r := q.RAM; r != nil {
			s.Pass, s.Transferred, s.Remaining = r.DirtySyncCount, r.Transferred, r.Remaining
			s.DirtyRate, s.Throughput = float64(r.DirtyPagesRate*max(r.PageSize, 4096)), r.Mbps*1e6/8
		}
		if q.CPUThrottle > 0 {
			out.throttled = true
		}
		for _, a := range out.eng.Observe(s) {
			d.apply(ctx, v, out, a, q.CPUThrottle)
		}
		v.mu.Unlock()
	}
}

// apply carries out one of the engine's actions (v.mu held).
func (d *Driver) apply(ctx context.Context, v *vm, out *outgoing, a converge.Action, throttle int) {
	log := d.log.With("vm", v.st.Launch.Spec.Name, "action", a.Kind, "reason", a.Reason)
	var err error
	switch a.Kind {
	case converge.ActStartPostCopy:
		if err = d.qmpRun(ctx, v, "migrate-start-postcopy", nil, nil); err == nil {
			out.switched = true
		}
	case converge.ActThrottle:
		// QEMU starts throttling at cpu-throttle-initial once pre-copy
		// falls behind and raises it by the increment each pass after;
		// tail-slow stops it rising past what the dirty rate needs.
		params := map[string]any{"cpu-throttle-initial": a.Throttle, "cpu-throttle-increment": min(99, max(1, a.Throttle-throttle))}
		err = d.qmpRun(ctx, v, "migrate-set-parameters", params, nil)
	case converge.ActPause:
		if err = d.qmpRun(ctx, v, "stop", nil, nil); err == nil {
			out.paused = true
		}
	case converge.ActAbort:
		out.err = "aborted by the completion timeout: " + a.Reason
		err = d.qmpRun(ctx, v, "migrate_cancel", nil, nil)
	}
	if err != nil {
		log.Warn("convergence action failed", "err", err)
		return
	}
	log.Info("convergence action")
}

// engineConfig is the engine's view of a migration of v.
func engineConfig(v *vm, opts driver.MigrateOptions, bandwidth int64, block bool) converge.Config {
	return converge.Config{
		Policy: opts.Policy, Bandwidth: float64(bandwidth), MaxDowntime: opts.MaxDowntime,
		RAM:           int64(v.st.Launch.Spec.MemoryMiB) << 20,
		PostCopy:      opts.PostCopy && !block,
		TimeoutPerGiB: opts.TimeoutPerGiB, TimeoutAction: opts.TimeoutAction,
		TCG: v.st.Launch.Accel == driver.AccelTCG,
	}
}
