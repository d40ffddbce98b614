package api

import "time"

// IntentKind is what a user asks for. The controller turns each intent
// into service operations (live or cold migrations, rebuilds, resizes)
// and records it with them, so an intent survives a controller restart
// and can be listed, watched and cancelled.
type IntentKind string

// Intent kinds.
const (
	IntentMigrate  IntentKind = "migrate"
	IntentDrain    IntentKind = "drain"    // host up, maintenance: move every VM away
	IntentEvacuate IntentKind = "evacuate" // host down: rebuild every VM elsewhere
	IntentResize   IntentKind = "resize"
	IntentRebuild  IntentKind = "rebuild"
)

// IntentState is where an intent is. It ends in one of the final states
// (Final): planned (a dry run), completed, partial, failed, cancelled or
// reverted. A resize or a cold migration held for confirmation
// (ResizeRequest.Hold, MigrateRequest.Hold) waits in
// awaiting-confirmation, running nothing, until it is confirmed
// (completed) or reverted (reverting, then reverted).
type IntentState string

// Intent states.
const (
	IntentPlanned    IntentState = "planned" // a dry run: nothing was changed
	IntentRunning    IntentState = "running"
	IntentCancelling IntentState = "cancelling" // no new operations start; running ones finish or abort
	IntentCompleted  IntentState = "completed"  // every operation done
	IntentPartial    IntentState = "partial"    // ended; some operations were skipped or failed (see each)
	IntentFailed     IntentState = "failed"     // stopped on a failure (see Reason)
	IntentCancelled  IntentState = "cancelled"
	// IntentAwaitingConfirm: a held resize's or held cold migration's
	// operations succeeded; it waits for confirm (keep the new size or
	// host: completed) or revert.
	IntentAwaitingConfirm IntentState = "awaiting-confirmation"
	// IntentReverting: a held resize or cold migration runs its way
	// back, as operations appended to its own (Intent.Revert says from
	// which one).
	IntentReverting IntentState = "reverting"
	IntentReverted  IntentState = "reverted" // the way back done: old sizes (and host) again, or Reason says what stayed
)

// Final reports whether an intent in this state has ended (or, planned,
// never started).
func (s IntentState) Final() bool {
	switch s {
	case IntentPlanned, IntentCompleted, IntentPartial, IntentFailed, IntentCancelled, IntentReverted:
		return true
	}
	return false
}

// Settled reports whether nothing runs for an intent in this state: it
// ended, or it is held (a resize or a cold migration) awaiting the
// user's confirm or revert.
func (s IntentState) Settled() bool { return s.Final() || s == IntentAwaitingConfirm }

// OperationKind is a service operation an intent is made of. The first
// two are the migration kinds (MigrationKind); resize and rebuild are not
// migrations.
type OperationKind string

// Service operation kinds.
const (
	OpLive                  = OperationKind(KindLive)
	OpCold                  = OperationKind(KindCold)
	OpResize  OperationKind = "resize"
	OpRebuild OperationKind = "rebuild"
	OpStop    OperationKind = "stop" // a drain's failure policy "stop": the VM is shut down where it is
	OpNone    OperationKind = "none" // nothing to do, or nothing possible (see Reason)
)

// Migration returns the migration kind of a live or cold operation, and
// false for the others.
func (k OperationKind) Migration() (MigrationKind, bool) {
	switch k {
	case OpLive, OpCold:
		return MigrationKind(k), true
	}
	return "", false
}

// Operation returns the service operation of this migration kind.
func (k MigrationKind) Operation() OperationKind { return OperationKind(k) }

// OperationState is where a service operation of an intent is.
type OperationState string

// Operation states.
const (
	OpPlanned   OperationState = "planned" // in a dry run
	OpPending   OperationState = "pending"
	OpRunning   OperationState = "running"
	OpDone      OperationState = "done"
	OpSkipped   OperationState = "skipped" // left as it was, by policy (see Reason)
	OpFailed    OperationState = "failed"
	OpCancelled OperationState = "cancelled"
)

// FailurePolicy is what a drain does with a VM whose live migration
// fails or cannot start (DrainRequest.OnFailure).
type FailurePolicy string

// Drain failure policies.
const (
	OnFailureSkip  FailurePolicy = "skip"  // leave it running where it is and report it (default)
	OnFailureCold  FailurePolicy = "cold"  // try a cold migration instead
	OnFailureStop  FailurePolicy = "stop"  // shut it down where it is
	OnFailureAbort FailurePolicy = "abort" // stop the drain; start no further moves
)

// FailurePolicies lists the valid drain failure policies.
var FailurePolicies = []FailurePolicy{OnFailureSkip, OnFailureCold, OnFailureStop, OnFailureAbort}

// Intent is one user request and the service operations it became.
type Intent struct {
	ID     string     `json:"id,omitempty"` // empty for a dry run
	Kind   IntentKind `json:"kind"`
	Target string     `json:"target"` // a host (drain, evacuate) or a VM
	// Project is the target VM's project; empty for a host's intents,
	// which only admins see.
	Project string      `json:"project,omitempty"`
	State   IntentState `json:"state"`
	Reason  string      `json:"reason,omitempty"` // why it failed, or was partial
	// Stopped is set when a failure stopped the intent (on-failure
	// abort): it starts nothing more and ends failed.
	Stopped bool `json:"stopped,omitempty"`

	Params IntentParams `json:"params"`
	// Operations are the service operations, one per VM (two for a resize
	// that must move first), in the order they run; a revert appends its
	// own (Revert.FirstOperation).
	Operations []Operation `json:"operations"`
	// PredictedMS is the plan's predicted duration, given the concurrency.
	PredictedMS int64 `json:"predicted_ms,omitempty"`
	// Notes say what the plan assumed or what was noticed on the way.
	Notes []string `json:"notes,omitempty"`
	// Revert is what a held resize or held cold migration (params.hold)
	// needs to go back, recorded when it is planned, before anything
	// moves; nil for every other intent.
	Revert *ResizeRevert `json:"revert,omitempty"`

	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitempty"`
}

// ResizeRevert is the way back of a held resize or held cold migration
// (named after Nova's revertResize, which undoes both): the VM as it was
// before it, persisted with the intent so that a revert, and a
// controller restarted in the middle of one, need nothing else.
type ResizeRevert struct {
	// Flavor is the VM's sizes before the resize, and FlavorName the
	// stored flavor it recorded then ("" for none). A held migration
	// changes no size and leaves them empty.
	Flavor     Flavor `json:"flavor"`
	FlavorName string `json:"flavor_name,omitempty"`
	// Host is the host the VM was on before the resize moved it
	// (allow_move), or before the held migration moved it (always set
	// then); empty when a resize did not move it.
	Host string `json:"host,omitempty"`
	// FirstOperation is the index in Operations of the way back's first
	// operation (for a resize: a resize to Flavor, then a cold move to
	// Host; for a migration: the cold move to Host); 0 until a revert is
	// asked for.
	FirstOperation int `json:"first_operation,omitempty"`
}

// Reverting reports whether operation i of an intent is part of a held
// intent's way back (so a resize resizes to Revert.Flavor, not to
// Params', and a move goes to its recorded destination).
func (in Intent) Reverting(i int) bool {
	return in.Revert != nil && in.Revert.FirstOperation > 0 && i >= in.Revert.FirstOperation
}

// Operation is one service operation of an intent.
type Operation struct {
	VM    string         `json:"vm"`
	VMID  string         `json:"vm_id"`
	Kind  OperationKind  `json:"kind"` // live, cold, resize, rebuild, stop, none
	State OperationState `json:"state"`
	// Step is where a running resize or rebuild is (e.g. "stopping");
	// migrations keep their own typed state on the migration record.
	Step        string   `json:"step,omitempty"`
	Source      string   `json:"source,omitempty"`
	Destination string   `json:"destination,omitempty"`
	Strategy    Strategy `json:"strategy,omitempty"` // the driver strategy expected (plan) or run
	// MigrationID links a live or cold operation to its migration record.
	MigrationID string `json:"migration_id,omitempty"`
	PredictedMS int64  `json:"predicted_ms,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Attempts    int    `json:"attempts,omitempty"`

	StartedAt  time.Time `json:"started_at,omitempty"`
	FinishedAt time.Time `json:"finished_at,omitempty"`
}

// IntentParams are the knobs of every intent kind; each kind uses its own.
type IntentParams struct {
	// migrate
	Migrate *MigrateRequest `json:"migrate,omitempty"`
	// drain
	OnFailure         FailurePolicy `json:"on_failure,omitempty"`
	MaxPerSource      int           `json:"max_per_source,omitempty"`
	MaxPerDestination int           `json:"max_per_destination,omitempty"`
	MaxPerCluster     int           `json:"max_per_cluster,omitempty"`
	// MaxTransfersPerSource bounds the memory transfers out of the host
	// at once; the other moves prepare meanwhile and wait for the link.
	MaxTransfersPerSource int `json:"max_transfers_per_source,omitempty"`
	// BandwidthMBPerS caps each live move, in MB/s (see MB); its old
	// name, bandwidth_mbps, is read too.
	BandwidthMBPerS int    `json:"bandwidth_mb_per_s,omitempty"`
	MaxDowntimeMS   int    `json:"max_downtime_ms,omitempty"`
	Policy          Policy `json:"policy,omitempty"`
	// evacuate
	HostIsDown    bool     `json:"host_is_down,omitempty"`
	AllowDataLoss bool     `json:"allow_data_loss,omitempty"`
	VMs           []string `json:"vms,omitempty"` // evacuate: only these VMs
	// resize
	VCPUs        int  `json:"vcpus,omitempty"`
	MemoryMiB    int  `json:"memory_mib,omitempty"`
	DiskMiB      int  `json:"disk_mib,omitempty"`
	AllowRestart bool `json:"allow_restart,omitempty"`
	AllowMove    bool `json:"allow_move,omitempty"`
	// FlavorName is the stored flavor the sizes above were read from at
	// planning (its name); the VM records it once it has those sizes.
	FlavorName string `json:"flavor_name,omitempty"`
	// Hold ends the resize (or, kind migrate, the cold migration:
	// Migrate.Hold) in awaiting-confirmation rather than completed, to
	// be confirmed or reverted (Intent.Revert).
	Hold bool `json:"hold,omitempty"`
	// rebuild
	Image string `json:"image,omitempty"`
	// cancel: abort running migrations instead of letting them finish
	AbortRunning bool `json:"abort_running,omitempty"`
}

// DrainRequest is the body of POST /v1/hosts/{name}/drain.
type DrainRequest struct {
	// OnFailure is the per-VM failure policy: skip (default), cold, stop
	// or abort.
	OnFailure FailurePolicy `json:"on_failure,omitempty"`
	// Concurrency limits; 0 means the cluster default (docs/intents.md).
	MaxPerSource      int `json:"max_per_source,omitempty"`
	MaxPerDestination int `json:"max_per_destination,omitempty"`
	MaxPerCluster     int `json:"max_per_cluster,omitempty"`
	// MaxTransfersPerSource bounds how many of the moves out of the host
	// send memory at once (default 1: they share one link); the others
	// prepare their destination meanwhile and wait for the link. At most
	// MaxPerSource.
	MaxTransfersPerSource int `json:"max_transfers_per_source,omitempty"`
	// Tuning passed to each live migration; 0 means the default.
	// BandwidthMBPerS is in MB/s (see MB).
	BandwidthMBPerS int `json:"bandwidth_mb_per_s,omitempty"`
	// Deprecated: BandwidthMBps is BandwidthMBPerS under its old name
	// (the same megabytes a second), accepted from older clients; the
	// controller folds it into BandwidthMBPerS (Normalize).
	BandwidthMBps int `json:"bandwidth_mbps,omitempty"`
	MaxDowntimeMS int `json:"max_downtime_ms,omitempty"`
	// Policy is each live move's convergence policy; empty means auto.
	Policy Policy `json:"policy,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// EvacuateRequest is the body of POST /v1/hosts/{name}/evacuate.
type EvacuateRequest struct {
	// HostIsDown is the operator's word that the host is dead (powered
	// off, fenced): required until the host's storage lease has expired.
	HostIsDown bool `json:"host_is_down,omitempty"`
	// AllowDataLoss lets VMs with local disks be rebuilt from their image
	// elsewhere; without it they are refused.
	AllowDataLoss bool `json:"allow_data_loss,omitempty"`
	// VMs evacuates only these VMs of the host (Nova's evacuate is per
	// server); empty: every VM. Evacuations of different VMs of one host
	// may run side by side.
	VMs    []string `json:"vms,omitempty"`
	DryRun bool     `json:"dry_run,omitempty"`
}

// ResizeRequest is the body of POST /v1/vms/{name}/resize. Zero fields
// keep their current size.
type ResizeRequest struct {
	VCPUs     int `json:"vcpus,omitempty"`
	MemoryMiB int `json:"memory_mib,omitempty"`
	DiskMiB   int `json:"disk_mib,omitempty"`
	// FlavorName resizes to a stored flavor's sizes (named by name or
	// ID), all three of them; the sizes above must then be left out.
	FlavorName string `json:"flavor_name,omitempty"`
	// AllowRestart permits an offline resize (a restart in place) when
	// the change cannot be made online.
	AllowRestart bool `json:"allow_restart,omitempty"`
	// AllowMove permits a migration (live if possible) to a host with
	// room first, when the VM's host lacks it.
	AllowMove bool `json:"allow_move,omitempty"`
	// Hold keeps the resize, once done, in state awaiting-confirmation
	// (Nova's VERIFY_RESIZE) until POST /v1/intents/{id}/confirm keeps
	// it or POST /v1/intents/{id}/revert goes back to the old sizes and,
	// if it moved, the old host. A grown disk cannot be reverted.
	Hold   bool `json:"hold,omitempty"`
	DryRun bool `json:"dry_run,omitempty"`
}

// RebuildRequest is the body of POST /v1/vms/{name}/rebuild: reimage the
// VM in place. Its disk is replaced: data on it is lost.
type RebuildRequest struct {
	Image  string `json:"image,omitempty"` // default: the VM's current image
	DryRun bool   `json:"dry_run,omitempty"`
}

// CancelIntentRequest is the body of POST /v1/intents/{id}/cancel.
type CancelIntentRequest struct {
	// AbortRunning aborts the migrations already running (they roll
	// back); by default they finish.
	AbortRunning bool `json:"abort_running,omitempty"`
}

// FinalIntent reports whether an intent state is final.
//
// Deprecated: use IntentState.Final.
func FinalIntent(state IntentState) bool { return state.Final() }
