package api

import (
	"slices"
	"time"
)

// MigrationKind is how a VM moves: live (while it runs) or cold (stopped,
// moved, started). The service level knows exactly these two.
type MigrationKind string

// Migration kinds.
const (
	KindLive MigrationKind = "live"
	KindCold MigrationKind = "cold"
)

// MigrationState is where a migration is. The transitions are the
// service's to enforce; a record is in one final state at the end.
type MigrationState string

// Migration states.
const (
	MigQueued     MigrationState = "queued"
	MigScheduling MigrationState = "scheduling"
	MigPreparing  MigrationState = "preparing"
	// MigWaitingLink: the destination is prepared; the transfer waits
	// until the source's link is free (a drain sends one at a time).
	MigWaitingLink   MigrationState = "waiting-for-link"
	MigTransferring  MigrationState = "transferring"
	MigSwitchingOver MigrationState = "switching-over"
	MigFinishing     MigrationState = "finishing"
	MigCompleted     MigrationState = "completed"

	MigRolledBack     MigrationState = "failed-rolled-back"    // failed; the VM is as it was on the source
	MigCancelled      MigrationState = "cancelled"             // aborted on request; the VM is as it was
	MigNeedsAttention MigrationState = "error-needs-attention" // failed and could not be cleaned up; see Reason
)

// Final reports whether a migration in this state has ended.
func (s MigrationState) Final() bool {
	switch s {
	case MigCompleted, MigRolledBack, MigCancelled, MigNeedsAttention:
		return true
	}
	return false
}

// Migration is one move of one VM.
type Migration struct {
	ID          string         `json:"id"`
	Intent      string         `json:"intent,omitempty"` // the intent that started it, if any
	VM          string         `json:"vm"`
	VMID        string         `json:"vm_id"`
	Project     string         `json:"project,omitempty"` // the VM's, when it started
	Kind        MigrationKind  `json:"kind"`
	State       MigrationState `json:"state"`
	Reason      string         `json:"reason,omitempty"` // why it failed or was cancelled
	Source      string         `json:"source"`
	Destination string         `json:"destination,omitempty"`
	// Strategy is what the driver ran, e.g. "shared-storage/pre-copy".
	Strategy      Strategy `json:"strategy,omitempty"`
	MaxDowntimeMS int      `json:"max_downtime_ms,omitempty"`
	// BandwidthMBPerS is the bandwidth cap asked for, in MB/s (see MB);
	// 0: the driver's default.
	BandwidthMBPerS int  `json:"bandwidth_mb_per_s,omitempty"`
	PostCopy        bool `json:"post_copy,omitempty"`     // switching to post-copy allowed
	AutoConverge    bool `json:"auto_converge,omitempty"` // vCPU throttling allowed
	// Policy is how a live migration is made to converge.
	Policy Policy `json:"policy,omitempty"`
	// Encrypted says the move's streams between the hosts are encrypted
	// and both ends authenticated (a cluster with a CA): memory and
	// device state, and every disk byte. A live move begun while the
	// cluster setting insecure_migration was on is not.
	Encrypted bool `json:"encrypted,omitempty"`
	// Convergence is what the driver measured, predicted and chose.
	Convergence *Convergence      `json:"convergence,omitempty"`
	Progress    MigrationProgress `json:"progress"`
	// Phases records when each state was entered, in order.
	Phases []Phase `json:"phases"`
	// Decisions records what was done to the migration on the way and
	// why (a force-complete, later the engine's strategy switches).
	Decisions []Decision `json:"decisions,omitempty"`
	// Passes are a live migration's memory passes as the controller saw
	// them, oldest first, at most MaxPasses (the latest): what remained
	// at each one's first read, and the dirty rate and throughput last read in it.
	Passes []PassStat `json:"passes,omitempty"`
	// GuestPanic is the guest's first kernel panic during the migration
	// or within GuestPanicWindow after it completed: a sign the move
	// broke the guest (its Host says on which end it panicked).
	GuestPanic *GuestPanic `json:"guest_panic,omitempty"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
	FinishedAt time.Time   `json:"finished_at,omitempty"`
}

// GuestPanicWindow is how long after a completed migration a guest panic
// is recorded on the migration (Migration.GuestPanic) too.
const GuestPanicWindow = time.Minute

// Policy is how a live migration is made to converge. Auto is godwit's
// engine; the others are the fixed policies peers run, kept for
// comparison and for operators who want one (docs/migration-tuning.md).
// The convergence engine (internal/driver/converge) runs them.
type Policy string

// Convergence policies.
const (
	// PolicyAuto measures the guest's dirty rate, predicts pre-copy and
	// chooses pre-copy, post-copy or throttling per VM, switching when
	// progress stalls.
	PolicyAuto Policy = "auto"
	// PolicyPreCopy is plain pre-copy, never switched: QEMU's defaults,
	// as Nova, KubeVirt and libvirt run them.
	PolicyPreCopy Policy = "pre-copy"
	// PolicyAutoConverge is pre-copy with QEMU's own throttling steps
	// (20 %, then 10 % more a pass), as Incus and Proxmox run it.
	PolicyAutoConverge Policy = "auto-converge"
	// PolicyPostCopy is one pre-copy pass, then post-copy, as Ganeti does.
	PolicyPostCopy Policy = "post-copy"
)

// Policies lists the valid policies.
var Policies = []Policy{PolicyAuto, PolicyPreCopy, PolicyAutoConverge, PolicyPostCopy}

// Known reports whether p is one of Policies.
func (p Policy) Known() bool {
	for _, q := range Policies {
		if p == q {
			return true
		}
	}
	return false
}

// Convergence explains how a live migration was made to finish.
type Convergence struct {
	Policy Policy `json:"policy"`
	// DirtyRate is the guest's dirty rate the choice was made on, in
	// bytes/s, and DirtyRateSource how it was measured (page-sampling
	// before the move, or the migration's own pass statistics).
	DirtyRate       int64  `json:"dirty_rate"`
	DirtyRateSource string `json:"dirty_rate_source,omitempty"`
	// Bandwidth is what the migration may use, in bytes/s.
	Bandwidth int64 `json:"bandwidth"`
	// Prediction is the pre-copy arithmetic in words, and PredictedMS
	// the predicted total time of the chosen strategy.
	Prediction  string `json:"prediction,omitempty"`
	PredictedMS int64  `json:"predicted_ms,omitempty"`
	// Strategy is the technique that runs now: pre-copy, post-copy or
	// auto-converge.
	Strategy        Technique `json:"strategy"`
	PostCopyAllowed bool      `json:"post_copy_allowed"`
	Throttle        int       `json:"throttle,omitempty"` // vCPU throttle now, in %
}

// Decision is one action taken on a running migration.
type Decision struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	Reason string    `json:"reason"`
}

// PassStat is one memory pass of a live migration.
type PassStat struct {
	Pass int `json:"pass"`
	// MemoryRemaining is what was left to send at the pass's first
	// read, in bytes.
	MemoryRemaining int64     `json:"memory_remaining"`
	DirtyRate       int64     `json:"dirty_rate"` // bytes/s, the last read in the pass
	Throughput      float64   `json:"throughput"` // bytes/s, the last read in the pass
	At              time.Time `json:"at"`         // when the pass was first seen
}

// MaxPasses bounds Migration.Passes: a throttled migration may run
// hundreds of short passes, and only the latest are kept.
const MaxPasses = 100

// RecordPass adds what a progress read says to passes: a new entry for a
// pass not seen before, else the pass's rates updated.
func RecordPass(passes []PassStat, p MigrationProgress, at time.Time) []PassStat {
	if p.Pass <= 0 {
		return passes
	}
	if n := len(passes); n > 0 && passes[n-1].Pass >= p.Pass {
		if passes[n-1].Pass == p.Pass {
			passes[n-1].DirtyRate, passes[n-1].Throughput = p.DirtyRate, p.Throughput
		}
		return passes
	}
	passes = append(passes, PassStat{Pass: p.Pass, MemoryRemaining: p.MemoryRemaining, DirtyRate: p.DirtyRate, Throughput: p.Throughput, At: at})
	if len(passes) > MaxPasses {
		passes = slices.Delete(passes, 0, len(passes)-MaxPasses)
	}
	return passes
}

// Phase is a state and when it was entered.
type Phase struct {
	State MigrationState `json:"state"`
	At    time.Time      `json:"at"`
}

// MigrationProgress is what the driver reports while memory moves. Bytes
// and bytes per second; times in milliseconds.
type MigrationProgress struct {
	MemoryTotal        int64   `json:"memory_total"`
	MemoryTransferred  int64   `json:"memory_transferred"`
	MemoryRemaining    int64   `json:"memory_remaining"`
	MemoryZero         int64   `json:"memory_zero,omitempty"` // zero pages, sent as markers: RAM − this is what must really move
	DirtyRate          int64   `json:"dirty_rate"`            // bytes/s
	Throughput         float64 `json:"throughput"`            // bytes/s
	Pass               int     `json:"pass"`
	ExpectedDowntimeMS int64   `json:"expected_downtime_ms"`
	ETAMS              int64   `json:"eta_ms,omitempty"`
	DiskTotal          int64   `json:"disk_total,omitempty"` // bytes of disk to copy (cold, local disks)
	DiskTransferred    int64   `json:"disk_transferred,omitempty"`
	DowntimeMS         int64   `json:"downtime_ms,omitempty"`   // measured, at the end
	TotalTimeMS        int64   `json:"total_time_ms,omitempty"` // measured, at the end
}

// MigrateRequest is the body of POST /v1/vms/{name}/migrate.
type MigrateRequest struct {
	// Kind is live or cold; empty means live when the VM can move live,
	// else cold (unless the cluster forbids the cold fallback).
	Kind MigrationKind `json:"kind,omitempty"`
	// To names the destination; empty lets the scheduler choose. A named
	// host is checked all the same.
	To            string `json:"to,omitempty"`
	MaxDowntimeMS int    `json:"max_downtime_ms,omitempty"`
	// BandwidthMBPerS caps the migration's transfer, in MB/s (see MB);
	// 0: the driver's default.
	BandwidthMBPerS int `json:"bandwidth_mb_per_s,omitempty"`
	// Deprecated: BandwidthMBps is BandwidthMBPerS under its old name
	// (the same megabytes a second), accepted from older clients; the
	// controller folds it into BandwidthMBPerS (Normalize).
	BandwidthMBps int `json:"bandwidth_mbps,omitempty"`
	// PostCopy lets a force-complete switch the live migration to
	// post-copy instead of pausing the guest. Shared disks only.
	PostCopy bool `json:"post_copy,omitempty"`
	// AutoConverge lets QEMU throttle the guest's vCPUs when pre-copy
	// does not converge.
	AutoConverge bool `json:"auto_converge,omitempty"`
	// NoPostCopy forbids post-copy for this move, though the cluster
	// allows it: a post-copy that loses its link loses the VM.
	NoPostCopy bool `json:"no_post_copy,omitempty"`
	// Policy is how a live migration converges; empty means auto.
	Policy Policy `json:"policy,omitempty"`
	// Hold keeps a cold migration, once done, in state
	// awaiting-confirmation (Nova's VERIFY_RESIZE after its cold
	// migrate): the move is recorded as an intent of kind migrate (the
	// reply's migration names it in its intent field) and the VM runs
	// on its destination until POST /v1/intents/{id}/confirm keeps it
	// there (completed) or POST /v1/intents/{id}/revert moves it back,
	// cold, to its old host when that has room (else it stays, and the
	// intent's reason says why). Only for cold migrations: with hold an
	// empty kind means cold, and kind live is refused (400). Until it is
	// confirmed or reverted the VM is neither migrated nor resized again.
	Hold bool `json:"hold,omitempty"`
	// DryRun returns the plan (an Intent in state planned) and changes
	// nothing.
	DryRun bool `json:"dry_run,omitempty"`
}
