package driver

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// Factory opens a driver of one kind. Each driver package registers its
// factory under its name (Register) in an init function; the agent opens
// the one its --driver names with Open.
type Factory interface {
	Open(ctx context.Context, o Options) (Driver, error)
}

// FactoryFunc lets a function be a Factory.
type FactoryFunc func(ctx context.Context, o Options) (Driver, error)

// Open calls f.
func (f FactoryFunc) Open(ctx context.Context, o Options) (Driver, error) { return f(ctx, o) }

// Options is what the agent knows to tell any driver it opens. A driver
// uses the fields that concern it and ignores the others.
type Options struct {
	// StateDir is the driver's own directory (the agent gives each driver
	// <state>/<driver name>); the driver creates it.
	StateDir string
	// Accel is kvm, tcg, or auto (also when empty). The qemu driver
	// probes on auto, or when AccelReason is empty; the fake driver
	// claims kvm or tcg, and no accelerator on auto.
	Accel string
	// AccelReason says why Accel was chosen, when someone else resolved it
	// (godwit up probes once for all its hosts).
	AccelReason string
	// QEMUBinary is the qemu-system-x86_64 to run (empty: the one on
	// PATH).
	QEMUBinary string
	// QEMUUser is the user QEMU drops to once set up (empty: the
	// agent's own). Drivers that run no QEMU ignore it.
	QEMUUser string
	// NoPostCopyPreempt keeps post-copy page requests on the migration
	// stream, behind the background pages.
	NoPostCopyPreempt bool
	// DirtySampleEvery is how often each running guest's dirty rate is
	// sampled for the convergence engine (0: the driver's default;
	// negative: never).
	DirtySampleEvery time.Duration
	// ClaimedQEMUVersion is the QEMU release a driver that only simulates
	// a host claims to run (empty: its default). A driver that runs QEMU
	// reports its binary's own and ignores this.
	ClaimedQEMUVersion string
	// Extra carries a driver's own knobs, of a type only that driver
	// knows, through code that does not import it (tests inject the fake
	// driver's failures as a *fake.Faults here). A driver that takes
	// none ignores it; one that takes some rejects a type it does not
	// know.
	Extra any
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Fencer is the optional capability of a Factory whose VMs are host
// processes that outlive the agent: it lists those a host that lost its
// lease must kill. The agent's watchdog, a separate process that knows
// only the agent's state directory and the driver's name, calls it while
// the agent may be frozen or dead, so it works from the driver's state
// directory alone: it reads files and /proc, and opens no driver.
type Fencer interface {
	// SharedDiskProcesses lists the live hypervisor processes started
	// from the driver state directory stateDir (Options.StateDir) whose
	// VM's disk is on the shared pool.
	SharedDiskProcesses(stateDir string) ([]Process, error)
}

// Process is one hypervisor process a fence must kill.
type Process struct {
	VMID, Name string
	PID        int
	// Kill sends SIGKILL to the process if PID is still this VM's (a PID
	// may have been reused); it reports whether it did.
	Kill func() bool
}

var (
	registryMu sync.RWMutex
	factories  = map[string]Factory{}
)

// Register makes a driver available under name. It panics when name is
// empty or taken, or f is nil: a programming error, found at start.
func Register(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if name == "" || f == nil {
		panic("driver: Register needs a name and a factory")
	}
	if _, dup := factories[name]; dup {
		panic("driver: Register called twice for " + name)
	}
	factories[name] = f
}

// Names lists the registered drivers, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lookup returns the factory registered under name.
func Lookup(name string) (Factory, error) {
	registryMu.RLock()
	f, ok := factories[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown driver %q; use %s", name, strings.Join(Names(), " or "))
	}
	return f, nil
}

// Open opens the driver registered under name.
func Open(ctx context.Context, name string, o Options) (Driver, error) {
	f, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	return f.Open(ctx, o)
}

// Fencing returns the Fencer of the driver registered under name; false
// when there is no such driver or it has no processes to fence.
func Fencing(name string) (Fencer, bool) {
	f, err := Lookup(name)
	if err != nil {
		return nil, false
	}
	fn, ok := f.(Fencer)
	return fn, ok
}
