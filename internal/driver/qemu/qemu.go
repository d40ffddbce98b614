// Package qemu is godwit's real hypervisor driver: each VM is its own QEMU
// process (KVM, or TCG where KVM cannot boot Linux), daemonized so that it
// outlives the agent, driven over QMP, with its serial console logged to a
// file. A small versioned state file per VM lets a restarted agent find and
// reattach to the processes that kept running.
package qemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/safe"
)

// Config configures the driver.
type Config struct {
	StateDir    string
	Accel       string // kvm or tcg, already resolved (see package accel)
	AccelReason string
	QEMUBinary  string // default qemu-system-x86_64
	// NoPostCopyPreempt keeps post-copy page requests on the migration
	// stream, behind the background pages (QEMU before 8.0 always does).
	NoPostCopyPreempt bool
	QEMUImg           string // default qemu-img
	// Machine is the machine type new VMs get; default: the versioned type
	// "q35" stands for on this QEMU (e.g. pc-q35-7.2), pinned per VM so a
	// QEMU upgrade never changes a defined VM's hardware.
	Machine     string
	StopTimeout time.Duration // graceful stop before kill; default 30s
	// RuntimeDir holds the QMP sockets, default /run/godwit. Sockets live
	// apart from the state directory because a unix socket path must be
	// shorter than 108 bytes, which a deep state directory can exceed.
	RuntimeDir string
	// DirtySampleEvery is how often each running VM's dirty rate is
	// sampled for the convergence engine (default 5s; negative: never).
	DirtySampleEvery time.Duration
	// ConsoleMax caps each VM's console log, in bytes (default 16 MiB;
	// negative: no cap): past it, the log's head is cut and about its
	// last half kept (console.go).
	ConsoleMax int64
	// RunAs is the user QEMU drops to once set up (-run-with user=);
	// empty: QEMU keeps the agent's user. It must exist on the host.
	RunAs  string
	Logger *slog.Logger
}

// Driver is the QEMU driver.
type Driver struct {
	cfg Config
	log *slog.Logger

	runDir  string   // RuntimeDir/<hash of StateDir>: one per agent
	tapSalt string   // this agent's part of its taps' names (net.go)
	version string   // QEMUBinary's release, e.g. "10.0.2"; empty: unknown
	sandbox string   // -sandbox's value, probed (sandbox.go); "": none
	runAs   []string // the arguments that drop QEMU to Config.RunAs
	runGID  int      // Config.RunAs's group; -1: QEMU keeps the agent's user

	mu  sync.Mutex
	vms map[string]*vm

	done      chan struct{} // closed by Close: ends the dirty-rate sampler and the console cap
	closeOnce sync.Once
}

// vm is one defined VM. Its mutex serializes operations on it; the
// driver's only guards the map.
type vm struct {
	mu  sync.Mutex
	dir string
	st  vmState
	mon *monitor  // nil until connected; reconnected when broken
	out *outgoing // an outgoing migration, if any
	// resizing is set while an online resize runs; it holds mu only for
	// each QMP call, so Status and List stay quick while the guest plugs.
	resizing bool
	dirty    dirtyEstimate // for the convergence engine
	// gone is set when the VM leaves this driver (released, deleted):
	// a goroutine still holding v must not connect to the QMP path, which
	// a later QEMU of the same VM on this host takes over — QEMU serves
	// one QMP client at a time, so a stale one locks the new one out.
	gone bool
	// arrivalMon is the monitor that has watched an arriving guest since
	// it was last seen not to have run: its events tell whether the guest
	// ran before the process ended (arrival.go). Nil: none has.
	arrivalMon *monitor
}

var _ driver.Driver = (*Driver)(nil)

// New returns a QEMU driver over cfg.StateDir.
func New(cfg Config) (*Driver, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("qemu driver: a state directory is required")
	}
	if cfg.Accel != driver.AccelKVM && cfg.Accel != driver.AccelTCG {
		return nil, fmt.Errorf("qemu driver: accelerator must be kvm or tcg, not %q", cfg.Accel)
	}
	if cfg.QEMUBinary == "" {
		cfg.QEMUBinary = "qemu-system-x86_64"
	}
	if cfg.QEMUImg == "" {
		cfg.QEMUImg = "qemu-img"
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if _, err := exec.LookPath(cfg.QEMUBinary); err != nil {
		return nil, fmt.Errorf("qemu driver: %s not found; install qemu-system-x86: %w", cfg.QEMUBinary, err)
	}
	version, err := qemuVersion(cfg.QEMUBinary)
	if err != nil {
		return nil, err
	}
	if version == "" {
		cfg.Logger.Warn("qemu driver: cannot tell the QEMU version; live migration under TCG will be refused as unsafe", "binary", cfg.QEMUBinary)
	}
	runGID, err := runAsGID(cfg.RunAs)
	if err != nil {
		return nil, err
	}
	if cfg.Machine == "" {
		m, err := resolveMachine(cfg.QEMUBinary)
		if err != nil {
			return nil, err
		}
		cfg.Machine = m
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, "vms"), 0o700); err != nil {
		return nil, err
	}
	runDir, err := runtimeDir(cfg.RuntimeDir, cfg.StateDir)
	if err != nil {
		return nil, err
	}
	d := &Driver{cfg: cfg, log: cfg.Logger, runDir: runDir, tapSalt: tapSalt(cfg.StateDir), version: version, vms: map[string]*vm{}, done: make(chan struct{}),
		sandbox: sandboxFor(cfg.QEMUBinary, cfg.Logger), runAs: runAsArgs(version, cfg.RunAs), runGID: runGID}
	if cfg.DirtySampleEvery == 0 {
		cfg.DirtySampleEvery = defaultDirtySampleEvery
	}
	if cfg.DirtySampleEvery > 0 {
		// A measurement under way is looked for every dirtyPollEvery at
		// most, so that it is read soon after its end.
		every := cfg.DirtySampleEvery
		safe.Go(d.log, "dirty-rate sampler", func() { d.forEachVM(min(every, dirtyPollEvery), func(v *vm) { d.sampleDirtyRate(v, every) }) })
	}
	if cfg.ConsoleMax == 0 {
		cfg.ConsoleMax = defaultConsoleMax
	}
	if cfg.ConsoleMax > 0 {
		limit := cfg.ConsoleMax
		safe.Go(d.log, "console log cap", func() { d.forEachVM(consoleCheckEvery, func(v *vm) { d.capConsole(v, limit) }) })
	}
	return d, nil
}

// forEachVM calls fn on every VM the driver knows, every period, until
// the driver is closed: the dirty-rate sampler and the console cap.
func (d *Driver) forEachVM(period time.Duration, fn func(*vm)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-d.done:
			return
		case <-t.C:
		}
		for _, v := range d.all() {
			fn(v)
		}
	}
}

// runtimeDir returns a short directory for this agent's sockets, keyed by
// its state directory so that agents sharing a machine (godwit up) never
// collide, even on the same VM UUID during a move between them.
func runtimeDir(base, stateDir string) (string, error) {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs))
	bases := []string{base}
	if base == "" {
		bases = []string{"/run/godwit", filepath.Join(os.TempDir(), "godwit-run")}
	}
	for _, b := range bases {
		dir := filepath.Join(b, hex.EncodeToString(sum[:4]))
		if err := os.MkdirAll(dir, 0o700); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("qemu driver: cannot create a runtime directory under %v", bases)
}

var aliasRE = regexp.MustCompile(`(?m)^q35\s.*\(alias of (\S+)\)`)

// resolveMachine finds the versioned machine type "q35" stands for.
func resolveMachine(bin string) (string, error) {
	out, err := exec.Command(bin, "-machine", "help").Output()
	if err != nil {
		return "", fmt.Errorf("qemu driver: %s -machine help: %w", bin, err)
	}
	if m := aliasRE.FindSubmatch(out); m != nil {
		return string(m[1]), nil
	}
	return "q35", nil
}

var versionRE = regexp.MustCompile(`(?m)^QEMU emulator version (\d+\.\d+(?:\.\d+)?)`)

// qemuVersion runs bin --version and returns its release ("10.0.2" of
// "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2...)"), or "" when
// the output does not say.
func qemuVersion(bin string) (string, error) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("qemu driver: %s --version: %w", bin, err)
	}
	return parseVersion(out), nil
}

func parseVersion(out []byte) string {
	if m := versionRE.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return ""
}

// Capabilities implements driver.Driver.
func (d *Driver) Capabilities() driver.Capabilities {
	return driver.Capabilities{
		Hypervisor: driver.HypervisorQEMU, Accelerator: d.cfg.Accel, AccelReason: d.cfg.AccelReason,
		QEMUVersion: d.version,
		// calc-dirty-rate's dirty-ring and dirty-bitmap modes crash QEMU
		// 7.2 under TCG.
		DirtyRate:      d.cfg.Accel == driver.AccelKVM,
		LiveMigration:  true,
		BlockMigration: true,
		AutoConverge:   true,
		// Post-copy under TCG oopsed guests on arrival with QEMU 7.2, whose
		// TCG loses guest writes in any live migration (fixed in 9.0).
		PostCopy:      driver.LiveMigrationSafe(d.cfg.Accel, d.version),
		CPUHotplug:    true,
		MemoryHotplug: true,
		// QEMU's TCG dirty-bitmap sync resets the TLB dirty state from a
		// RAM block's offset instead of its address: virtio-mem's block,
		// once memory is plugged, takes the source QEMU down in a live
		// move (cmdline.go, memory; scheduler.RefuseLive).
		HotpluggedLive: d.cfg.Accel == driver.AccelKVM,
		DiskResize:     true,
		// Re-plugging a vCPU unplugged under TCG kills QEMU: 7.2's heap
		// (3 of 3 tries: "malloc(): ... corrupted"), and 10.0.2's too
		// (3 of 3 on 2026-12-05: device_add of the vCPU, QEMU gone). Not
		// the migration defect: it stays KVM-only.
		CPUUnplug: d.cfg.Accel == driver.AccelKVM,
	}
}

func (d *Driver) vmDir(id string) string { return filepath.Join(d.cfg.StateDir, "vms", id) }

func (d *Driver) get(id string) (*vm, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.vms[id]
	if !ok {
		return nil, errs.NotFound("vm %s not found on this host", id)
	}
	return v, nil
}

// Create implements driver.Driver.
func (d *Driver) Create(ctx context.Context, spec driver.VMSpec) error {
	if err := validate(spec); err != nil {
		return err
	}
	d.mu.Lock()
	if _, ok := d.vms[spec.ID]; ok {
		d.mu.Unlock()
		return nil
	}
	dir := d.vmDir(spec.ID)
	v := &vm{dir: dir}
	d.vms[spec.ID] = v
	v.mu.Lock() // held while the disk is made; others wait on it
	d.mu.Unlock()
	defer v.mu.Unlock()

	cpu := spec.CPUModel
	if cpu == "" {
		cpu = defaultCPU(d.cfg.Accel)
	}
	v.st = vmState{Version: stateVersion, Launch: launch{
		Spec: spec, Accel: d.cfg.Accel, Machine: d.cfg.Machine, CPUModel: cpu, TapSalt: d.tapSalt, VHost: vhostNet(),
		QMP: filepath.Join(d.runDir, spec.ID+".qmp"), Console: filepath.Join(dir, "console.log"), PIDFile: filepath.Join(dir, "qemu.pid"),
	}}
	err := os.MkdirAll(dir, 0o700)
	if err == nil && spec.Disk != nil {
		err = d.makeDisk(ctx, spec.Disk)
	}
	if err == nil {
		err = writeState(dir, v.st)
	}
	if err != nil {
		d.mu.Lock()
		delete(d.vms, spec.ID)
		d.mu.Unlock()
		os.RemoveAll(dir)
		return fmt.Errorf("create vm %s: %w", spec.ID, err)
	}
	return nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// validate refuses, in words the caller can act on, specs QEMU would
// refuse with a less helpful message, or worse, after the disk is made.
func validate(spec driver.VMSpec) error {
	switch {
	case spec.ID == "" || spec.VCPUs < 1 || spec.MemoryMiB < 1:
		return errs.Invalid("vm spec needs an id, vcpus and memory")
	case !uuidRE.MatchString(spec.ID):
		return errs.Invalid("vm id %q is not a UUID; QEMU needs one", spec.ID)
	case spec.Disk != nil && (spec.Disk.Path == "" || spec.Disk.SizeMiB < 1):
		return errs.Invalid("vm %s: a disk needs a path and a size", spec.ID)
	}
	if err := driver.CheckNICs(spec); err != nil {
		return err
	}
	return driver.CheckSizes(spec)
}

func (d *Driver) makeDisk(ctx context.Context, disk *driver.Disk) error {
	if _, err := os.Stat(disk.Path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(disk.Path), 0o700); err != nil {
		return err
	}
	args := []string{"create", "-q", "-f", "qcow2"}
	if disk.Backing != "" {
		args = append(args, "-b", disk.Backing, "-F", "qcow2")
	}
	args = append(args, disk.Path, strconv.Itoa(disk.SizeMiB)+"M")
	// Detached from the caller, as a launch is: a qemu-img killed half-way
	// would leave a file that the next call takes for a whole disk.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), launchTimeout)
	defer cancel()
	if out, err := exec.CommandContext(cctx, d.cfg.QEMUImg, args...).CombinedOutput(); err != nil {
		_ = os.Remove(disk.Path)
		return fmt.Errorf("qemu-img create %s: %v: %s", disk.Path, err, bytes.TrimSpace(out))
	}
	// qemu-img creates it under the umask (077 in godwit's processes);
	// a guest's disk is its owner's alone either way.
	return os.Chmod(disk.Path, 0o600)
}

// Start implements driver.Driver.
func (d *Driver) Start(ctx context.Context, id string) error {
	v, err := d.get(id)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	d.refresh(v)
	if v.st.PID != 0 && v.st.Panicked {
		return d.releaseFromPanic(ctx, v) // its process runs; its guest boots again
	}
	if v.st.PID != 0 {
		return nil
	}
	return d.start(ctx, v)
}

func (v *vm) status() driver.Status {
	st := driver.Status{ID: v.st.Launch.Spec.ID, Name: v.st.Launch.Spec.Name, PID: v.st.PID, StartedAt: v.st.StartedAt, Spec: v.st.Launch.Spec,
		Incoming: v.st.Incoming}
	switch {
	case v.st.PID != 0 && v.st.Incoming == driver.IncomingWaiting:
		st.State = driver.StatePaused // waiting for its guest, which has not run here
	case v.st.PID != 0 && v.st.Panicked:
		st.State = driver.StateCrashed // held at a panic (panic.go)
		if v.st.LastPanic != nil {
			st.Reason = v.st.LastPanic.Reason
		}
	case v.st.PID != 0:
		st.State = driver.StateRunning
	case v.st.Crashed:
		st.State = driver.StateCrashed
	default:
		st.State = driver.StateStopped
	}
	if v.st.LastPanic != nil {
		p := *v.st.LastPanic
		st.LastPanic = &p
	}
	return st
}

// Stop implements driver.Driver.
func (d *Driver) Stop(ctx context.Context, id string, opts driver.StopOptions) error {
	v, err := d.get(id)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := d.stop(ctx, v, opts); err != nil {
		return err
	}
	// A stopped VM holds no tap: its MAC is live nowhere until it starts
	// (start plugs again), and a cluster that stops leaves no tap behind.
	return d.unplug(ctx, v.st.Launch.Spec)
}

// Reboot implements driver.Driver.
func (d *Driver) Reboot(ctx context.Context, id string) error {
	v, err := d.get(id)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	d.refresh(v)
	if v.st.PID == 0 {
		return errs.Conflict("vm %s is not running; start it instead", id)
	}
	if v.st.Panicked {
		return d.releaseFromPanic(ctx, v) // a reset alone leaves it stopped
	}
	return d.qmpRun(ctx, v, "system_reset", nil, nil)
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, id string) error {
	v, err := d.get(id)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := d.stop(ctx, v, driver.StopOptions{Force: true}); err != nil {
		return err
	}
	if err := d.unplug(ctx, v.st.Launch.Spec); err != nil {
		return err
	}
	if disk := v.st.Launch.Spec.Disk; disk != nil {
		if err := os.Remove(disk.Path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("vm %s: remove disk: %w", id, err)
		}
	}
	// QEMU removes its socket when it quits, but not when killed.
	_ = os.Remove(v.st.Launch.QMP)
	if err := os.RemoveAll(v.dir); err != nil {
		return fmt.Errorf("vm %s: remove state: %w", id, err)
	}
	v.gone = true
	d.mu.Lock()
	delete(d.vms, id)
	d.mu.Unlock()
	d.log.Info("vm removed", "vm", v.st.Launch.Spec.Name, "id", id)
	return nil
}

// Status implements driver.Driver.
func (d *Driver) Status(ctx context.Context, id string) (driver.Status, error) {
	v, err := d.get(id)
	if err != nil {
		return driver.Status{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	d.refresh(v)
	d.restartDue(ctx, v)
	in := d.incoming(ctx, v)
	st := v.status()
	st.Incoming = in
	return st, nil
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context) ([]driver.Status, error) {
	d.mu.Lock()
	ids := make([]string, 0, len(d.vms))
	for id := range d.vms {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	sort.Strings(ids)
	out := make([]driver.Status, 0, len(ids))
	for _, id := range ids {
		if st, err := d.Status(ctx, id); err == nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// Console implements driver.Driver.
func (d *Driver) Console(ctx context.Context, id string, offset int64) (io.ReadCloser, error) {
	v, err := d.get(id)
	if err != nil {
		return nil, err
	}
	r, err := driver.OpenLog(v.st.Launch.Console, offset)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Recover implements driver.Driver.
func (d *Driver) Recover(ctx context.Context) ([]driver.Status, error) {
	ents, err := os.ReadDir(filepath.Join(d.cfg.StateDir, "vms"))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		dir := filepath.Join(d.cfg.StateDir, "vms", e.Name())
		st, err := readState(dir)
		if err != nil {
			d.log.Warn("skipping vm state", "dir", dir, "err", err)
			continue
		}
		d.mu.Lock()
		if _, ok := d.vms[st.Launch.Spec.ID]; ok {
			d.mu.Unlock()
			continue
		}
		v := &vm{dir: dir, st: st}
		d.vms[st.Launch.Spec.ID] = v
		d.mu.Unlock()
		v.mu.Lock()
		d.refresh(v)
		if v.st.PID != 0 {
			log := d.log.With("vm", st.Launch.Spec.Name, "id", st.Launch.Spec.ID, "pid", v.st.PID)
			if err := d.connect(ctx, v); err != nil {
				log.Warn("reattach: qmp connect failed; will retry on demand", "err", err)
			} else {
				log.Info("reattached to running qemu")
				d.heldPanicked(ctx, v, "while the agent was away")
			}
		}
		v.mu.Unlock()
	}
	d.unplugOrphans(ctx)
	return d.List(ctx)
}

// all returns the VMs defined now, to work on without holding d.mu.
func (d *Driver) all() []*vm {
	d.mu.Lock()
	defer d.mu.Unlock()
	vms := make([]*vm, 0, len(d.vms))
	for _, v := range d.vms {
		vms = append(vms, v)
	}
	return vms
}

// Close implements driver.Driver: QMP connections close, VMs keep running.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() { close(d.done) })
	for _, v := range d.all() {
		v.mu.Lock()
		if v.mon != nil {
			v.mon.Close()
			v.mon = nil
		}
		v.mu.Unlock()
	}
	return nil
}
