package api

import "time"

// Intents: what users ask for. The controller turns each into service
// operations (live or cold migrations, rebuilds, resizes) and records it
// with them, so an intent survives a controller restart and can be listed,
// watched and cancelled.
const (
	IntentMigrate  = "migrate"
	IntentDrain    = "drain"    // host up, maintenance: move every VM away
	IntentEvacuate = "evacuate" // host down: rebuild every VM elsewhere
	IntentResize   = "resize"
	IntentRebuild  = "rebuild"
)

// Intent states. An intent ends in one of the last four.
const (
	IntentPlanned    = "planned" // a dry run: nothing was changed
	IntentRunning    = "running"
	IntentCancelling = "cancelling" // no new operations start; running ones finish or abort
	IntentCompleted  = "completed"  // every operation done
	IntentPartial    = "partial"    // ended; some operations were skipped or failed (see each)
	IntentFailed     = "failed"     // stopped on a failure (see Reason)
	IntentCancelled  = "cancelled"
)

// Service operation kinds: what an intent is made of. The first two are
// the only migration kinds; resize and rebuild are not migrations.
const (
	OpLive    = KindLive
	OpCold    = KindCold
	OpResize  = "resize"
	OpRebuild = "rebuild"
	OpStop    = "stop" // a drain's failure policy "stop": the VM is shut down where it is
	OpNone    = "none" // nothing to do, or nothing possible (see Reason)
)

// Operation states.
const (
	OpPlanned   = "planned" // in a dry run
	OpPending   = "pending"
	OpRunning   = "running"
	OpDone      = "done"
	OpSkipped   = "skipped" // left as it was, by policy (see Reason)
	OpFailed    = "failed"
	OpCancelled = "cancelled"
)

// Drain failure policies: what happens to a VM whose live migration fails
// or cannot start.
const (
	OnFailureSkip  = "skip"  // leave it running where it is and report it (default)
	OnFailureCold  = "cold"  // try a cold migration instead
	OnFailureStop  = "stop"  // shut it down where it is
	OnFailureAbort = "abort" // stop the drain; start no further moves
)

// Intent is one user request and the service operations it became.
type Intent struct {
	ID     string `json:"id,omitempty"` // empty for a dry run
	Kind   string `json:"kind"`
	Target string `json:"target"` // a host (drain, evacuate) or a VM
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"` // why it failed, or was partial
	// Stopped is set when a failure stopped the intent (on-failure
	// abort): it starts nothing more and ends failed.
	Stopped bool `json:"stopped,omitempty"`

	Params IntentParams `json:"params"`
	// Operations are the service operations, one per VM (two for a resize
	// that must move first), in the order they run.
	Operations []Operation `json:"operations"`
	// PredictedMS is the plan's predicted duration, given the concurrency.
	PredictedMS int64 `json:"predicted_ms,omitempty"`
	// Notes say what the plan assumed or what was noticed on the way.
	Notes []string `json:"notes,omitempty"`

	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitempty"`
}

// Operation is one service operation of an intent.
type Operation struct {
	VM    string `json:"vm"`
	VMID  string `json:"vm_id"`
	Kind  string `json:"kind"` // live, cold, resize, rebuild, stop, none
	State string `json:"state"`
	// Step is where a running resize or rebuild is (e.g. "stopping");
	// migrations keep their own typed state on the migration record.
	Step     string `json:"step,omitempty"`
	Source   string `json:"source,omitempty"`
	Dest     string `json:"destination,omitempty"`
	Strategy string `json:"strategy,omitempty"` // the driver strategy expected (plan) or run
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
	OnFailure     string `json:"on_failure,omitempty"`
	MaxPerSource  int    `json:"max_per_source,omitempty"`
	MaxPerDest    int    `json:"max_per_destination,omitempty"`
	MaxPerCluster int    `json:"max_per_cluster,omitempty"`
	// MaxTransfersPerSource bounds the memory transfers out of the host
	// at once; the other moves prepare meanwhile and wait for the link.
	MaxTransfersPerSource int    `json:"max_transfers_per_source,omitempty"`
	BandwidthMBps         int    `json:"bandwidth_mbps,omitempty"`
	MaxDowntimeMS         int    `json:"max_downtime_ms,omitempty"`
	Policy                string `json:"policy,omitempty"`
	// evacuate
	HostIsDown    bool `json:"host_is_down,omitempty"`
	AllowDataLoss bool `json:"allow_data_loss,omitempty"`
	// resize
	VCPUs        int  `json:"vcpus,omitempty"`
	MemoryMiB    int  `json:"memory_mib,omitempty"`
	DiskMiB      int  `json:"disk_mib,omitempty"`
	AllowRestart bool `json:"allow_restart,omitempty"`
	AllowMove    bool `json:"allow_move,omitempty"`
	// rebuild
	Image string `json:"image,omitempty"`
	// cancel: abort running migrations instead of letting them finish
	AbortRunning bool `json:"abort_running,omitempty"`
}

// DrainRequest is the body of POST /v1/hosts/{name}/drain.
type DrainRequest struct {
	// OnFailure is the per-VM failure policy: skip (default), cold, stop
	// or abort.
	OnFailure string `json:"on_failure,omitempty"`
	// Concurrency limits; 0 means the cluster default (docs/intents.md).
	MaxPerSource  int `json:"max_per_source,omitempty"`
	MaxPerDest    int `json:"max_per_destination,omitempty"`
	MaxPerCluster int `json:"max_per_cluster,omitempty"`
	// MaxTransfersPerSource bounds how many of the moves out of the host
	// send memory at once (default 1: they share one link); the others
	// prepare their destination meanwhile and wait for the link. At most
	// MaxPerSource.
	MaxTransfersPerSource int `json:"max_transfers_per_source,omitempty"`
	// Tuning passed to each live migration; 0 means the default.
	BandwidthMBps int `json:"bandwidth_mbps,omitempty"`
	MaxDowntimeMS int `json:"max_downtime_ms,omitempty"`
	// Policy is each live move's convergence policy; empty means auto.
	Policy string `json:"policy,omitempty"`
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
	DryRun        bool `json:"dry_run,omitempty"`
}

// ResizeRequest is the body of POST /v1/vms/{name}/resize. Zero fields
// keep their current size.
type ResizeRequest struct {
	VCPUs     int `json:"vcpus,omitempty"`
	MemoryMiB int `json:"memory_mib,omitempty"`
	DiskMiB   int `json:"disk_mib,omitempty"`
	// AllowRestart permits an offline resize (a restart in place) when
	// the change cannot be made online.
	AllowRestart bool `json:"allow_restart,omitempty"`
	// AllowMove permits a migration (live if possible) to a host with
	// room first, when the VM's host lacks it.
	AllowMove bool `json:"allow_move,omitempty"`
	DryRun    bool `json:"dry_run,omitempty"`
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
func FinalIntent(state string) bool {
	switch state {
	case IntentPlanned, IntentCompleted, IntentPartial, IntentFailed, IntentCancelled:
		return true
	}
	return false
}
