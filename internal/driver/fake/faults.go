package fake

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
)

// Faults injects failures into a fake driver, for tests of what calls
// the driver (agent, controller) when a hypervisor misbehaves. The zero
// value injects nothing; a nil *Faults is valid and injects nothing. Knobs
// may be turned while the driver is in use.
//
//	f := &fake.Faults{}
//	drv, _ := fake.New(fake.Config{StateDir: dir, Faults: f})
//	f.Fail("Start", 2, errs.Unavailable("qemu would not start")) // next 2 Starts fail
//	f.Delay("Create", 3*time.Second)                             // every Create is slow
//	drv.Crash(ctx, id)                                           // the VM's "process" dies
//	f.Panic(id, "")                                              // its guest kernel panics (panic.go)
//
// Methods are named as in driver.Driver and driver.LiveMigrator: Create,
// Start, Stop, Reboot, Delete, Status, List, Console, Recover, Resize and
// SwitchOver take faults. A fault applies before the call does
// anything, so a failed call has changed nothing, and a delay holds up only
// its own call (other VMs' calls go on), honouring ctx. FailAfter instead
// fails a call that did its work (SwitchOver only: the guest resumed
// on the destination, and the call reports an error all the same).
// Capabilities, Close and the other LiveMigrator methods take none; a
// migration fails through its physics (a destination that is gone) rather
// than a knob.
type Faults struct {
	mu        sync.Mutex
	fail      map[string]failure
	failAfter map[string]failure
	delays    map[string]time.Duration
	panics    map[string]string // guest panics to come, by VM id (panic.go)
	tls       map[string]migTLS // what the last migration of each VM asked for (MigrationTLS)
}

// migTLS is whether a VM's last migration was asked for TLS, at each end.
type migTLS struct{ incoming, outgoing bool }

// MigrationTLS says whether the last migration of VM id on this driver
// was asked to encrypt its streams, as its destination (PrepareIncoming)
// and as its source (MigrateOut). The fake sends nothing over a network,
// so this record is how a test checks what a controller asked the agents.
func (f *Faults) MigrationTLS(id string) (incoming, outgoing bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tls[id]
	return t.incoming, t.outgoing
}

// recordTLS notes what a migration of id asked for at one end.
func (f *Faults) recordTLS(id string, outgoing bool, t *driver.MigrationTLS) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tls == nil {
		f.tls = map[string]migTLS{}
	}
	r := f.tls[id]
	if outgoing {
		r.outgoing = t != nil
	} else {
		r.incoming = t != nil
	}
	f.tls[id] = r
}

type failure struct {
	n   int
	err error
}

// faultable are the methods that take faults; a knob on any other name is
// a typo that would silently inject nothing, so it panics.
var faultable = map[string]bool{"Create": true, "Start": true, "Stop": true, "Reboot": true, "Delete": true,
	"Status": true, "List": true, "Console": true, "Recover": true, "Resize": true, "SwitchOver": true,
	// Handoff is an outgoing migration's last step: the source, its
	// guest paused, sends the rest and the state; a cancel then is too
	// late (a delay here holds the source in it, status still active).
	"Handoff": true}

// faultableAfter are the methods FailAfter takes.
var faultableAfter = map[string]bool{"SwitchOver": true}

func checkMethod(method string) {
	if !faultable[method] {
		panic(fmt.Sprintf("fake.Faults: method %q takes no faults", method))
	}
}

// Fail makes the next n calls of method return err; a later Fail of the
// same method replaces it, and n = 0 clears it.
func (f *Faults) Fail(method string, n int, err error) {
	checkMethod(method)
	f.mu.Lock()
	defer f.mu.Unlock()
	set(&f.fail, method, n, err)
}

// FailAfter makes the next n calls of method do their work and then
// return err, as a call that failed at its last step; n = 0 clears it.
func (f *Faults) FailAfter(method string, n int, err error) {
	if !faultableAfter[method] {
		panic(fmt.Sprintf("fake.Faults: method %q takes no FailAfter faults", method))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	set(&f.failAfter, method, n, err)
}

// set makes the next n calls of method in *m fail with err; n = 0 clears
// it (f.mu held).
func set(m *map[string]failure, method string, n int, err error) {
	if n <= 0 {
		delete(*m, method)
		return
	}
	if *m == nil {
		*m = map[string]failure{}
	}
	(*m)[method] = failure{n: n, err: err}
}

// Delay makes every call of method wait d first (0 removes the delay).
func (f *Faults) Delay(method string, d time.Duration) {
	checkMethod(method)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.delays == nil {
		f.delays = map[string]time.Duration{}
	}
	f.delays[method] = d
}

// hit applies the faults set for method: the delay first, then a
// failure, so a call that ctx cuts short during the delay uses none up.
func (f *Faults) hit(ctx context.Context, method string) error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	delay := f.delays[method]
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return take(f.fail, method)
}

// hitAfter applies a FailAfter fault set for method, once its work is done.
func (f *Faults) hitAfter(method string) error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return take(f.failAfter, method)
}

// take uses up one of method's failures in m (f.mu held).
func take(m map[string]failure, method string) error {
	fl, failing := m[method]
	if !failing {
		return nil
	}
	if fl.n--; fl.n <= 0 {
		delete(m, method)
	} else {
		m[method] = fl
	}
	return fl.err
}

// Crash kills a running VM's "process" as if QEMU died (OOM killer, a
// segfault): its console stops, Status reports it crashed with no PID, and
// so does a restarted driver's Recover; its disk is kept. Start boots it
// again with a new PID.
func (d *Driver) Crash(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	if v.st.State != driver.StateRunning {
		return errs.Conflict("vm %s is not running", id)
	}
	return d.halt(v, driver.StateCrashed)
}
