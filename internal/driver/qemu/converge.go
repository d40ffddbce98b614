package qemu

import (
	"context"
	"math"
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
	rate     float64   // bytes/s
	at       time.Time // when the measurement was read, within a second of its end
	measured bool
	pending  bool      // a calc-dirty-rate of ours is running
	started  time.Time // when the last one started
}

// dirtyPollEvery is how often a measurement under way is looked for, so
// it is read within a second of its end: read only when the next one
// starts, an estimate was up to a sampling period older than it said.
const dirtyPollEvery = time.Second

// sampleDirtyRate reads v's measurement when one has ended, and starts
// the next once every has passed since the last one started. A VM busy
// with something else (a migration, a resize) is skipped.
func (d *Driver) sampleDirtyRate(v *vm, every time.Duration) {
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
		v.dirty = dirtyEstimate{rate: float64(q.DirtyRate) * (1 << 20), at: time.Now(), measured: true, started: v.dirty.started}
	}
	if time.Since(v.dirty.started) < every {
		return
	}
	args := map[string]any{"calc-time": 1, "sample-pages": dirtySamplePages, "mode": "page-sampling"}
	if err := d.qmpRun(ctx, v, "calc-dirty-rate", args, nil); err == nil {
		v.dirty.pending, v.dirty.started = true, time.Now()
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
	start := time.Now()
	for {
		time.Sleep(superviseEvery)
		if d.superviseRound(v, out, start) {
			return
		}
	}
}

// superviseRound is one round of supervise, under v.mu (released even
// if the round panics, so that a recovered panic leaves the VM usable);
// it reports whether supervising is over.
func (d *Driver) superviseRound(v *vm, out *outgoing, start time.Time) (over bool) {
	ctx := context.Background()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.gone || v.st.PID == 0 || v.out != out || out.cancelled || out.over {
		return true
	}
	if out.paused {
		return true // the engine has nothing more to decide
	}
	if !out.started {
		return false
	}
	var q queryMigrate
	if err := d.qmpRun(ctx, v, "query-migrate", nil, &q); err != nil {
		return false
	}
	switch q.Status {
	case "completed", "failed", "cancelled":
		out.over = true
		return true
	}
	d.noDelayOut(v, out)
	if out.switched {
		d.pacePostCopy(ctx, v, out, q, time.Now()) // the engine has nothing more to decide
		return false
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
	return false
}

// Post-copy pacing. QEMU holds post-copy's background stream to
// max-postcopy-bandwidth, but sends the pages the destination faults on
// besides: godwit's post-copy moves ran at 134–140 MB/s under a 125 MB/s
// cap. The background limit starts at paceStart of the cap; then every
// paceWindow the driver compares what the move sent with the cap and
// moves the limit by the difference, between half the cap and the cap,
// so the move as a whole keeps to it.
const (
	paceWindow = 400 * time.Millisecond
	paceStart  = 0.9
)

// pace is a post-copy move's pacing state.
type pace struct {
	at    time.Time // the window's start
	bytes int64     // transferred then
	limit float64   // max-postcopy-bandwidth now, bytes/s
}

// pacePostCopy adjusts the background limit of a post-copy move from its
// statistics q, read at now (v.mu held).
func (d *Driver) pacePostCopy(ctx context.Context, v *vm, out *outgoing, q queryMigrate, now time.Time) {
	if q.RAM == nil || out.bandwidthBytesPerS <= 0 {
		return
	}
	p := &out.pace
	first := p.at.IsZero()
	limit, ok := p.next(q.RAM.Transferred, now, out.bandwidthBytesPerS)
	if first {
		limit, ok = p.limit, true
	}
	if !ok {
		return
	}
	if err := d.qmpRun(ctx, v, "migrate-set-parameters", map[string]any{"max-postcopy-bandwidth": int64(limit)}, nil); err != nil {
		d.log.Warn("post-copy pacing", "vm", v.st.Launch.Spec.Name, "err", err)
		return
	}
	p.limit = limit
}

// next takes the bytes transferred at now and returns a new background
// limit when a window has passed and the limit should move by more than
// 2 % of the cap (ceiling).
func (p *pace) next(transferred int64, now time.Time, ceiling float64) (float64, bool) {
	if p.at.IsZero() {
		p.at, p.bytes, p.limit = now, transferred, paceStart*ceiling
		return 0, false
	}
	dt := now.Sub(p.at).Seconds()
	if dt < paceWindow.Seconds() {
		return 0, false
	}
	rate := float64(transferred-p.bytes) / dt
	p.at, p.bytes = now, transferred
	limit := min(ceiling, max(ceiling/2, p.limit-(rate-ceiling)))
	if math.Abs(limit-p.limit) < 0.02*ceiling {
		return 0, false
	}
	return limit, true
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
func engineConfig(v *vm, opts driver.MigrateOptions, capBytesPerS int64, block bool) converge.Config {
	return converge.Config{
		Policy: opts.Policy, BandwidthBytesPerS: float64(capBytesPerS), MaxDowntime: opts.MaxDowntime,
		RAM:           int64(v.st.Launch.Spec.MemoryMiB) << 20,
		PostCopy:      opts.PostCopy && !block,
		TimeoutPerGiB: opts.TimeoutPerGiB, TimeoutAction: opts.TimeoutAction,
	}
}
