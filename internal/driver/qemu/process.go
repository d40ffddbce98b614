package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/qmp"
	"github.com/godwit/godwit/internal/safe"
)

// monitor is the QMP connection to one QEMU process, with what its event
// watcher saw.
type monitor struct {
	*qmp.Monitor
	// guestShutdown is set when QEMU reports that the guest powered
	// itself off, so its exit is a stop and not a crash.
	guestShutdown atomic.Bool
	// resumed is set when QEMU reports the guest started running (RESUME):
	// an arriving guest then has run here (arrival.go).
	resumed atomic.Bool
	watched chan struct{} // closed when the watcher has seen every event
	pid     int           // the QEMU process it talks to

	migMu      sync.Mutex
	migChanged chan struct{} // closed at QEMU's next MIGRATION event
}

// migrationChanged returns a channel closed at QEMU's next MIGRATION
// event (the migration's status changed), or when the monitor closes.
func (m *monitor) migrationChanged() <-chan struct{} {
	m.migMu.Lock()
	defer m.migMu.Unlock()
	if m.migChanged == nil {
		m.migChanged = make(chan struct{})
	}
	return m.migChanged
}

// signalMigration wakes whoever waits on migrationChanged.
func (m *monitor) signalMigration() {
	m.migMu.Lock()
	defer m.migMu.Unlock()
	if m.migChanged != nil {
		close(m.migChanged)
		m.migChanged = nil
	}
}

// QMP timeouts. Every call also has the caller's context.
const (
	connectTimeout = 10 * time.Second // QEMU busy starting under TCG
	quitTimeout    = 3 * time.Second  // quit is instant unless QMP is dead
)

// launchTimeout bounds QEMU's start-up, to -daemonize's return.
const launchTimeout = 60 * time.Second

// start launches QEMU for v (v.mu held). The state file records the
// process before anything else talks to it; a crash before that is
// caught by adopt, from QEMU's pid file.
func (d *Driver) start(ctx context.Context, v *vm) error {
	l := v.st.Launch
	id := l.Spec.ID
	if v.mon != nil {
		// Left from an earlier process; what it saw is not this one's.
		v.mon.Close()
		v.mon = nil
	}
	for _, p := range []string{l.QMP, l.PIDFile} {
		_ = os.Remove(p)
	}
	if err := d.plug(ctx, l.Spec); err != nil {
		return err
	}
	// The console log exists before QEMU opens it (append=on), so that it
	// is the owner's alone whatever the umask: it holds what the guest
	// prints.
	if cf, err := os.OpenFile(l.Console, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		cf.Close()
	}
	logPath := filepath.Join(v.dir, "qemu.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("vm %s: %w", id, err)
	}
	// Not the caller's context: a caller that hangs up (a controller
	// killed mid-request) must not kill QEMU in the middle of its
	// -daemonize, whose child then dies too, moments after a retry has
	// adopted it. A launch, once begun, finishes or times out.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), launchTimeout)
	defer cancel()
	l.Sandbox, l.RunAs = d.sandbox, d.runAs
	cmd := exec.CommandContext(lctx, d.cfg.QEMUBinary, l.args()...)
	cmd.Stdout, cmd.Stderr = lf, lf
	err = cmd.Run() // with -daemonize this returns once the VM is set up
	lf.Close()
	if err != nil {
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("vm %s: start qemu: %v: %s", id, err, out)
	}
	pid, err := readPIDFile(l.PIDFile)
	if err != nil {
		return fmt.Errorf("vm %s: qemu started but wrote no pid file: %w", id, err)
	}
	v.st.PID, v.st.StartedAt = pid, time.Now().UTC()
	v.st.StopRequested, v.st.ShutdownSeen, v.st.Crashed, v.st.Panicked = false, false, false, false
	v.st.Incoming, v.arrivalMon = driver.IncomingNone, nil // booted: the guest runs here
	if l.Incoming {
		v.st.Incoming = driver.IncomingWaiting
	}
	if err := writeState(v.dir, v.st); err != nil {
		kill(pid, id)
		return fmt.Errorf("vm %s: record the started qemu: %w", id, err)
	}
	log := d.log.With("vm", l.Spec.Name, "id", id, "pid", pid)
	if err := d.connect(ctx, v); err != nil {
		log.Warn("qmp connect failed; will retry on demand", "err", err)
	} else if !l.Incoming {
		d.announce(ctx, v)
	}
	log.Info("qemu started", "accel", l.Accel)
	return nil
}

// adopt takes on a live QEMU for v that the state file does not record
// (v.mu held, v.st.PID == 0): the agent died between starting it and
// writing its PID. Without this, a later Start would launch a second QEMU
// for the same VM.
func (d *Driver) adopt(v *vm) {
	id := v.st.Launch.Spec.ID
	pid, err := readPIDFile(v.st.Launch.PIDFile)
	if err != nil || !alive(pid, id) {
		return
	}
	v.st.PID, v.st.StartedAt = pid, time.Now().UTC()
	if fi, err := os.Stat(v.st.Launch.PIDFile); err == nil {
		v.st.StartedAt = fi.ModTime().UTC()
	}
	v.st.StopRequested, v.st.ShutdownSeen, v.st.Crashed = false, false, false
	_ = writeState(v.dir, v.st)
	d.log.Warn("adopted a running qemu the state file did not record", "vm", v.st.Launch.Spec.Name, "id", id, "pid", pid)
}

// connect opens QMP to v's QEMU, unless already open, and starts its event
// watcher (v.mu held).
func (d *Driver) connect(ctx context.Context, v *vm) error {
	if v.gone {
		return errs.NotFound("vm %s is no longer on this host", v.st.Launch.Spec.ID)
	}
	if v.mon != nil {
		select {
		case <-v.mon.Done():
			d.retire(v) // broken: QEMU exited, or a write failed
		default:
			return nil
		}
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	for {
		m, err := qmp.Dial(cctx, v.st.Launch.QMP)
		if err == nil {
			mon := &monitor{Monitor: m, watched: make(chan struct{}), pid: v.st.PID}
			v.mon = mon
			safe.Go(d.log, "qmp event watch of vm "+v.st.Launch.Spec.ID, func() { d.watch(v, mon, m.Events()) })
			return nil
		}
		select {
		case <-cctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// watch records a guest-initiated poweroff, so that a QEMU that exits on
// it is reported stopped, not crashed, and hands guest panics on.
func (d *Driver) watch(v *vm, mon *monitor, events <-chan qmp.Event) {
	defer close(mon.watched)
	defer mon.signalMigration() // QMP is gone: its waiters read why
	for ev := range events {
		if ev.Name == "MIGRATION" {
			mon.signalMigration()
			continue
		}
		if ev.Name == "RESUME" {
			mon.resumed.Store(true) // recorded by whoever holds v.mu next
			continue
		}
		if ev.Name == "GUEST_PANICKED" {
			safe.Go(d.log, "guest panic handling", func() { d.onPanic(v, mon, ev) }) // panic.go
			continue
		}
		if ev.Name != "SHUTDOWN" {
			continue
		}
		var data struct {
			Guest bool `json:"guest"`
		}
		// quit and signals also send SHUTDOWN; only the guest's own
		// poweroff makes an exit that nobody asked for a stop.
		if json.Unmarshal(ev.Data, &data) != nil || !data.Guest {
			continue
		}
		// Set the flag before taking v.mu: refresh may hold it while
		// it waits for this watcher.
		mon.guestShutdown.Store(true)
		v.mu.Lock()
		if v.mon == mon && !v.st.ShutdownSeen {
			// Persisted too, for an agent restarted before anyone
			// looks at the VM again.
			v.st.ShutdownSeen = true
			_ = writeState(v.dir, v.st)
		}
		v.mu.Unlock()
	}
}

// qmpRun runs a QMP command on v's QEMU (v.mu held).
func (d *Driver) qmpRun(ctx context.Context, v *vm, cmd string, args, result any) error {
	id := v.st.Launch.Spec.ID
	if err := d.connect(ctx, v); err != nil {
		return fmt.Errorf("vm %s: %s: %w", id, cmd, err)
	}
	if err := v.mon.Run(ctx, cmd, args, result); err != nil {
		return fmt.Errorf("vm %s: %w", id, err)
	}
	return nil
}

// refresh notices a QEMU that exited, or one to adopt (v.mu held), and
// records how it ended: stopped if we stopped it or the guest powered
// off, crashed otherwise.
func (d *Driver) refresh(v *vm) {
	if v.st.PID == 0 {
		d.adopt(v)
		return
	}
	if alive(v.st.PID, v.st.Launch.Spec.ID) {
		return
	}
	mon := v.mon
	d.retire(v)
	d.exitedIncoming(v, mon)
	v.st.Crashed = !v.st.StopRequested && !v.st.ShutdownSeen
	v.st.Panicked = false // no process holds the guest any more
	log := d.log.With("vm", v.st.Launch.Spec.Name, "id", v.st.Launch.Spec.ID, "pid", v.st.PID)
	switch {
	case v.st.Crashed:
		log.Warn("qemu exited without a stop; vm crashed")
	case !v.st.StopRequested:
		log.Info("guest powered off; qemu exited")
	}
	v.st.PID, v.st.StartedAt = 0, time.Time{}
	_ = writeState(v.dir, v.st)
}

// retire closes v's monitor, if any (v.mu held), keeping what its watcher
// saw: the guest's SHUTDOWN may still be on its way to the watcher when
// the process is already gone. The socket closed with the process, so the
// wait is short.
func (d *Driver) retire(v *vm) {
	mon := v.mon
	if mon == nil {
		return
	}
	v.mon = nil
	mon.Close()
	deadline := time.After(2 * time.Second)
wait:
	for !mon.guestShutdown.Load() {
		select {
		case <-mon.watched:
			break wait
		case <-deadline:
			break wait
		case <-time.After(10 * time.Millisecond):
		}
	}
	if mon.guestShutdown.Load() {
		v.st.ShutdownSeen = true
	}
	if mon.resumed.Load() && v.st.Incoming == driver.IncomingWaiting {
		v.st.Incoming = driver.IncomingNone
	}
}

// stop powers v off (v.mu held): the ACPI power button unless forced,
// then QMP quit, then SIGKILL.
func (d *Driver) stop(ctx context.Context, v *vm, opts driver.StopOptions) error {
	d.refresh(v)
	pid := v.st.PID
	if pid == 0 {
		return nil
	}
	id := v.st.Launch.Spec.ID
	log := d.log.With("vm", v.st.Launch.Spec.Name, "id", id, "pid", pid)
	v.st.StopRequested = true
	if err := writeState(v.dir, v.st); err != nil {
		return fmt.Errorf("vm %s: record the stop: %w", id, err)
	}
	// A guest held at a panic cannot answer the power button.
	if !opts.Force && !v.st.Panicked {
		timeout := opts.Timeout
		if timeout == 0 {
			timeout = d.cfg.StopTimeout
		}
		err := d.qmpRun(ctx, v, "system_powerdown", nil, nil)
		if err == nil && waitGone(ctx, pid, id, timeout) {
			d.refresh(v)
			log.Info("guest powered off")
			return nil
		}
		if err != nil {
			log.Warn("power button failed; forcing", "err", err)
		} else {
			log.Warn("guest did not power off in time; forcing", "timeout", timeout)
		}
	}
	qctx, cancel := context.WithTimeout(ctx, quitTimeout)
	err := d.qmpRun(qctx, v, "quit", nil, nil)
	cancel()
	// QEMU may hang up before its reply to quit arrives: ErrClosed is
	// what success often looks like. Anything else means QMP is dead or
	// stuck, and waiting for the quit would only waste the time.
	if err != nil && !errors.Is(err, qmp.ErrClosed) {
		log.Warn("qmp quit failed; killing", "err", err)
		kill(pid, id)
	}
	if !waitGone(ctx, pid, id, 5*time.Second) {
		kill(pid, id)
		if !waitGone(ctx, pid, id, 10*time.Second) {
			return fmt.Errorf("vm %s: qemu pid %d survived SIGKILL", id, pid)
		}
	}
	d.refresh(v)
	log.Info("qemu stopped", "force", opts.Force)
	return nil
}

// waitGone waits up to d for the process to exit.
func waitGone(ctx context.Context, pid int, uuid string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	// QEMU is usually gone within milliseconds of a quit: look soon, then
	// less often (a switch-over waits for the source's exit).
	wait := 2 * time.Millisecond
	for alive(pid, uuid) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
	return true
}
