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
	// TLSDir holds the host's certificate and the cluster's CA (default
	// <StateDir>/tls); with one there, the agent serves HTTPS to the
	// controller and other hosts only, and calls them over mutual TLS.
	TLSDir string
	// Join is a join token (godwit host add): the agent gets its host's
	// certificate with it into TLSDir before it starts.
	Join string
	// AllowHosts are names the agent is reached by, which its Host header
	// check accepts besides IP addresses, localhost, this machine's
	// hostname and the names in Listen and Advertise (httpx.Guard).
	AllowHosts []string
	// MetricsListen is where the agent serves its Prometheus metrics
	// (GET /metrics) in plain HTTP, without client certificates, e.g.
	// 127.0.0.1:9741. Empty: none served.
	MetricsListen string
	// StateDir holds the local pool, the image cache and driver state.
	StateDir string
	// SharedDir is the shared pool every host sees; empty for none.
	SharedDir string
	// Driver names a driver registered in package driver (driver.Names):
	// qemu (the default) or fake, whichever the binary links in. The
	// agent keeps its state in <StateDir>/<Driver>.
	Driver string
	// Accel is kvm, tcg or auto (the qemu driver probes once, falls back
	// to tcg). With the fake driver, kvm or tcg is the accelerator it
	// claims (auto: none).
	Accel string
	// AccelReason, when Accel was resolved by someone else (godwit up
	// probes once for all its agents), says why.
	AccelReason string
	// HeartbeatInterval defaults to 2s.
	HeartbeatInterval time.Duration
	// DirtySampleEvery is how often the QEMU driver measures each running
	// guest's dirty rate for the convergence engine (0: every 5 s;
	// negative: never).
	DirtySampleEvery time.Duration
	// CPUs and MemoryMiB override the measured capacity (0: measure).
	CPUs      int
	MemoryMiB int

	// LeaseRenew is how often the agent renews the host's lease on the
	// shared pool (default 2s); LeaseTTL how long after the last renewal
	// the host promises to be fenced (default 10s), which is how long the
	// controller waits before it takes the host for dead. FenceAfter is
	// when the watchdog kills the host's shared-pool QEMUs without a
	// renewal (default 70% of LeaseTTL). NoLease turns leases off; a host
	// without a shared pool has none.
	LeaseRenew time.Duration
	LeaseTTL   time.Duration
	FenceAfter time.Duration
	NoLease    bool
	// Watchdog is the godwit binary whose agent-watchdog subcommand
	// fences the host; empty runs none (only a driver whose factory is a
	// driver.Fencer has processes to kill: not the fake one).
	Watchdog string

	// Uplinks maps a network's name to this host's interface to it, the
	// way Neutron's bridge_mappings do: the agent puts the interface on
	// the network's bridge when it plugs a VM there. A network without
	// one stays inside the host (godwit up gives its one network the
	// machine's address on the bridge instead).
	Uplinks map[string]string

	// QEMUBinary is the qemu-system-x86_64 the QEMU driver runs (empty:
	// the one on PATH).
	QEMUBinary string
	// QEMUUser is the user QEMU drops to once set up (empty: QEMU keeps
	// the agent's): a guest that takes QEMU over holds that user's
	// rights, not root's.
	QEMUUser string
	// NoPostCopyPreempt keeps post-copy page requests behind the
	// background stream (to measure what postcopy-preempt gains).
	NoPostCopyPreempt bool

	// Faults is handed to the driver untouched, as driver.Options.Extra:
	// with the fake driver, a *fake.Faults that injects its failures
	// (tests). Untyped, so that the agent need not import the fake.
	Faults any
	// FakeQEMUVersion, with the fake driver, is the QEMU release it
	// claims to run (driver.Options.ClaimedQEMUVersion; default
	// fake.DefaultQEMUVersion), e.g. 7.2.22 to play a host whose TCG
	// live migration is unsafe.
	FakeQEMUVersion string
	// Version is the godwit version the agent reports in its heartbeats
	// (default: this build's, version.Version); tests play agents of
	// other releases with it.
	Version string

	Logger *slog.Logger
}
