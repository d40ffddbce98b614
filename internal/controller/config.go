// Package controller is godwit's service level: the REST API, the host
// registry fed by agent heartbeats, the scheduler and the state machines
// that drive VMs (and, later, live and cold migrations, rebuilds and
// resizes) through the host agents.
package controller

import (
	"log/slog"
	"time"
)

// Config configures a controller (godwit serve).
type Config struct {
	// Listen is the API address, e.g. 127.0.0.1:7400.
	Listen string
	// DataDir holds the SQLite database and the image store.
	DataDir string
	// StoreDSN selects the store: empty for SQLite in DataDir, or a
	// postgres:// URL.
	StoreDSN string
	// HostDownAfter is how long a host may miss heartbeats before it is
	// marked down. Default 10s.
	HostDownAfter time.Duration
	// NoColdFallback forbids a migrate without a kind from falling back
	// to a cold migration when the VM cannot move live.
	NoColdFallback bool
	Logger         *slog.Logger
}
