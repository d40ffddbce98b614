// Package agent is the host agent (godwit agent): it registers with the
// controller, heartbeats what its host has and runs, keeps the image cache
// and storage pools, and serves the controller's calls by driving its
// hypervisor driver.
package agent

import (
	"log/slog"
	"time"
)

// Config configures an agent.
type Config struct {
	// Name is the host's name in the cluster. Default: the hostname.
	Name string
	// Listen is the agent API address, e.g. 127.0.0.1:7401.
	Listen string
	// Advertise is the URL the controller uses to reach this agent.
	// Default: http://<Listen>.
	Advertise string
	// Controller is the controller's URL.
	Controller string
	// StateDir holds the local pool, the image cache and driver state.
	StateDir string
	// SharedDir is the shared pool every host sees; empty for none.
	SharedDir string
	// Driver is qemu or fake.
	Driver string
	// Accel is kvm, tcg or auto (probe once, fall back to tcg).
	Accel string
	// AccelReason, when Accel was resolved by someone else (godwit up
	// probes once for all its agents), says why.
	AccelReason string
	// HeartbeatInterval defaults to 2s.
	HeartbeatInterval time.Duration
	// CPUs and MemoryMiB override the measured capacity (0: measure).
	CPUs      int
	MemoryMiB int
	Logger    *slog.Logger
}
