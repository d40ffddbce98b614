package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/qmp"
)

// Guest panics. Every VM has QEMU's pvpanic device (cmdline.go); when the
// guest kernel panics, QEMU sends GUEST_PANICKED and, for on-panic restart
// and pause, holds the guest at its panic (runstate guest-panicked). The
// driver records the panic in the state file (time, reason, count) before
// it does anything, then applies the VM's policy:
//
//   - pause: nothing more; Status reports crashed, with the reason, until a
//     Reboot or Start (reset and resume) or a Stop;
//   - restart: system_reset and cont, so the guest boots again;
//   - none: QEMU did nothing (-action panic=none); the guest's own panic=
//     setting decides.
//
// Events are lost while no monitor is connected (the agent was away), but
// a held guest is not: Recover asks QEMU's run state and records a panic
// it finds unrecorded.

// guestPanicked is the data of QMP's GUEST_PANICKED event.
type guestPanicked struct {
	Action string `json:"action"` // pause, poweroff or run
	// Info is GuestPanicInformation: Hyper-V's crash registers or s390's
	// reason; pvpanic sends none.
	Info map[string]any `json:"info"`
}

// panicReason says what the event tells of a panic.
func panicReason(data json.RawMessage) (reason string, held bool) {
	var ev guestPanicked
	_ = json.Unmarshal(data, &ev)
	reason = "guest panicked (pvpanic)"
	if len(ev.Info) > 0 {
		b, _ := json.Marshal(ev.Info)
		reason = "guest panicked (" + string(b) + ")"
	}
	// No action in the event: QEMU paused it unless told otherwise, and
	// only on-panic none tells it otherwise.
	return reason, ev.Action == "pause" || ev.Action == ""
}

// onPanic handles a GUEST_PANICKED event mon's watcher received. It runs
// apart from the watcher, which must not wait for v.mu (refresh may hold
// it while it waits for the watcher).
func (d *Driver) onPanic(v *vm, mon *monitor, ev qmp.Event) {
	at := ev.Timestamp
	if at.IsZero() {
		at = time.Now()
	}
	reason, held := panicReason(ev.Data)
	if msg := panicMessage(v.st.Launch.Console); msg != "" {
		reason += ": " + msg
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.gone || v.st.PID == 0 || v.st.PID != mon.pid {
		return // the VM left, or its process ended (a later one is not this one)
	}
	if held && v.st.OnPanic() == api.OnPanicNone {
		held = false // the event's action is QEMU's word; ours was none
	}
	d.panicked(context.Background(), v, driver.Panic{At: at.UTC(), Reason: reason}, held)
}

// panicked records a panic p of v's guest (its count aside), then
// applies its policy (v.mu held). held says QEMU holds the guest at it.
func (d *Driver) panicked(ctx context.Context, v *vm, p driver.Panic, held bool) {
	p.Count = 1
	if v.st.LastPanic != nil {
		p.Count = v.st.LastPanic.Count + 1
	}
	v.st.LastPanic = &p
	v.st.Panicked = held
	policy := v.st.OnPanic()
	log := d.log.With("vm", v.st.Launch.Spec.Name, "id", v.st.Launch.Spec.ID, "reason", p.Reason, "count", p.Count, "on_panic", policy)
	if err := writeState(v.dir, v.st); err != nil {
		// Recorded before anything is done to the guest: a held guest
		// stays held (Status retries its restart, writing this first).
		log.Error("record the guest panic; the guest stays as it is", "err", err)
		return
	}
	switch {
	case !held:
		log.Warn("guest panicked; left to its own panic setting")
	case policy == api.OnPanicPause:
		log.Warn("guest panicked; held paused for inspection (reboot, start or stop it)")
	default:
		log.Warn("guest panicked; booting it again")
		switch err := d.restartPanicked(ctx, v); {
		case err != nil:
			log.Error("restart the panicked guest; will retry", "err", err)
		case v.st.Panicked:
			log.Warn("restart of the panicked guest waits for its outgoing migration to end")
		}
	}
}

// OnPanic is the VM's panic policy; VMs defined before there was one
// restart, the default.
func (s vmState) OnPanic() string {
	if p := s.Launch.Spec.OnPanic; p != "" {
		return p
	}
	return api.OnPanicRestart
}

// restartPanicked resets a guest QEMU holds at a panic and lets it run
// (v.mu held), unless a migration may be under way: resetting the source
// of a migration that completes meanwhile and letting it run would run
// the guest twice, so the reset waits until QEMU says no migration runs
// (Status retries it) and happens only to a guest still held at its
// panic; once a migration completed the copy here is spent.
func (d *Driver) restartPanicked(ctx context.Context, v *vm) error {
	if v.out != nil {
		var q queryMigrate
		if err := d.qmpRun(ctx, v, "query-migrate", nil, &q); err != nil {
			return err
		}
		switch q.Status {
		case "", "none", "completed", "failed", "cancelled":
		default:
			return nil // a migration runs: Status retries after it
		}
	}
	var st runStatus
	if err := d.qmpRun(ctx, v, "query-status", nil, &st); err != nil {
		return err
	}
	switch st.Status {
	case "guest-panicked":
		if err := d.qmpRun(ctx, v, "system_reset", nil, nil); err != nil {
			return err
		}
	case "prelaunch": // reset already, by a call cut short before its cont
	default:
		// Not held any more (postmigrate: the guest moved away).
		v.st.Panicked = false
		return writeState(v.dir, v.st)
	}
	// After a reset from guest-panicked QEMU leaves the guest stopped
	// (prelaunch) until cont.
	if err := d.qmpRun(ctx, v, "cont", nil, nil); err != nil {
		return err
	}
	v.st.Panicked = false
	if err := writeState(v.dir, v.st); err != nil {
		return fmt.Errorf("vm %s: record the restart after a panic: %w", v.st.Launch.Spec.ID, err)
	}
	d.log.Info("guest restarted after its panic", "vm", v.st.Launch.Spec.Name, "id", v.st.Launch.Spec.ID)
	return nil
}

// restartDue retries an on-panic restart that could not be done when the
// panic came (v.mu held, after refresh).
func (d *Driver) restartDue(ctx context.Context, v *vm) {
	if v.st.PID == 0 || !v.st.Panicked || v.st.OnPanic() != api.OnPanicRestart {
		return
	}
	log := d.log.With("vm", v.st.Launch.Spec.Name, "id", v.st.Launch.Spec.ID)
	if err := writeState(v.dir, v.st); err != nil { // the panic's record, if panicked could not write it
		log.Warn("record the guest panic; will retry its restart", "err", err)
		return
	}
	qctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	if err := d.restartPanicked(qctx, v); err != nil {
		log.Warn("restart the panicked guest; will retry", "err", err)
	}
}

// heldPanicked looks for a guest QEMU holds at a panic no event told of
// (v.mu held, after a reattach), and records and handles it; one already
// recorded gets its due restart.
func (d *Driver) heldPanicked(ctx context.Context, v *vm, why string) {
	if v.st.PID == 0 || v.st.Panicked {
		d.restartDue(ctx, v)
		return
	}
	qctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	var st runStatus
	if err := d.qmpRun(qctx, v, "query-status", nil, &st); err != nil || st.Status != "guest-panicked" {
		return
	}
	reason := "guest panicked (pvpanic) " + why
	if msg := panicMessage(v.st.Launch.Console); msg != "" {
		reason += ": " + msg
	}
	d.panicked(ctx, v, driver.Panic{At: time.Now().UTC(), Reason: reason}, true)
}

// panicLine is how Linux states a panic on its console, before it tells
// pvpanic (the panic notifiers run after the message is printed).
const panicLine = "Kernel panic - not syncing: "

// panicMessage is the guest kernel's own words for its panic at the end
// of its serial console log, e.g. "sysrq triggered crash" or "Fatal
// exception" (an oops under oops=panic); "" when the log does not show
// one (the guest logs elsewhere, or is not Linux). Only the log's last
// few KiB count, where this panic's message and trace are.
func panicMessage(console string) string {
	f, err := os.Open(console)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	const window = 8 << 10
	off := max(fi.Size()-window, 0)
	b := make([]byte, fi.Size()-off)
	n, _ := f.ReadAt(b, off)
	b = b[:n]
	i := bytes.LastIndex(b, []byte(panicLine))
	if i < 0 {
		return ""
	}
	msg, _, _ := strings.Cut(string(b[i+len(panicLine):]), "\n")
	// The guest's words, shown to users: printable and short.
	msg = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, msg)
	msg = strings.TrimSpace(msg)
	if r := []rune(msg); len(r) > 120 {
		msg = string(r[:120]) + "…"
	}
	return msg
}

// releaseFromPanic resets a guest held at a panic and lets it run, for a
// Reboot or Start (v.mu held).
func (d *Driver) releaseFromPanic(ctx context.Context, v *vm) error {
	if err := d.restartPanicked(ctx, v); err != nil {
		return fmt.Errorf("vm %s: reset the guest held at its panic: %w", v.st.Launch.Spec.ID, err)
	}
	if v.st.Panicked {
		return fmt.Errorf("vm %s: a migration is under way; reboot it when it has ended", v.st.Launch.Spec.ID)
	}
	return nil
}

// arrivedPanicked takes on a guest that arrived by migration held at a
// panic (v.mu held): it panicked on the source during the move, where
// QEMU held it, and the held state came along. The copy here is the VM
// now (the source's is spent), so the panic is recorded as arrived (the
// source's, not another) and the policy applies here.
func (d *Driver) arrivedPanicked(ctx context.Context, v *vm) {
	// A block copy's export, if any, as SwitchOver would stop it.
	_ = d.qmpRun(ctx, v, "nbd-server-stop", nil, nil)
	d.setIncoming(v, driver.IncomingNone)
	d.panicked(ctx, v, driver.Panic{At: time.Now().UTC(), Reason: "guest panicked on the migration's source and arrived held at the panic",
		Arrived: true}, true)
}
