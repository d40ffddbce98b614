// Package driver defines the hypervisor driver interface of the host agent:
// the lowest of godwit's three levels.
//
// A driver runs VMs on one host. It knows nothing of the controller, of
// scheduling or of intents; it is given a complete VMSpec with host-local
// paths and does what it is told. Capabilities are data (Capabilities);
// optional features will arrive as small extra interfaces (a driver that
// can live-migrate implements a LiveMigrator, and so on). Implementations
// live in subpackages: qemu (the real one) and fake (a physical model for
// tests and simulations). Both pass the conformance suite in drivertest.
//
// Drivers register themselves: each subpackage calls Register with its
// name and a Factory in an init function, and whatever assembles a binary
// (internal/cli for godwit) links the drivers it offers in with a blank
// import. The agent then opens a driver by name (Open) and never imports
// one; Names lists them for help texts and validation. A Factory is given
// a driver-neutral Options; a driver's own knobs, which only tests set
// (the fake driver's injected failures), travel in Options.Extra as a
// value of the driver's own type that its factory type-asserts, so that
// the code in between needs no import of the driver. A value in an
// untyped field, rather than an option constructor the driver exports,
// because the agent's Config must carry the knob from a test to the
// factory without naming its type either.
//
// Optional capabilities of a driver kind, as opposed to a driver opened
// on a host, are extra interfaces of its Factory: a Fencer lists the
// processes a host that lost its lease must kill. The agent's watchdog is
// a separate process that knows only the state directory and the driver's
// name, so it asks the registry (Fencing) and opens no driver; the qemu
// driver's factory is a Fencer, the fake driver's, having no processes,
// is not.
package driver

import (
	"context"
	"io"
	"time"
)

// Hypervisors.
const (
	HypervisorQEMU = "qemu"
	HypervisorFake = "fake"
)

// Accelerators.
const (
	AccelKVM = "kvm"
	AccelTCG = "tcg"
)

// Capabilities says what a driver can do on this host.
type Capabilities struct {
	Hypervisor  string // qemu or fake
	Accelerator string // kvm or tcg
	// AccelReason says why this accelerator was chosen (e.g. "kvm probe:
	// guest kernel did not boot within 10s").
	AccelReason string
	// QEMUVersion is the QEMU release VMs run on ("10.0.2"; the fake
	// driver's is the one it pretends to run); empty when unknown.
	// Live migration under TCG is safe only from 9.0 (LiveMigrationSafe).
	QEMUVersion string

	// Features; each later grows a small optional interface.
	LiveMigration  bool
	BlockMigration bool
	PostCopy       bool
	AutoConverge   bool
	DirtyRate      bool // calc-dirty-rate is safe to use
	CPUHotplug     bool // vCPUs can be added online (Resizer)
	CPUUnplug      bool // and taken away online
	MemoryHotplug  bool // memory grows and shrinks online
	// HotpluggedLive: a VM with hot-plugged memory can move live. Not
	// under TCG, whose dirty tracking of a second RAM block kills the
	// source QEMU (scheduler.RefuseLive keeps the controller from trying).
	HotpluggedLive bool
	DiskResize     bool // disks grow online
}

// State is a VM's observed state on the host.
type State string

// States a driver reports.
const (
	StateStopped State = "stopped" // defined, no process
	StateRunning State = "running"
	StatePaused  State = "paused"
	// StateCrashed: the process is gone without a stop (PID 0; disk
	// kept), or the guest panicked and is held paused (PID set, Reason).
	StateCrashed State = "crashed"
)

// Disk is a VM's one virtio disk.
type Disk struct {
	// Path is the qcow2 file; Create makes it unless it exists.
	Path string
	// SizeMiB is the virtual size.
	SizeMiB int
	// Backing, when set, is a qcow2 the new disk is layered on (copy on
	// write). The backing file must already exist at that path.
	Backing string
	// Shared is true when Path is on storage other hosts see.
	Shared bool
}

// VMSpec is everything a driver needs to create and run one VM. All paths
// are local to the host.
type VMSpec struct {
	ID   string // UUID; the driver's key
	Name string

	VCPUs        int
	MaxVCPUs     int // hotplug ceiling; 0 means VCPUs
	MemoryMiB    int
	MaxMemoryMiB int // hotplug ceiling; 0 means MemoryMiB
	// BootMemoryMiB is the memory the VM boots with (0: MemoryMiB); the
	// rest of MemoryMiB is hot-plugged at start, so that a migration's
	// destination has the same devices as a source that hot-plugged.
	BootMemoryMiB int

	// Direct kernel boot; empty Kernel means firmware boot from Disk.
	Kernel  string
	Initrd  string
	Cmdline string

	Disk *Disk // nil: no disk

	// CPUModel is the guest CPU model ("host", or a named baseline such as
	// "qemu64" that lets the VM move between unlike hosts). Empty: the
	// driver's default.
	CPUModel string

	// OnPanic is what the driver does when the guest kernel panics:
	// api.OnPanicRestart (also when empty), OnPanicPause or OnPanicNone.
	// A migration's destination gets the source's, so the VM keeps it.
	OnPanic string

	// NICs are the VM's network interfaces, in the guest's order. A
	// migration's destination gets the same ones: same MACs, same
	// addresses; the driver plugs each into its network on this host
	// before QEMU starts and unplugs it when the VM leaves the host.
	NICs []NIC
	// Seed is a read-only image the guest reads its configuration from
	// (a NoCloud seed, volume label cidata), attached as a virtio disk
	// after Disk; empty: none. The agent builds it, the same bytes on
	// every host.
	Seed string
}

// NIC is one VM network interface: a port of a network.
type NIC struct {
	Port   string // the port's ID; the driver derives the tap's name from it
	MAC    string
	IP     string // the port's address, without prefix
	Bridge string // the network's bridge on this host
	// Uplink is this host's interface to the network (agent --uplink);
	// empty: none.
	Uplink string
	MTU    int
	// PortSecurity: the host drops what the VM sends from another MAC
	// or address.
	PortSecurity bool
}

// Panic is a guest kernel panic the driver saw (QEMU's GUEST_PANICKED).
type Panic struct {
	At     time.Time
	Reason string // e.g. "guest panicked (pvpanic)"
	Count  int    // panics seen since the VM was defined on this host
	// Arrived: the guest panicked on a migration's source and arrived
	// here held at that panic; not a panic of its own here.
	Arrived bool
}

// Status is what a driver knows of one VM.
type Status struct {
	ID        string
	Name      string
	State     State
	PID       int       // hypervisor process, 0 when not running
	StartedAt time.Time // zero when not running
	Spec      VMSpec
	// Incoming, for a copy PrepareIncoming started, says whether its
	// guest has run here yet (IncomingNone once it has).
	Incoming IncomingState
	// Reason says why the VM is crashed while its process lives: the
	// guest panicked and is held paused (on-panic pause).
	Reason string
	// LastPanic is the guest's last kernel panic here, nil if none.
	LastPanic *Panic
}

// StopOptions tune Stop.
type StopOptions struct {
	// Force kills the VM at once instead of asking the guest to power off.
	Force bool
	// Timeout bounds a graceful stop; after it the VM is killed.
	// Zero means the driver's default.
	Timeout time.Duration
}

// Driver runs VMs on one host. Every method that does I/O takes ctx first.
// Errors wrap the sentinels in internal/errs: ErrNotFound for an unknown
// VM, ErrConflict for an operation the VM's state forbids (starting a
// running VM is not an error; it is a no-op).
type Driver interface {
	// Capabilities reports what this driver can do on this host.
	Capabilities() Capabilities

	// Create defines a VM and prepares its disk without starting it. It is
	// idempotent for the same spec.
	Create(ctx context.Context, spec VMSpec) error
	// Start boots a defined VM. Starting a running VM is a no-op.
	Start(ctx context.Context, id string) error
	// Stop powers a VM off; stopping a stopped VM is a no-op.
	Stop(ctx context.Context, id string, opts StopOptions) error
	// Reboot resets a running VM.
	Reboot(ctx context.Context, id string) error
	// Delete stops a VM if needed and removes it with its disk and all
	// state. Deleting an unknown VM returns ErrNotFound.
	Delete(ctx context.Context, id string) error

	// Status reports one VM.
	Status(ctx context.Context, id string) (Status, error)
	// List reports every VM the driver knows.
	List(ctx context.Context) ([]Status, error)
	// Console returns the VM's serial console output from byte offset on,
	// up to what has been written so far. Following is the caller's loop.
	Console(ctx context.Context, id string, offset int64) (io.ReadCloser, error)

	// Recover reattaches to VMs that kept running while the agent was
	// away (their processes outlive the agent) and reloads the definitions
	// of stopped ones, from the driver's state directory.
	Recover(ctx context.Context) ([]Status, error)
	// Close releases the driver's connections; VMs keep running.
	Close() error
}
