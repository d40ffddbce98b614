package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
)

// The fake's live migration follows pre-copy's physics: the first pass
// sends all of RAM at the bandwidth; each later pass sends what the guest
// dirtied meanwhile (its working set at most); the switch-over comes when
// the rest fits in the downtime limit. The guest's settings are read from
// its command line (dirty_mb=, dirty_rate_mb=), as the real guest does. At
// the switch-over the source hands the guest's boot time to the
// destination over a real TCP connection to the URI it was given, so the
// heartbeat counter carries on there, and a dead destination fails the
// migration as it would with QEMU.

var _ driver.LiveMigrator = (*Driver)(nil)

// Defaults of the model when the migration sets none.
const (
	defaultBandwidth   = 1e9 // bytes/s: a fast simulated link
	defaultMaxDowntime = 300 * time.Millisecond
	modelTick          = 10 * time.Millisecond
)

type outgoing struct {
	st       driver.MigrationStatus
	cancel   context.CancelFunc
	paused   bool // ForceComplete: the guest dirties nothing more
	postCopy bool // post-copy allowed
	switched bool // ForceComplete switched to post-copy: done at once
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
		v.out.st.Strategy += "+post-copy"
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
	v.st.State, v.st.PID = driver.StatePaused, pid
	if err := d.save(v.st); err != nil {
		ln.Close()
		return driver.Incoming{}, err
	}
	v.incoming = make(chan handoff, 1)
	v.listener = ln
	go func(ch chan handoff) {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var h handoff
		if json.NewDecoder(c).Decode(&h) == nil {
			ch <- h
		}
	}(v.incoming)
	return driver.Incoming{URI: "tcp:" + ln.Addr().String()}, nil
}

// MigrateOut implements driver.LiveMigrator.
func (d *Driver) MigrateOut(ctx context.Context, id string, to driver.Incoming, opts driver.MigrateOptions) error {
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
	bw := float64(opts.Bandwidth)
	if bw <= 0 {
		bw = defaultBandwidth
	}
	limit := opts.MaxDowntime
	if limit <= 0 {
		limit = defaultMaxDowntime
	}
	mctx, cancel := context.WithCancel(context.Background())
	strategy := "shared-storage/pre-copy"
	if opts.AutoConverge {
		strategy += "+auto-converge"
	}
	v.out = &outgoing{cancel: cancel, postCopy: opts.PostCopy, st: driver.MigrationStatus{Status: driver.MigrationActive, Strategy: strategy,
		MemoryTotal: int64(v.st.Spec.MemoryMiB) << 20}}
	go d.model(mctx, v, strings.TrimPrefix(to.URI, "tcp:"), bw, limit, v.st.StartedAt, opts.AutoConverge)
	return nil
}

// model runs one outgoing migration's physics until it completes or is
// cancelled.
func (d *Driver) model(ctx context.Context, v *vm, addr string, bw float64, limit time.Duration, startedAt time.Time, autoConverge bool) {
	set, baseRate := guestDirty(v.st.Spec.Cmdline)
	rate, throttle := baseRate, 0.0
	d.mu.Lock()
	total := float64(v.out.st.MemoryTotal)
	d.mu.Unlock()
	remaining, sent, pass := total, 0.0, 1
	var passTime time.Duration
	begin := time.Now()
	update := func(f func(*driver.MigrationStatus)) {
		d.mu.Lock()
		f(&v.out.st)
		d.mu.Unlock()
	}
	tick := time.NewTicker(modelTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			update(func(st *driver.MigrationStatus) { st.Status = driver.MigrationCancelled })
			return
		case <-tick.C:
		}
		d.mu.Lock()
		paused, switched := v.out.paused, v.out.switched
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
			remaining = min(set, rate*passTime.Seconds())
			pass, passTime = pass+1, 0
			if autoConverge && pass > 2 {
				// QEMU's defaults: throttle 20 %, then 10 % more a pass.
				throttle = min(0.99, max(0.2, throttle+0.1))
				rate = baseRate * (1 - throttle)
			}
		} else {
			sent += step
			remaining -= step
		}
		// What the switch-over would have to send now: the rest of this
		// pass and what the guest dirtied meanwhile (QEMU syncs the dirty
		// bitmap before deciding, so it counts those too).
		pending := remaining + min(set, rate*passTime.Seconds())
		expected := time.Duration(pending / bw * float64(time.Second))
		update(func(st *driver.MigrationStatus) {
			st.MemoryTransferred, st.MemoryRemaining, st.Pass = int64(sent), int64(remaining), pass
			st.DirtyRate, st.Throughput, st.ExpectedDowntime = int64(rate), bw, expected
		})
		if pass > 1 && expected <= limit {
			break
		}
	}
	// Switch-over: pause, send the rest and the guest's state (after a
	// switch to post-copy, only the state: the rest is pulled later).
	remaining += min(set, rate*passTime.Seconds())
	d.mu.Lock()
	if v.out.switched {
		remaining = 0
	}
	d.mu.Unlock()
	time.Sleep(time.Duration(remaining / bw * float64(time.Second)))
	err := sendHandoff(addr, handoff{StartedAt: startedAt})
	d.mu.Lock()
	defer d.mu.Unlock()
	st := &v.out.st
	if err != nil {
		st.Status, st.Error = driver.MigrationFailed, "destination unreachable: "+err.Error()
		return
	}
	st.Status, st.MemoryTransferred, st.MemoryRemaining = driver.MigrationCompleted, int64(sent+remaining), 0
	st.Downtime, st.TotalTime = time.Duration(remaining/bw*float64(time.Second)), time.Since(begin)
	v.kill() // the guest is paused on the source from now on
	v.st.State = driver.StatePaused
	_ = d.save(v.st)
}

func sendHandoff(addr string, h handoff) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	return json.NewEncoder(c).Encode(h)
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
	return v.out.st, nil
}

// CancelMigration implements driver.LiveMigrator.
func (d *Driver) CancelMigration(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	if v.out != nil && v.out.st.Status == driver.MigrationActive {
		v.out.cancel()
	}
	return nil
}

// CompleteIncoming implements driver.LiveMigrator.
func (d *Driver) CompleteIncoming(ctx context.Context, id string, timeout time.Duration) error {
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
	v.incoming, v.listener = nil, nil
	v.st.State, v.st.StartedAt = driver.StateRunning, h.StartedAt
	if err := d.save(v.st); err != nil {
		return err
	}
	// The guest's counter carries on: only what it prints from now on is
	// new on this host's console.
	d.boot(v, d.counterAt(v.st.StartedAt, time.Now())-1)
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
	_ = d.halt(v, driver.StateStopped)
	delete(d.vms, id)
	return removeAll(d.vmDir(id))
}
