// Package fake is a hypervisor driver without a hypervisor, for tests and
// simulations of large clusters. It is a real driver, not a mock: VMs have
// persisted definitions, "processes" with PIDs that outlive the agent
// (a new driver on the same state directory recovers them), consoles that
// print the test guest's heartbeat lines, and disk files on the host. Fault
// knobs (Faults, faults.go) make calls fail, slow down, or crash a VM.
//
// Live migration follows a physical model of pre-copy (RAM, dirty rate,
// bandwidth) in migrate.go; other migration models belong in files of
// their own beside it.
package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/safe"
)

// Config configures a fake driver.
type Config struct {
	StateDir string
	// Faults, when set, injects failures; see Faults.
	Faults *Faults
	Logger *slog.Logger
	// BootDelay is how long a "guest" takes to print its first heartbeat.
	BootDelay time.Duration
	// HeartbeatHz is the guest's heartbeat rate (default 5, as the real one).
	HeartbeatHz int
	// Accel is the accelerator the host claims to run, kvm or tcg; empty
	// claims "none". QEMUVersion is the QEMU release it claims to run
	// (default DefaultQEMUVersion). Together they let tests play a TCG
	// host on a QEMU that loses guest writes in live migration (7.2).
	Accel       string
	QEMUVersion string
}

// DefaultQEMUVersion is the QEMU release a fake host claims by default: a
// current one.
const DefaultQEMUVersion = "10.0.2"

// firstPID is above Linux's largest possible PID (2^22), so a fake PID is
// never mistaken for a real process.
const firstPID = 5_000_000

const stateVersion = 1

// vmState is the persisted definition and "process" of one VM.
type vmState struct {
	Version   int           `json:"version"`
	Spec      driver.VMSpec `json:"spec"`
	State     driver.State  `json:"state"`
	PID       int           `json:"pid,omitempty"`
	StartedAt time.Time     `json:"started_at,omitempty"` // of the current boot
	// Incoming is waiting from PrepareIncoming until the guest resumes
	// here (SwitchOver), kept if it never does.
	Incoming driver.IncomingState `json:"incoming,omitempty"`
	// LastPanic is the guest's last kernel panic here (panic.go).
	LastPanic *driver.Panic `json:"last_panic,omitempty"`
}

// Driver is the fake driver.
type Driver struct {
	cfg Config
	log *slog.Logger

	mu  sync.Mutex
	vms map[string]*vm
	wg  sync.WaitGroup
}

type vm struct {
	st   vmState
	stop chan struct{} // closes the heartbeat writer of the current boot
	done chan struct{} // closed when that writer has returned

	out      *outgoing    // the outgoing migration, if any
	incoming chan handoff // an incoming migration's arrival
	listener net.Listener // where it arrives
	stream   net.Conn     // its stream, once the source connected
}

func removeAll(dir string) error { return os.RemoveAll(dir) }

var _ driver.Driver = (*Driver)(nil)

// New returns a fake driver over cfg.StateDir.
func New(cfg Config) (*Driver, error) {
	if cfg.StateDir == "" {
		return nil, fmt.Errorf("fake driver: a state directory is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BootDelay == 0 {
		cfg.BootDelay = 200 * time.Millisecond
	}
	if cfg.HeartbeatHz == 0 {
		cfg.HeartbeatHz = 5
	}
	switch cfg.Accel {
	case "":
		cfg.Accel = "none"
	case "none", driver.AccelKVM, driver.AccelTCG:
	default:
		return nil, fmt.Errorf("fake driver: accelerator must be kvm, tcg or empty, not %q", cfg.Accel)
	}
	if cfg.QEMUVersion == "" {
		cfg.QEMUVersion = DefaultQEMUVersion
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, "vms"), 0o700); err != nil {
		return nil, fmt.Errorf("fake driver: %w", err)
	}
	return &Driver{cfg: cfg, log: cfg.Logger, vms: map[string]*vm{}}, nil
}

// Capabilities implements driver.Driver.
func (d *Driver) Capabilities() driver.Capabilities {
	return driver.Capabilities{Hypervisor: driver.HypervisorFake, Accelerator: d.cfg.Accel,
		AccelReason: "fake driver: no guest code runs", QEMUVersion: d.cfg.QEMUVersion,
		// As the QEMU driver's: no post-copy where live migration is unsafe.
		LiveMigration: true, PostCopy: driver.LiveMigrationSafe(d.cfg.Accel, d.cfg.QEMUVersion), AutoConverge: true,
		CPUHotplug: true, CPUUnplug: true, MemoryHotplug: true, HotpluggedLive: true, DiskResize: true}
}

func (d *Driver) vmDir(id string) string       { return filepath.Join(d.cfg.StateDir, "vms", id) }
func (d *Driver) consolePath(id string) string { return filepath.Join(d.vmDir(id), "console.log") }

func (d *Driver) save(st vmState) error {
	b, _ := json.MarshalIndent(st, "", "  ")
	p := filepath.Join(d.vmDir(st.Spec.ID), "state.json")
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

// nextPID hands out PIDs from a counter persisted in the state directory,
// so PIDs stay unique across driver restarts. A damaged counter is an
// error rather than a restart from zero: PID 0 means "not running" and a
// reused PID would make two boots look like one.
func (d *Driver) nextPID() (int, error) {
	p := filepath.Join(d.cfg.StateDir, "next-pid")
	n := firstPID
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		if n, err = strconv.Atoi(string(b)); err != nil || n < firstPID {
			return 0, fmt.Errorf("fake driver: pid counter %s is damaged (%q); remove it to start again at %d", p, b, firstPID)
		}
	case !os.IsNotExist(err):
		return 0, err
	}
	if err := os.WriteFile(p+".tmp", []byte(strconv.Itoa(n+1)), 0o600); err != nil {
		return 0, err
	}
	return n, os.Rename(p+".tmp", p)
}

func (d *Driver) get(id string) (*vm, error) {
	v, ok := d.vms[id]
	if !ok {
		return nil, errs.NotFound("vm %s not found on this host", id)
	}
	return v, nil
}

// Create implements driver.Driver.
func (d *Driver) Create(ctx context.Context, spec driver.VMSpec) error {
	if err := d.cfg.Faults.hit(ctx, "Create"); err != nil {
		return err
	}
	// The same checks as the QEMU driver's, so that tests on the fake
	// see the errors production would.
	if spec.ID == "" || spec.VCPUs < 1 || spec.MemoryMiB < 1 {
		return errs.Invalid("vm spec needs an id, vcpus and memory")
	}
	if spec.Disk != nil && spec.Disk.SizeMiB < 1 {
		return errs.Invalid("vm %s: disk %s needs a size", spec.ID, spec.Disk.Path)
	}
	if err := driver.CheckSizes(spec); err != nil {
		return err
	}
	if err := driver.CheckNICs(spec); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.vms[spec.ID]; ok {
		return nil
	}
	// Ports without taps: what the model keeps is that a MAC is plugged
	// at most once on a host, as a bridge needs.
	for id, v := range d.vms {
		for _, n := range v.st.Spec.NICs {
			for _, m := range spec.NICs {
				if n.MAC == m.MAC {
					return errs.Conflict("vm %s: mac %s is already plugged on this host, by vm %s", spec.ID, m.MAC, id)
				}
			}
		}
	}
	st := vmState{Version: stateVersion, Spec: spec, State: driver.StateStopped}
	err := os.MkdirAll(d.vmDir(spec.ID), 0o700)
	if err == nil && spec.Disk != nil {
		err = makeDisk(spec.Disk)
	}
	if err == nil {
		err = d.save(st)
	}
	if err != nil {
		os.RemoveAll(d.vmDir(spec.ID)) // no half-made VM for Recover to find
		return fmt.Errorf("create vm %s: %w", spec.ID, err)
	}
	d.vms[spec.ID] = &vm{st: st}
	return nil
}

// makeDisk creates a sparse file of the disk's size, unless it exists.
func makeDisk(disk *driver.Disk) error {
	if _, err := os.Stat(disk.Path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(disk.Path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(disk.Path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Truncate(int64(disk.SizeMiB) << 20)
}

// Start implements driver.Driver.
func (d *Driver) Start(ctx context.Context, id string) error {
	if err := d.cfg.Faults.hit(ctx, "Start"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	if v.st.State == driver.StateRunning {
		return nil
	}
	if heldAtPanic(v.st) {
		return d.reset(v) // as QEMU's: the process lives, its guest boots again
	}
	pid, err := d.nextPID()
	if err != nil {
		return err
	}
	v.st.State, v.st.PID, v.st.StartedAt = driver.StateRunning, pid, time.Now().UTC()
	v.st.Incoming = driver.IncomingNone // booted here: the guest runs here
	if err := d.save(v.st); err != nil {
		return err
	}
	d.boot(v, 0)
	return nil
}

// boot starts the heartbeat writer of v's current boot, continuing after
// counter from (0 on a fresh boot).
func (d *Driver) boot(v *vm, after int64) {
	stop, done := make(chan struct{}), make(chan struct{})
	v.stop, v.done = stop, done
	d.wg.Add(1)
	st := v.st // the boot's own copy: a resize rewrites v.st, then reboots the writer
	safe.Go(d.log, "fake guest heartbeats", func() {
		defer close(done)
		d.heartbeats(st, after, stop)
	})
}

// kill ends the heartbeat writer of v's current boot and waits for it, so
// that a halted boot prints nothing more: a console read after Stop or
// Reboot returns sees only what the next boot prints after it.
func (v *vm) kill() {
	if v.stop == nil {
		return
	}
	close(v.stop)
	<-v.done
	v.stop, v.done = nil, nil
}

// Stop implements driver.Driver.
func (d *Driver) Stop(ctx context.Context, id string, opts driver.StopOptions) error {
	if err := d.cfg.Faults.hit(ctx, "Stop"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	return d.halt(v, driver.StateStopped)
}

// halt ends v's "process" and records the state it ends in.
func (d *Driver) halt(v *vm, state driver.State) error {
	v.kill()
	if v.st.State == driver.StateStopped && state == driver.StateStopped {
		return nil
	}
	v.st.State, v.st.PID, v.st.StartedAt = state, 0, time.Time{}
	return d.save(v.st)
}

// Reboot implements driver.Driver.
func (d *Driver) Reboot(ctx context.Context, id string) error {
	if err := d.cfg.Faults.hit(ctx, "Reboot"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	if v.st.State != driver.StateRunning && !heldAtPanic(v.st) {
		return errs.Conflict("vm %s is %s; only a running vm can be rebooted", id, v.st.State)
	}
	return d.reset(v)
}

// reset reboots v's guest in its running "process" (d.mu held).
func (d *Driver) reset(v *vm) error {
	v.kill()
	v.st.State, v.st.StartedAt = driver.StateRunning, time.Now().UTC()
	if err := d.save(v.st); err != nil {
		return err
	}
	d.boot(v, 0)
	return nil
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, id string) error {
	if err := d.cfg.Faults.hit(ctx, "Delete"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	_ = d.halt(v, driver.StateStopped)
	if v.st.Spec.Disk != nil {
		if err := os.Remove(v.st.Spec.Disk.Path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove disk of vm %s: %w", id, err)
		}
	}
	if err := os.RemoveAll(d.vmDir(id)); err != nil {
		return err
	}
	delete(d.vms, id)
	return nil
}

// Status implements driver.Driver.
func (d *Driver) Status(ctx context.Context, id string) (driver.Status, error) {
	if err := d.cfg.Faults.hit(ctx, "Status"); err != nil {
		return driver.Status{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.firePanics()
	v, err := d.get(id)
	if err != nil {
		return driver.Status{}, err
	}
	return status(v.st), nil
}

func status(st vmState) driver.Status {
	s := driver.Status{ID: st.Spec.ID, Name: st.Spec.Name, State: st.State, PID: st.PID, StartedAt: st.StartedAt, Spec: st.Spec,
		Incoming: st.Incoming}
	withPanic(&s, st)
	return s
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context) ([]driver.Status, error) {
	if err := d.cfg.Faults.hit(ctx, "List"); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.firePanics()
	out := make([]driver.Status, 0, len(d.vms))
	for _, v := range d.vms {
		out = append(out, status(v.st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Console implements driver.Driver.
func (d *Driver) Console(ctx context.Context, id string, offset int64) (io.ReadCloser, error) {
	if err := d.cfg.Faults.hit(ctx, "Console"); err != nil {
		return nil, err
	}
	d.mu.Lock()
	_, err := d.get(id)
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	r, err := driver.OpenLog(d.consolePath(id), offset)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Recover implements driver.Driver: running VMs are "processes" that
// outlived the previous driver, so their heartbeats carry on counting.
func (d *Driver) Recover(ctx context.Context) ([]driver.Status, error) {
	if err := d.cfg.Faults.hit(ctx, "Recover"); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(d.cfg.StateDir, "vms"))
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(d.vmDir(e.Name()), "state.json"))
		if err != nil {
			continue // a VM directory without state is a Create that never finished
		}
		var st vmState
		if err := json.Unmarshal(b, &st); err != nil || st.Version != stateVersion {
			d.log.Warn("skipping unreadable vm state", "vm", e.Name(), "err", err)
			continue
		}
		if _, ok := d.vms[st.Spec.ID]; ok {
			continue
		}
		v := &vm{st: st}
		d.vms[st.Spec.ID] = v
		if st.State == driver.StateRunning {
			d.boot(v, lastCounter(d.consolePath(st.Spec.ID)))
		}
	}
	out := make([]driver.Status, 0, len(d.vms))
	for _, v := range d.vms {
		out = append(out, status(v.st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Close implements driver.Driver. The "processes" stay running in their
// state files, as QEMU processes outlive a real agent.
func (d *Driver) Close() error {
	d.mu.Lock()
	for _, v := range d.vms {
		v.kill()
	}
	d.mu.Unlock()
	d.wg.Wait() // also the writers a migration's switch-over stopped
	return nil
}
