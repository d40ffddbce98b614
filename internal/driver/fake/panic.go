package fake

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
)

// Guest kernel panics, modelled on what the QEMU driver does with QEMU's
// GUEST_PANICKED event (pvpanic): the panic is recorded first (time,
// reason, count), then the VM's on-panic policy applies:
//
//   - restart: the guest boots again in the same "process", running;
//   - pause: the guest stops where it panicked, its process kept (state
//     crashed with a PID and the panic's reason) until a reboot, start or
//     stop;
//   - none: the guest's own panic= setting decides: panic=N (N ≠ 0)
//     reboots it, as a real kernel would; without it, it hangs (running,
//     no more heartbeats).

// defaultPanicReason is what QEMU's pvpanic reports, which carries no
// details.
const defaultPanicReason = "guest panicked (pvpanic)"

// Panic makes a running VM's guest kernel panic now, with reason ("" for
// pvpanic's), and applies its on-panic policy.
func (d *Driver) Panic(ctx context.Context, id, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	if v.st.State != driver.StateRunning {
		return errs.Conflict("vm %s is %s; only a running guest can panic", id, v.st.State)
	}
	return d.panicked(v, reason)
}

// Panic makes the guest of VM id panic (reason "" for pvpanic's) the next
// time the driver looks at it running (Status or List: the agent's next
// heartbeat). It waits while the VM is not running on this host, so a
// test can make a migration's destination panic once the guest is there.
func (f *Faults) Panic(id, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panics == nil {
		f.panics = map[string]string{}
	}
	f.panics[id] = reason
}

// takePanic uses up a pending panic of VM id.
func (f *Faults) takePanic(id string) (string, bool) {
	if f == nil {
		return "", false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	reason, ok := f.panics[id]
	delete(f.panics, id)
	return reason, ok
}

// firePanics makes the running guests with a pending Faults.Panic panic
// (d.mu held).
func (d *Driver) firePanics() {
	for id, v := range d.vms {
		// Not while the guest is on its way here, nor while it leaves:
		// its migration's model would have to carry the panic along.
		if v.st.State != driver.StateRunning || v.st.Incoming == driver.IncomingWaiting ||
			(v.out != nil && v.out.st.Status == driver.MigrationActive) {
			continue
		}
		if reason, ok := d.cfg.Faults.takePanic(id); ok {
			if err := d.panicked(v, reason); err != nil {
				d.log.Error("injected guest panic", "vm", v.st.Spec.Name, "err", err)
			}
		}
	}
}

// panicked records a panic of v's guest, then applies its policy (d.mu
// held). The record is saved before the guest is touched.
func (d *Driver) panicked(v *vm, reason string) error {
	if reason == "" {
		reason = defaultPanicReason
	}
	n := 1
	if v.st.LastPanic != nil {
		n = v.st.LastPanic.Count + 1
	}
	v.st.LastPanic = &driver.Panic{At: time.Now().UTC(), Reason: reason, Count: n}
	if err := d.save(v.st); err != nil {
		return fmt.Errorf("vm %s: record the guest panic: %w", v.st.Spec.ID, err)
	}
	v.kill()
	d.console(v, "Kernel panic - not syncing: "+reason)
	policy := v.st.Spec.OnPanic
	log := d.log.With("vm", v.st.Spec.Name, "id", v.st.Spec.ID, "reason", reason, "count", n, "on_panic", policy)
	switch {
	case policy == api.OnPanicPause:
		log.Warn("guest panicked; held paused")
		v.st.State = driver.StateCrashed // the process (PID) lives on
		return d.save(v.st)
	case policy == api.OnPanicNone && !rebootsOnPanic(v.st.Spec.Cmdline):
		log.Warn("guest panicked; left to hang (no panic= reboot)")
		return nil
	default: // restart, or none with a guest that reboots itself
		log.Warn("guest panicked; booting it again")
		return d.reset(v)
	}
}

// heldAtPanic says whether st is a guest held paused at a panic: crashed
// with its process alive.
func heldAtPanic(st vmState) bool { return st.State == driver.StateCrashed && st.PID != 0 }

// withPanic fills in what Status says of panics.
func withPanic(s *driver.Status, st vmState) {
	if st.LastPanic != nil {
		p := *st.LastPanic
		s.LastPanic = &p
		if heldAtPanic(st) {
			s.Reason = p.Reason
		}
	}
}

// rebootsOnPanic says whether a kernel with this command line reboots by
// itself after a panic (panic=N, N ≠ 0; the last one counts).
func rebootsOnPanic(cmdline string) bool {
	reboots := false
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "panic="); ok {
			n, err := strconv.Atoi(v)
			reboots = err == nil && n != 0
		}
	}
	return reboots
}

// console appends a line to v's console, as the guest kernel prints it.
func (d *Driver) console(v *vm, line string) {
	f, err := os.OpenFile(d.consolePath(v.st.Spec.ID), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}
