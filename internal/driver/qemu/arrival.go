package qemu

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/qmp"
)

// Whether an arriving guest has run here (driver.IncomingState) decides,
// when a switch-over fails, whether the source may resume its paused copy.
// The persisted flag (vmState.Incoming) is set before the incoming QEMU
// starts and cleared once the guest is seen to run. QEMU starts an arrived
// guest by itself (unless -S), so the flag may lag: a live QEMU is asked
// (query-status), and one that exited is judged by what its monitor saw —
// a RESUME event — if a monitor watched it from the moment it was last
// seen not to have run (vm.arrivalMon) to its end. Otherwise nobody can
// tell: unknown.

// statusTimeout bounds the run-state query behind Status.
const statusTimeout = 2 * time.Second

// runStatus is QMP's StatusInfo.
type runStatus struct {
	Status  string `json:"status"`
	Running bool   `json:"running"`
}

// arrival says what an arriving QEMU's run state tells of its guest.
// inmigrate (waiting for or loading the state), prelaunch (-S, never
// started) and paused (loaded, not resumed: a block copy's -S, or a source
// that was itself paused) mean it never ran, for nothing in godwit pauses
// an arriving guest; states only a running guest reaches mean it ran; the
// rest are unknown.
func arrival(st runStatus) driver.IncomingState {
	if st.Running {
		return driver.IncomingNone
	}
	switch st.Status {
	case "inmigrate", "prelaunch", "paused":
		return driver.IncomingWaiting
	case "running", "io-error", "guest-panicked", "shutdown", "suspended", "watchdog":
		return driver.IncomingNone
	}
	return driver.IncomingUnknown
}

// incoming brings v's arrival state up to date and returns it (v.mu held,
// after refresh).
func (d *Driver) incoming(ctx context.Context, v *vm) driver.IncomingState {
	if v.st.Incoming == driver.IncomingNone || v.st.PID == 0 {
		return v.st.Incoming // a gone QEMU's was settled by refresh
	}
	if v.mon != nil && v.mon.resumed.Load() {
		d.setIncoming(v, driver.IncomingNone)
		return driver.IncomingNone
	}
	qctx, cancel := context.WithTimeout(ctx, statusTimeout)
	var st runStatus
	err := d.qmpRun(qctx, v, "query-status", nil, &st)
	cancel()
	if err != nil {
		return driver.IncomingUnknown // not recorded: the next answer may tell
	}
	now := arrival(st)
	if now == driver.IncomingWaiting {
		v.arrivalMon = v.mon // it watches from a moment the guest had not run
	}
	if now != driver.IncomingUnknown {
		d.setIncoming(v, now)
	}
	return now
}

// setIncoming records v's arrival state (v.mu held).
func (d *Driver) setIncoming(v *vm, s driver.IncomingState) {
	if v.st.Incoming == s {
		return
	}
	v.st.Incoming = s
	if err := writeState(v.dir, v.st); err != nil {
		d.log.Warn("record arrival state", "vm", v.st.Launch.Spec.Name, "state", s, "err", err)
	}
}

// exitedIncoming settles the arrival state of an arriving QEMU found gone
// (v.mu held), given the monitor that saw it last, if any.
func (d *Driver) exitedIncoming(v *vm, mon *monitor) {
	switch {
	case v.st.Incoming != driver.IncomingWaiting:
	case mon != nil && mon.resumed.Load():
		v.st.Incoming = driver.IncomingNone
	case mon == nil || mon != v.arrivalMon:
		// Nobody watched it to its end: QEMU may have started the
		// guest and died before anyone saw it.
		v.st.Incoming = driver.IncomingUnknown
	}
	v.arrivalMon = nil
}

// resumeArrived resumes an arrived guest that QEMU holds paused (a block
// copy's -S), recording first that it may run here (v.mu held).
func (d *Driver) resumeArrived(ctx context.Context, v *vm) error {
	// Recorded before the cont: an agent that dies during it must not
	// let the source resume a guest that may be running here.
	d.setIncoming(v, driver.IncomingNone)
	err := d.qmpRun(ctx, v, "cont", nil, nil)
	var qe *qmp.Error
	switch {
	case err == nil:
	case errors.As(err, &qe):
		d.setIncoming(v, driver.IncomingWaiting) // QEMU refused: the guest did not run
	default:
		d.setIncoming(v, driver.IncomingUnknown)
	}
	return err
}

// Resume implements driver.LiveMigrator: cont, which QEMU accepts after a
// completed outgoing migration ("postmigrate"); with a shared disk it
// first takes the image back from the destination, whose copy the caller
// has removed.
func (d *Driver) Resume(ctx context.Context, id string) error {
	v, err := d.get(id)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	d.refresh(v)
	switch {
	case v.st.PID == 0:
		return errs.Conflict("vm %s has no qemu on this host; there is nothing to resume", id)
	case v.st.Incoming != driver.IncomingNone:
		return errs.Conflict("vm %s arrived here by a migration and never ran; it is not a source to resume", id)
	case v.out != nil && v.out.switched:
		return errs.Conflict("vm %s switched to post-copy: it ran on the destination, so its copy here is stale and must not resume", id)
	}
	var st runStatus
	if err := d.qmpRun(ctx, v, "query-status", nil, &st); err != nil {
		return err
	}
	if st.Running {
		return nil
	}
	if st.Status != "postmigrate" {
		return errs.Conflict("vm %s is %s here, not paused by a completed outgoing migration; there is nothing to resume", id, st.Status)
	}
	if err := d.qmpRun(ctx, v, "cont", nil, nil); err != nil {
		return fmt.Errorf("vm %s: resume after the migration: %w", id, err)
	}
	if v.out != nil {
		v.out.paused = false
	}
	d.log.Warn("guest resumed on the source of a migration whose destination never ran it", "vm", v.st.Launch.Spec.Name, "id", id)
	return nil
}
