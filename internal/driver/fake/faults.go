package fake

import (
	"context"
	"sync"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
)

// Faults injects failures into a fake driver. The zero value injects
// nothing; a nil *Faults is valid and injects nothing.
//
//	f := &fake.Faults{}
//	f.Fail("Start", 2, errs.Unavailable("qemu would not start"))  // next 2 Starts fail
//	f.Delay("Create", 3*time.Second)                               // every Create is slow
//	drv.Crash(ctx, id)                                             // the VM's "process" dies
type Faults struct {
	mu     sync.Mutex
	fail   map[string]failure
	delays map[string]time.Duration
}

type failure struct {
	n   int
	err error
}

// Fail makes the next n calls of method (Create, Start, Stop, Reboot,
// Delete) return err.
func (f *Faults) Fail(method string, n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string]failure{}
	}
	f.fail[method] = failure{n: n, err: err}
}

// Delay makes every call of method wait d first (0 removes the delay).
func (f *Faults) Delay(method string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.delays == nil {
		f.delays = map[string]time.Duration{}
	}
	f.delays[method] = d
}

// hit applies the faults set for method.
func (f *Faults) hit(ctx context.Context, method, id string) error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	delay := f.delays[method]
	fl, failing := f.fail[method]
	if failing {
		fl.n--
		if fl.n <= 0 {
			delete(f.fail, method)
		} else {
			f.fail[method] = fl
		}
	}
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if failing {
		return fl.err
	}
	return nil
}

// Crash kills a running VM's "process" as if QEMU died: the VM ends in
// state crashed, its disk kept.
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
