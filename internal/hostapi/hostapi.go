// Package hostapi holds the wire types between the controller and the host
// agents: the heartbeat an agent sends, and the requests the controller
// sends to an agent's HTTP API. They are internal to godwit; the public
// API is package api.
package hostapi

import "github.com/godwit/godwit/api"

// Heartbeat is the body of POST /v1/internal/heartbeat (agent →
// controller). Host carries what the agent measured; the controller fills
// in state, enablement and allocations itself.
type Heartbeat struct {
	Host api.Host   `json:"host"`
	VMs  []VMReport `json:"vms"`
}

// VMReport is what an agent reports of one VM.
type VMReport struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"` // driver state: running, stopped, paused, crashed
	PID   int    `json:"pid,omitempty"`
}

// CreateVM is the body of PUT /v1/vms/{id} (controller → agent): define
// the VM, fetch its image if the agent lacks it, create its disk and, when
// Start is set, boot it. The call is idempotent.
type CreateVM struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	VCPUs     int       `json:"vcpus"`
	MemoryMiB int       `json:"memory_mib"`
	DiskMiB   int       `json:"disk_mib"`
	Pool      string    `json:"pool"`
	Image     api.Image `json:"image"`
	Cmdline   string    `json:"cmdline,omitempty"` // appended to the image's
	Start     bool      `json:"start"`
}

// StopVM is the body of POST /v1/vms/{id}/stop.
type StopVM struct {
	Force          bool `json:"force,omitempty"`
	TimeoutSeconds int  `json:"timeout_seconds,omitempty"`
}
