package driver

import (
	"context"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver/converge"
)

// LiveMigrator is implemented by drivers that can move a running VM's
// memory and device state to another host (Capabilities.LiveMigration).
// The controller drives both ends:
//
//	destination: PrepareIncoming → (source migrates) → SwitchOver
//	source:      MigrateOut → MigrationStatus… → Release
//
// and on failure CancelMigration on the source and Release on the
// destination, leaving the VM running where it was. When the source has
// sent everything but SwitchOver fails, the destination's Status
// (Incoming) says whether the guest ran there: if it never did, the
// destination's copy is released and Resume runs the guest on the source
// again.
type LiveMigrator interface {
	// PrepareIncoming defines the VM from spec and starts it waiting for
	// an incoming migration on an address of listenHost. A disk that is
	// not shared is created empty and exported for the source to copy
	// into. It returns where the source sends to.
	// opts must be those the source will get (post-copy needs both ends).
	PrepareIncoming(ctx context.Context, spec VMSpec, listenHost string, opts MigrateOptions) (Incoming, error)
	// MigrateOut starts sending a running VM (and, with to.NBD, its disk)
	// and returns at once.
	MigrateOut(ctx context.Context, id string, to Incoming, opts MigrateOptions) error
	// MigrationStatus reports an outgoing migration's progress.
	MigrationStatus(ctx context.Context, id string) (MigrationStatus, error)
	// CancelMigration stops an outgoing migration; the VM keeps running.
	CancelMigration(ctx context.Context, id string) error
	// SwitchOver is the destination's half of the switch-over, once the
	// source has sent everything: it waits until the migrated VM runs on
	// this host, resuming a guest that started paused (block copy).
	SwitchOver(ctx context.Context, id string, timeout time.Duration) error
	// Resume runs the guest again on the source of an outgoing migration
	// that completed (the guest paused here) but whose destination never
	// ran it (IncomingWaiting there, and that copy released first): the
	// paused copy here is then the newest. Never once the destination's
	// guest has run, nor after a switch to post-copy. Resuming a running
	// VM is a no-op.
	Resume(ctx context.Context, id string) error
	Releaser
}

// MigrationNotifier is a LiveMigrator that says when an outgoing
// migration's status changes, so that whoever waits for its end learns it
// at once instead of at its next poll (the agent holds a status request
// open on it). A driver without it is polled.
type MigrationNotifier interface {
	// MigrationChanged returns a channel closed at the next change of
	// the status of id's outgoing migration. Take it before reading the
	// status, so that no change falls between the two.
	MigrationChanged(ctx context.Context, id string) (<-chan struct{}, error)
}

// IncomingState says whether the guest of a copy PrepareIncoming started
// has run on this host. When a switch-over fails it decides where the
// guest may run: the source may resume its paused copy only if the
// destination's never ran, for a guest that ran here has moved on from
// the source's memory and disk.
type IncomingState string

// Incoming states.
const (
	// IncomingNone: not an incoming copy, or one whose guest has run here
	// (resumed at least once, even if its process exited since).
	IncomingNone IncomingState = ""
	// IncomingWaiting: the guest never ran here. The copy waits for or
	// loads the migration's state, holds it without having resumed it,
	// failed to load it, or its process exited before resuming it.
	IncomingWaiting IncomingState = "waiting"
	// IncomingUnknown: the driver cannot tell, e.g. the process exited
	// while no agent watched it, or its monitor does not answer.
	IncomingUnknown IncomingState = "unknown"
)

// Releaser is implemented by drivers that can let go of a VM whose disk
// lives on: every move needs it.
type Releaser interface {
	// Release stops the VM's process and forgets the VM without touching
	// its disk: the source after a move, the destination after a failed
	// one (its disk being shared, or the source's).
	Release(ctx context.Context, id string) error
}

// Incoming is where a destination receives a migration.
type Incoming struct {
	URI string // memory and device state, e.g. tcp:10.0.0.2:49152
	NBD string // host:port of the exported disk for a block copy; empty when the disk is shared
	// PostCopyPreempt says the destination listens for post-copy page
	// requests on a channel of their own (QEMU's postcopy-preempt): the
	// source turns it on too, so that a faulting vCPU's page does not
	// wait behind the background stream.
	PostCopyPreempt bool
}

// MigrateOptions tune one migration.
type MigrateOptions struct {
	MaxDowntime time.Duration // 0: the driver's default
	// BandwidthBytesPerS caps the transfer, in bytes/s (QMP's unit);
	// 0: the driver's default.
	BandwidthBytesPerS int64
	// PostCopy allows switching to post-copy (ForceComplete): the guest
	// then runs on the destination while the rest of its memory follows
	// on demand. It always finishes, but a host or link failure during it
	// loses the VM.
	PostCopy bool
	// AutoConverge lets QEMU throttle the guest's vCPUs when pre-copy
	// does not converge, more each pass.
	AutoConverge bool
	// Policy is how the migration is made to converge: api.PolicyAuto
	// (the engine, when empty) or one of the peers' fixed policies.
	// PostCopy above says whether it may switch to post-copy.
	Policy api.Policy
	// TimeoutPerGiB bounds the migration per GiB of RAM, and
	// TimeoutAction (converge.TimeoutForce or TimeoutAbort) says what
	// then; zero values take the policy's defaults.
	TimeoutPerGiB time.Duration
	TimeoutAction string
	// TLS, when set, encrypts the migration's streams (memory and device
	// state, and a block copy's disk) and authenticates both ends with
	// the cluster's certificates. Both ends must be given one.
	TLS *MigrationTLS
}

// MigrationTLS is how a migration's streams are encrypted.
type MigrationTLS struct {
	// Dir holds the host's credentials under QEMU's x509 file names:
	// ca-cert.pem, server-cert.pem, server-key.pem, client-cert.pem,
	// client-key.pem (internal/pki writes them).
	Dir string
	// PeerName is the name the destination's certificate must carry (on
	// the source; the destination takes any host of the cluster's CA).
	PeerName string
}

// Migration statuses a driver reports.
const (
	MigrationActive    = "active"
	MigrationCompleted = "completed"
	MigrationFailed    = "failed"
	MigrationCancelled = "cancelled"
	MigrationNone      = "none"
	// MigrationPostCopyPaused: the link failed after the switch to
	// post-copy. The guest runs on the destination and waits there for
	// pages only the source holds; neither copy alone is the VM, and the
	// move can only be resumed (QEMU's postcopy recovery), never undone.
	MigrationPostCopyPaused = "postcopy-paused"
)

// MigrationStatus is an outgoing migration's state and progress.
type MigrationStatus struct {
	Status   string
	Error    string       // why it failed
	Strategy api.Strategy // e.g. shared-storage/pre-copy, then With the techniques turned to

	MemoryTotal, MemoryTransferred, MemoryRemaining int64 // bytes
	MemoryZero                                      int64 // bytes of zero pages, sent as markers
	DiskTotal, DiskTransferred                      int64 // bytes, for a block copy
	DirtyRate                                       int64 // bytes/s
	Throughput                                      float64
	Pass                                            int
	ExpectedDowntime, Downtime, TotalTime           time.Duration
	Throttle                                        int // vCPU throttle now, %
	// Convergence is the engine's reasoning and decisions so far.
	Convergence *converge.Report
}

// ForceCompleter is implemented by drivers that can make a migration that
// does not converge finish: by switching to post-copy where allowed, or by
// pausing the guest so the last pages stop changing.
type ForceCompleter interface {
	// ForceComplete makes the outgoing migration finish and says how.
	ForceComplete(ctx context.Context, id string) (how string, err error)
}
