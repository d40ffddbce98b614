// Package hostapi holds the wire types between the controller and the host
// agents: the heartbeat an agent sends, and the requests the controller
// sends to an agent's HTTP API. They are internal to godwit; the public
// API is package api.
package hostapi

import (
	"strconv"
	"time"

	"github.com/godwit/godwit/api"
)

// Heartbeat is the body of POST /v1/internal/heartbeat (agent →
// controller). Host carries what the agent measured; the controller fills
// in state, enablement and allocations itself.
type Heartbeat struct {
	Host api.Host   `json:"host"`
	VMs  []VMReport `json:"vms"`
	// Cleaned lists stale copies the agent removed since its last
	// delivered heartbeat, as the controller asked (HeartbeatReply).
	Cleaned []StaleVM `json:"cleaned,omitempty"`
}

// HeartbeatReply is the controller's answer to a heartbeat.
type HeartbeatReply struct {
	// Remove lists VMs this host must never run again: they were rebuilt
	// elsewhere while it was down. The agent stops each one and forgets
	// it — deleting a local disk, never a shared one — then reports it in
	// Cleaned.
	Remove []StaleVM `json:"remove,omitempty"`
}

// StaleVM names a stale copy of a VM on a host.
type StaleVM struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// VMReport is what an agent reports of one VM.
type VMReport struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"` // driver state: running, stopped, paused, crashed
	PID   int    `json:"pid,omitempty"`
	// Incoming, for a migration's destination copy, says whether its
	// guest has run here: "waiting" (never), "unknown" (the host cannot
	// tell), or empty (it has, or the VM did not arrive by migration).
	Incoming string `json:"incoming,omitempty"`
	// Reason says why a VM is crashed while its process lives: its guest
	// panicked and is held paused (on-panic pause).
	Reason string `json:"reason,omitempty"`
	// LastPanic is the guest's last kernel panic on this host.
	LastPanic *Panic `json:"last_panic,omitempty"`
}

// Panic is a guest kernel panic as a host reports it. Count is the
// host's: panics since the VM was defined there. Arrived says the guest
// panicked on a migration's source and arrived held at that panic: the
// source's panic, not another.
type Panic struct {
	At      time.Time `json:"at"`
	Reason  string    `json:"reason"`
	Count   int       `json:"count"`
	Arrived bool      `json:"arrived,omitempty"`
}

// CreateVM is the body of PUT /v1/vms/{id} (controller → agent): define
// the VM, fetch its image if the agent lacks it, create its disk and, when
// Start is set, boot it. The call is idempotent.
type CreateVM struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	VCPUs     int    `json:"vcpus"`
	MemoryMiB int    `json:"memory_mib"`
	DiskMiB   int    `json:"disk_mib"`
	// Hotplug ceilings (0: none beyond VCPUs and MemoryMiB) and the boot
	// memory (0: MemoryMiB); MemoryMiB − BootMemoryMiB is hot-plugged.
	// A migration's destination gets the source's values, so both ends
	// have the same devices.
	MaxVCPUs      int       `json:"max_vcpus,omitempty"`
	MaxMemoryMiB  int       `json:"max_memory_mib,omitempty"`
	BootMemoryMiB int       `json:"boot_memory_mib,omitempty"`
	Pool          string    `json:"pool"`
	Image         api.Image `json:"image"`
	// BaseSHA256 is the checksum of the base the VM's disk is layered on,
	// as the controller recorded it (api.VM.ImageSHA256). The agent
	// layers the disk on no base with other content: it refuses an
	// Image whose disk file differs, and checks its own copy's bytes.
	// Empty: no such record (the image has no disk).
	BaseSHA256 string `json:"base_sha256,omitempty"`
	Cmdline    string `json:"cmdline,omitempty"` // appended to the image's
	Start      bool   `json:"start"`
	// OnPanic is the guest panic policy (api.OnPanic*; empty: restart).
	// A migration's destination gets it too (agentSpec).
	OnPanic string `json:"on_panic,omitempty"`
	// PostCopy, for an incoming migration: allow switching to post-copy
	// (the capability must be set on both ends before the start).
	PostCopy bool `json:"post_copy,omitempty"`
	// Encrypt, for an incoming migration: the streams are encrypted with
	// the hosts' certificates (a cluster with a CA).
	Encrypt bool `json:"encrypt,omitempty"`
	// NICs are the VM's ports with what the host needs of their networks,
	// the same for every copy of the VM.
	NICs []NIC `json:"nics,omitempty"`
	// UserData goes into the guest's NoCloud seed with its NICs.
	UserData string `json:"user_data,omitempty"`
	// PublicKeys are SSH public keys for the guest, one line each (its
	// key pair's, api.VM.PublicKey): the seed's meta-data public-keys,
	// which cloud-init adds to the default user's authorized_keys.
	PublicKeys []string `json:"public_keys,omitempty"`
}

// NIC is one VM port as a host plugs it and the guest configures it.
type NIC struct {
	Port         string `json:"port"` // the port's ID
	Network      string `json:"network"`
	MAC          string `json:"mac"`
	Address      string `json:"address"` // CIDR: the port's IP with the subnet's prefix length
	Gateway      string `json:"gateway,omitempty"`
	MTU          int    `json:"mtu"`
	Bridge       string `json:"bridge"`
	PortSecurity bool   `json:"port_security"`
}

// StopVM is the body of POST /v1/vms/{id}/stop.
type StopVM struct {
	Force          bool `json:"force,omitempty"`
	TimeoutSeconds int  `json:"timeout_seconds,omitempty"`
}

// IncomingReply is the answer to POST /v1/vms/{id}/incoming: the URI the
// source migrates to.
type IncomingReply struct {
	URI string `json:"uri"`
	NBD string `json:"nbd,omitempty"` // host:port of the exported disk for a block copy
	// PostCopyPreempt: the destination takes post-copy page requests on a
	// channel of their own; the source must turn it on too.
	PostCopyPreempt bool `json:"postcopy_preempt,omitempty"`
}

// MigrateOut is the body of POST /v1/vms/{id}/migrate.
type MigrateOut struct {
	URI             string `json:"uri"`
	NBD             string `json:"nbd,omitempty"`
	PostCopyPreempt bool   `json:"postcopy_preempt,omitempty"` // as the destination's IncomingReply said
	MaxDowntimeMS   int    `json:"max_downtime_ms,omitempty"`
	// BandwidthMBPerS is the migration's cap as recorded, in MB/s
	// (api.MB); the agent hands the driver bytes/s (CapBytesPerS).
	BandwidthMBPerS int `json:"bandwidth_mb_per_s,omitempty"`
	// Deprecated: BandwidthMBps is BandwidthMBPerS under its old name,
	// as a controller from before the rename sends it; read through
	// CapBytesPerS. Remove once no such controller runs.
	BandwidthMBps int  `json:"bandwidth_mbps,omitempty"`
	PostCopy      bool `json:"post_copy,omitempty"`
	// Encrypt the streams with the hosts' certificates; Destination is
	// the destination host's name, which its certificate must carry.
	Encrypt      bool       `json:"encrypt,omitempty"`
	Destination  string     `json:"destination,omitempty"`
	AutoConverge bool       `json:"auto_converge,omitempty"`
	Policy       api.Policy `json:"policy,omitempty"`
	// CompletionTimeoutPerGiB bounds the migration (per GiB of RAM) and
	// TimeoutAction says what then: abort or force.
	CompletionTimeoutPerGiBS int    `json:"completion_timeout_per_gib_s,omitempty"`
	TimeoutAction            string `json:"timeout_action,omitempty"`
}

// CapBytesPerS is the bandwidth cap in the driver's unit, bytes/s, under
// either name; 0: the driver's default.
func (m MigrateOut) CapBytesPerS() int64 {
	mbPerS := m.BandwidthMBPerS
	if mbPerS == 0 {
		mbPerS = m.BandwidthMBps
	}
	return int64(mbPerS) * api.MB
}

// WaitParam is the query parameter, in milliseconds, for which GET
// /v1/vms/{id}/migration may wait for the migration to end before it
// answers; MaxWait bounds it.
const (
	WaitParam = "wait_ms"
	MaxWait   = 5 * time.Second
)

// ParseWait reads a WaitParam value: a wait between 0 (none: a missing,
// malformed or non-positive value) and MaxWait.
func ParseWait(s string) time.Duration {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return 0
	}
	return time.Duration(min(ms, MaxWait.Milliseconds())) * time.Millisecond
}

// JoinRequest is what a joining host sends the controller (POST
// /v1/join): its name, the join token's secret, and a PEM certificate
// request for the key it made.
type JoinRequest struct {
	Host   string `json:"host"`
	Secret string `json:"secret"`
	CSR    string `json:"csr"`
}

// JoinReply is the host's certificate and the cluster's CA, in PEM.
type JoinReply struct {
	Cert string `json:"cert"`
	CA   string `json:"ca"`
}

// MigrationStatus is the answer to GET /v1/vms/{id}/migration.
type MigrationStatus struct {
	Status             string       `json:"status"` // active, completed, failed, cancelled, none, postcopy-paused
	Error              string       `json:"error,omitempty"`
	Strategy           api.Strategy `json:"strategy,omitempty"`
	MemoryTotal        int64        `json:"memory_total"`
	MemoryTransferred  int64        `json:"memory_transferred"`
	MemoryRemaining    int64        `json:"memory_remaining"`
	MemoryZero         int64        `json:"memory_zero,omitempty"`
	DiskTotal          int64        `json:"disk_total,omitempty"`
	DiskTransferred    int64        `json:"disk_transferred,omitempty"`
	DirtyRate          int64        `json:"dirty_rate"`
	Throughput         float64      `json:"throughput"`
	Pass               int          `json:"pass"`
	ExpectedDowntimeMS int64        `json:"expected_downtime_ms"`
	DowntimeMS         int64        `json:"downtime_ms"`
	TotalTimeMS        int64        `json:"total_time_ms"`
	// Convergence and Decisions are the engine's reasoning and actions.
	Convergence *api.Convergence `json:"convergence,omitempty"`
	Decisions   []api.Decision   `json:"decisions,omitempty"`
}

// ImportDisk is the body of POST /v1/vms/{id}/import (to the destination
// of a cold migration with local disks): fetch the stopped VM's disk from
// the source agent, verify it, and define the VM on it.
type ImportDisk struct {
	VM     CreateVM `json:"vm"`
	Source string   `json:"source"` // the source agent's registered URL, https://HOST:PORT
	// SourceHost is the source's host name, which its certificate must
	// carry (a cluster with a CA): the disk comes from that host only.
	SourceHost string `json:"source_host"`
	// Token is the transfer's token, which the source was granted for
	// this VM's disk (TransferGrant); the destination presents it.
	Token string `json:"token"`
}

// ImportStatus is the answer to GET /v1/vms/{id}/import.
type ImportStatus struct {
	Status      string `json:"status"` // active, completed, failed, none
	Error       string `json:"error,omitempty"`
	Total       int64  `json:"total"`
	Transferred int64  `json:"transferred"`
	Attempts    int    `json:"attempts"` // connections used; >1 when resumed
}

// DiskChecksum is the answer to GET /v1/vms/{id}/disk/sha256.
type DiskChecksum struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ResizeVM is the body of POST /v1/vms/{id}/resize. Zero fields keep
// their value. A running VM is resized online or not at all: when a part
// cannot be done online the agent changes nothing and answers 422 with
// the reason. A stopped VM has its definition changed (and its disk
// grown) for the next start; its ceilings may rise too.
type ResizeVM struct {
	VCPUs        int `json:"vcpus,omitempty"`
	MemoryMiB    int `json:"memory_mib,omitempty"`
	DiskMiB      int `json:"disk_mib,omitempty"`
	MaxVCPUs     int `json:"max_vcpus,omitempty"`      // stopped VMs only
	MaxMemoryMiB int `json:"max_memory_mib,omitempty"` // stopped VMs only
}

// ResizeReply is the answer to POST /v1/vms/{id}/resize: the sizes the VM
// has now. Memory shrinks only as far as the guest released it, so
// MemoryMiB may stay above the request (Notes says so).
type ResizeReply struct {
	VCPUs         int      `json:"vcpus"`
	MemoryMiB     int      `json:"memory_mib"`
	DiskMiB       int      `json:"disk_mib"`
	BootMemoryMiB int      `json:"boot_memory_mib"`
	MaxVCPUs      int      `json:"max_vcpus"`
	MaxMemoryMiB  int      `json:"max_memory_mib"`
	Online        bool     `json:"online"` // the VM ran throughout
	Notes         []string `json:"notes,omitempty"`
	VM            VMReport `json:"vm"`
}
