// Package service is godwit's service level: the host registry fed by
// agent heartbeats, the VM lifecycle, the image store, the two migration
// kinds (live and cold, each with its state machine, switch-over and
// recovery), and the operations of their own that intents use (resize
// and rebuild). Everything here is a method of Service. The intent level
// (internal/intent) calls it; the controller package serves both over
// HTTP. Placement decisions are the scheduler's (internal/scheduler).
package service

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/godwit/godwit/internal/metrics"
)

// Config configures the service (godwit serve).
type Config struct {
	// AgentTLS, when the cluster has a CA, is the TLS configuration for
	// calls to the named host's agent (internal/pki: this controller's
	// certificate, and only that host's accepted). Nil: plain HTTP.
	AgentTLS func(host string) *tls.Config
	// DataDir holds the SQLite database and the image store.
	DataDir string
	// StoreDSN selects the store: empty for SQLite in DataDir, or a
	// postgres:// URL.
	StoreDSN string
	// EventBuffer is how many events the live stream keeps for readers
	// who reconnect (GET /v1/events with Last-Event-ID). Default
	// events.DefaultSize.
	EventBuffer int
	// Version is the controller's version, which agents' versions must
	// be compatible with (default: this build's, version.Version); tests
	// play controllers of other releases with it.
	Version string
	// HostDownAfter is how long a host may miss heartbeats before it is
	// marked down. Default 10s.
	HostDownAfter time.Duration
	// SharedDir is the shared pool, when the controller sees it too. It
	// reads the hosts' leases there: a host whose lease stood still for
	// its TTL has fenced itself, which proves it down for evacuate.
	// Empty: only the operator's word proves a host down.
	SharedDir string
	// NoColdFallback forbids a migrate without a kind from falling back
	// to a cold migration when the VM cannot move live.
	NoColdFallback bool
	// NoPostCopy keeps the auto convergence policy from switching to
	// post-copy (a post-copy migration that loses its link loses the VM);
	// it throttles the guest instead. A request may still ask for it.
	NoPostCopy bool
	// AllowUnsafeTCGMigration allows live migrations to and from TCG
	// hosts on QEMU before 9.0 (or of unknown version), which lose guest
	// writes (docs/migration.md, "TCG safety"): for labs only.
	AllowUnsafeTCGMigration bool
	// AgentOutage is how long a running operation waits for an agent
	// that stopped answering before it gives up on it. Default 60s
	// (agentOutage); tests shorten it.
	AgentOutage time.Duration
	// QEMUImg is the qemu-img that reads imported disk images a second
	// time (imagecheck.go). Default: qemu-img on PATH; when there is
	// none, imports are checked by their qcow2 header only.
	QEMUImg string
	// MaxDiskUpload and MaxKernelUpload bound an uploaded image file in
	// bytes: a disk, and a kernel or an initrd. Defaults
	// DefaultMaxDiskUpload and DefaultMaxKernelUpload.
	MaxDiskUpload   int64
	MaxKernelUpload int64
	Logger          *slog.Logger
	// Metrics records migrations as they end (nil: nothing is
	// recorded). The controller makes one per process and serves it.
	Metrics *metrics.Controller
}

// The upload limits' defaults: far above any base image or any
// distribution's kernel and initrd, far below what fills a disk by
// mistake.
const (
	DefaultMaxDiskUpload   = 64 << 30
	DefaultMaxKernelUpload = 256 << 20
)
