package fake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/converge"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/safe"
)

// The fake's live migration follows pre-copy's physics: the first pass
// sends all of RAM at the bandwidth; each later pass sends what the guest
// dirtied meanwhile (its working set at most); the switch-over comes when
// the rest fits in the downtime limit. The guest's settings are read from
// its command line (dirty_mb=, dirty_rate_mb=), as the real guest does. At
// the switch-over the source hands the guest's boot time to the
// destination over a real TCP connection to the URI it was given, so the
// heartbeat counter carries on there. That connection is the migration
// stream: opened before the first pass, as QEMU's is, and held for the
// whole transfer, so a destination that goes away (its listener dies with
// its agent) fails the migration when it goes, as it would with QEMU,
// rather than at a switch-over seconds later.

var _ driver.LiveMigrator = (*Driver)(nil)

// Defaults of the model when the migration sets none.
const (
	defaultBandwidthBytesPerS = 1e9 // bytes/s: a fast simulated link
	modelTick                 = 10 * time.Millisecond
)

type outgoing struct {
	st       driver.MigrationStatus
	cancel   context.CancelFunc
	eng      *converge.Engine
	setup    converge.Setup
	paused   bool // ForceComplete or the engine: the guest dirties nothing more
	postCopy bool // post-copy allowed
	switched bool // switched to post-copy: done at once
	// throttleInitial and throttleStep are QEMU's cpu-throttle-initial
	// and -increment, which the engine may raise while it runs.
	throttleInitial, throttleStep int
	abort                         string // the engine aborted it, why
}

var _ driver.ForceCompleter = (*Driver)(nil)

// ForceComplete implements driver.ForceCompleter: the guest pauses, so
// the model's dirty rate drops to zero and the next pass finishes.
func (d *Driver) ForceComplete(ctx context.Context, id string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return "", err
	}
	if v.out == nil || v.out.st.Status != driver.MigrationActive {
		return "", errs.Conflict("vm %s has no migration to complete", id)
	}
	if v.out.postCopy {
		v.out.switched = true
		v.out.st.Strategy = v.out.st.Strategy.With(api.TechniquePostCopy)
		return "switched to post-copy: the guest runs on the destination while its memory follows", nil
	}
	v.out.paused = true
	return "paused the guest for the final copy", nil
}

type handoff struct {
	StartedAt time.Time `json:"started_at"`
}

// guestDirty reads the guest's working set and dirty rate from its
// command line.
func guestDirty(cmdline string) (setBytes, rate float64) {
	for _, f := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(f, "=")
		n, _ := strconv.ParseFloat(v, 64)
		switch k {
		case "dirty_mb":
			setBytes = n * (1 << 20)
		case "dirty_rate_mb":
			rate = n * 1e6
		}
	}
	return setBytes, rate
}

// PrepareIncoming implements driver.LiveMigrator.
func (d *Driver) PrepareIncoming(ctx context.Context, spec driver.VMSpec, listenHost string, opts driver.MigrateOptions) (driver.Incoming, error) {
	d.cfg.Faults.recordTLS(spec.ID, false, opts.TLS)
	if err := d.Create(ctx, spec); err != nil {
		return driver.Incoming{}, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(listenHost, "0"))
	if err != nil {
		return driver.Incoming{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(spec.ID)
	if err != nil {
		ln.Close()
		return driver.Incoming{}, err
	}
	if v.st.State == driver.StateRunning {
		ln.Close()
		return driver.Incoming{}, errs.Conflict("vm %s already runs on this host", spec.ID)
	}
	pid, err := d.nextPID()
	if err != nil {
		ln.Close()
		return driver.Incoming{}, err
	}
	v.st.State, v.st.PID, v.st.Incoming = driver.StatePaused, pid, driver.IncomingWaiting
	if err := d.save(v.st); err != nil {
		ln.Close()
		return driver.Incoming{}, err
	}
	v.incoming = make(chan handoff, 1)
	v.listener = ln
	ch := v.incoming
	safe.Go(d.log, "fake incoming migration", func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		d.mu.Lock()
		v.stream = c // Release closes it with the listener
		d.mu.Unlock()
		var h handoff
		if json.NewDecoder(c).Decode(&h) == nil {
			ch <- h
		}
	})
	return driver.Incoming{URI: "tcp:" + ln.Addr().String()}, nil
}

// MigrateOut implements driver.LiveMigrator. The convergence engine runs
// as it does with QEMU: it sees the guest's dirty rate "measured" before
// the move (the working set it rewrites in a second, as page-sampling
// reads it) and the model's pass statistics, and its actions change the
// model's physics.
func (d *Driver) MigrateOut(ctx context.Context, id string, to driver.Incoming, opts driver.MigrateOptions) error {
	d.cfg.Faults.recordTLS(id, true, opts.TLS)
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	if v.st.State != driver.StateRunning {
		return errs.Conflict("vm %s is not running", id)
	}
	if v.out != nil && v.out.st.Status == driver.MigrationActive {
		return errs.Conflict("vm %s is already migrating", id)
	}
	bw := float64(opts.BandwidthBytesPerS)
	if bw <= 0 {
		bw = defaultBandwidthBytesPerS
	}
	ram := int64(v.st.Spec.MemoryMiB) << 20
	set, rate := guestDirty(v.st.Spec.Cmdline)
	est := converge.Estimate{DirtyRate: min(set, rate), Source: "page-sampling (modelled)"}
	eng := converge.New(converge.Config{Policy: opts.Policy, BandwidthBytesPerS: bw, MaxDowntime: opts.MaxDowntime, RAM: ram,
		PostCopy: opts.PostCopy, TimeoutPerGiB: opts.TimeoutPerGiB, TimeoutAction: opts.TimeoutAction}, est, nil)
	setup := eng.Setup()
	mctx, cancel := context.WithCancel(context.Background())
	v.out = &outgoing{cancel: cancel, eng: eng, setup: setup, postCopy: opts.PostCopy,
		throttleInitial: setup.ThrottleInitial, throttleStep: setup.ThrottleIncrement,
		st: driver.MigrationStatus{Status: driver.MigrationActive, Strategy: api.StrategyLiveShared, MemoryTotal: ram}}
	addr, startedAt := strings.TrimPrefix(to.URI, "tcp:"), v.st.StartedAt
	safe.Go(d.log, "fake migration model", func() { d.model(mctx, v, addr, bw, startedAt) })
	return nil
}

// model runs one outgoing migration's physics until it completes or is
// cancelled.
func (d *Driver) model(ctx context.Context, v *vm, addr string, bw float64, startedAt time.Time) {
	set, baseRate := guestDirty(v.st.Spec.Cmdline)
	d.mu.Lock()
	out := v.out
	total := float64(out.st.MemoryTotal)
	limit, autoConverge := out.setup.MaxDowntime, out.setup.AutoConverge
	d.mu.Unlock()
	rate, throttle := baseRate, 0
	dirtyRate := rate // as QEMU reports it: pages newly dirtied in the last pass, per second
	remaining, sent, pass := total, 0.0, 1
	passStart, high := total, 0 // what the pass began with; high passes in a row
	var passTime time.Duration
	begin := time.Now()
	// The migration stream, held until the handoff goes over it. The
	// destination never writes on it, so a read returns only when the
	// stream ends: the destination went away (or released its copy).
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		d.unreachable(out, err)
		return
	}
	defer conn.Close()
	lost := make(chan error, 1)
	safe.Go(d.log, "fake migration stream", func() {
		_, err := conn.Read(make([]byte, 1))
		if err == io.EOF {
			err = errors.New("the migration stream was closed by the destination")
		}
		lost <- err
	})
	tick := time.NewTicker(modelTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			d.mu.Lock()
			out.st.Status = driver.MigrationCancelled
			if out.abort != "" {
				out.st.Status, out.st.Error = driver.MigrationFailed, out.abort
			}
			d.mu.Unlock()
			return
		case err := <-lost:
			d.unreachable(out, err)
			return
		case <-tick.C:
		}
		d.mu.Lock()
		paused, switched := out.paused, out.switched
		d.mu.Unlock()
		if paused {
			rate, set = 0, 0
		}
		if switched {
			break // post-copy: the guest runs there; the rest is pulled
		}
		step := bw * modelTick.Seconds()
		passTime += modelTick
		if step >= remaining {
			sent += remaining
			// End of a pass: what was dirtied during it is the next pass.
			dirtied := min(set, rate*passTime.Seconds())
			// QEMU's auto-converge: two passes in a row that dirtied more
			// than half of what they sent raise the throttle (first to the
			// initial value, then by the increment), and each such pass
			// after them raises it again.
			if dirtied > passStart/2 && rate > 0 {
				high++
			} else {
				high = 0
			}
			if autoConverge && high >= 2 {
				d.mu.Lock()
				if throttle == 0 {
					throttle = out.throttleInitial
				} else {
					throttle = min(99, throttle+out.throttleStep)
				}
				d.mu.Unlock()
				rate = baseRate * float64(100-throttle) / 100
			}
			if passTime > 0 {
				dirtyRate = dirtied / passTime.Seconds()
			}
			remaining, passStart = dirtied, dirtied
			pass, passTime = pass+1, 0
		} else {
			sent += step
			remaining -= step
		}
		// What the switch-over would have to send now: the rest of this
		// pass and what the guest dirtied meanwhile (QEMU syncs the dirty
		// bitmap before deciding, so it counts those too).
		pending := remaining + min(set, rate*passTime.Seconds())
		expected := time.Duration(pending / bw * float64(time.Second))
		d.mu.Lock()
		st := &out.st
		st.MemoryTransferred, st.MemoryRemaining, st.Pass = int64(sent), int64(remaining), pass
		st.DirtyRate, st.Throughput, st.ExpectedDowntime, st.Throttle = int64(dirtyRate), bw, expected, throttle
		for _, a := range out.eng.Observe(converge.Sample{Elapsed: time.Since(begin), Pass: pass, Transferred: int64(sent),
			Remaining: int64(remaining), DirtyRate: dirtyRate, Throughput: bw, Throttle: throttle}) {
			d.apply(out, a, throttle)
		}
		d.mu.Unlock()
		if pass > 1 && expected <= limit {
			break
		}
	}
	// Switch-over: pause, send the rest and the guest's state. After a
	// switch to post-copy only the state stops the guest; the rest is
	// sent while it runs on the destination, each page once.
	remaining += min(set, rate*passTime.Seconds())
	d.mu.Lock()
	switched := out.switched
	d.mu.Unlock()
	downtime := time.Duration(remaining / bw * float64(time.Second))
	if switched {
		downtime = modelTick
	}
	time.Sleep(time.Duration(remaining / bw * float64(time.Second)))
	err = d.cfg.Faults.hit(context.Background(), "Handoff")
	if err == nil {
		select {
		case err = <-lost: // gone during the last copy
		default:
			err = json.NewEncoder(conn).Encode(handoff{StartedAt: startedAt})
		}
	}
	if err != nil {
		d.unreachable(out, err)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := &out.st
	st.Status, st.MemoryTransferred, st.MemoryRemaining = driver.MigrationCompleted, int64(sent+remaining), 0
	st.Downtime, st.TotalTime = downtime, time.Since(begin)
	v.kill() // the guest is paused on the source from now on
	v.st.State = driver.StatePaused
	_ = d.save(v.st)
}

// apply carries out one of the engine's actions on the model (d.mu held),
// as the QEMU driver does on QEMU.
func (d *Driver) apply(out *outgoing, a converge.Action, throttle int) {
	switch a.Kind {
	case converge.ActStartPostCopy:
		out.switched = true
		out.st.Strategy = out.st.Strategy.With(api.TechniquePostCopy)
	case converge.ActThrottle:
		out.throttleInitial, out.throttleStep = a.Throttle, min(99, max(1, a.Throttle-throttle))
	case converge.ActPause:
		out.paused = true
	case converge.ActAbort:
		out.abort = "aborted by the completion timeout: " + a.Reason
		out.cancel()
	}
	d.log.Info("convergence action", "action", a.Kind, "reason", a.Reason)
}

// unreachable fails out: its destination could not be reached, or went
// away.
func (d *Driver) unreachable(out *outgoing, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out.st.Status, out.st.Error = driver.MigrationFailed, "destination unreachable: "+err.Error()
}

// MigrationStatus implements driver.LiveMigrator.
func (d *Driver) MigrationStatus(ctx context.Context, id string) (driver.MigrationStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return driver.MigrationStatus{}, err
	}
	if v.out == nil {
		return driver.MigrationStatus{Status: driver.MigrationNone}, nil
	}
	st := v.out.st
	if st.Throttle > 0 {
		st.Strategy = st.Strategy.With(api.TechniqueAutoConverge)
	}
	if v.out.eng != nil {
		rep := v.out.eng.Report()
		st.Convergence = &rep
	}
	return st, nil
}

// CancelMigration implements driver.LiveMigrator.
func (d *Driver) CancelMigration(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	if v.out != nil && v.out.switched && v.out.st.Status == driver.MigrationActive {
		return errs.Conflict("vm %s switched to post-copy: it runs on the destination and the migration can only finish", id)
	}
	if v.out != nil && v.out.st.Status == driver.MigrationActive {
		v.out.cancel()
	}
	return nil
}

// SwitchOver implements driver.LiveMigrator. Faults.Fail makes it
// fail before the guest resumes here, Faults.FailAfter after.
func (d *Driver) SwitchOver(ctx context.Context, id string, timeout time.Duration) error {
	if err := d.cfg.Faults.hit(ctx, "SwitchOver"); err != nil {
		return err
	}
	if err := d.switchOver(ctx, id, timeout); err != nil {
		return err
	}
	return d.cfg.Faults.hitAfter("SwitchOver")
}

func (d *Driver) switchOver(ctx context.Context, id string, timeout time.Duration) error {
	d.mu.Lock()
	v, err := d.get(id)
	var ch chan handoff
	if err == nil {
		ch = v.incoming
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if ch == nil {
		d.mu.Lock()
		running := v.st.State == driver.StateRunning
		d.mu.Unlock()
		if running {
			// Completed already: the agent died before its reply went
			// out, and the controller asks again. The guest runs here.
			return nil
		}
		return errs.Conflict("vm %s is not waiting for a migration", id)
	}
	var h handoff
	select {
	case h = <-ch:
	case <-time.After(timeout):
		return fmt.Errorf("vm %s: no migration arrived within %s", id, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v.incoming, v.listener, v.stream = nil, nil, nil
	v.st.State, v.st.StartedAt, v.st.Incoming = driver.StateRunning, h.StartedAt, driver.IncomingNone
	if err := d.save(v.st); err != nil {
		return err
	}
	// The guest's counter carries on: only what it prints from now on is
	// new on this host's console.
	d.boot(v, d.counterAt(v.st.StartedAt, time.Now())-1)
	return nil
}

// Resume implements driver.LiveMigrator: the guest paused at the end of
// its outgoing migration runs on, its counter where it stopped.
func (d *Driver) Resume(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	switch {
	case v.st.State == driver.StateRunning:
		return nil
	case v.st.State != driver.StatePaused || v.st.Incoming != driver.IncomingNone:
		return errs.Conflict("vm %s is %s here, not paused after an outgoing migration; there is nothing to resume", id, v.st.State)
	case v.out != nil && v.out.switched:
		return errs.Conflict("vm %s switched to post-copy: it ran on the destination, so its copy here is stale and must not resume", id)
	case v.out != nil && v.out.st.Status == driver.MigrationActive:
		return errs.Conflict("vm %s is still migrating; cancel the migration instead", id)
	}
	v.st.State = driver.StateRunning
	if err := d.save(v.st); err != nil {
		return err
	}
	d.boot(v, lastCounter(d.consolePath(id)))
	return nil
}

// Release implements driver.LiveMigrator.
func (d *Driver) Release(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	if v.out != nil {
		v.out.cancel()
	}
	if v.listener != nil {
		v.listener.Close()
	}
	if v.stream != nil {
		v.stream.Close() // a source still sending fails, as with the listener closed
	}
	_ = d.halt(v, driver.StateStopped)
	delete(d.vms, id)
	return removeAll(d.vmDir(id))
}
