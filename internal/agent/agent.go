package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/httpx"
	"github.com/godwit/godwit/internal/metrics"
	"github.com/godwit/godwit/internal/safe"
)

// Agent is a running host agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	drv    driver.Driver
	images *imageCache
	poolID string // identity of the shared pool, "" without one

	// shutdown is closed when the controller asks the agent to exit.
	shutdown     chan struct{}
	shutdownOnce sync.Once
	lockFile     *os.File

	importMu sync.Mutex
	imports  map[string]*importJob // disk imports of cold migrations, by vm id
	grants   grants                // disk transfers this host may serve (grants.go)

	staleMu sync.Mutex
	cleaned []hostapi.StaleVM // stale copies removed, not yet reported

	leaseStop   context.CancelFunc // nil without a lease
	leaseDone   chan struct{}
	tls         *hostTLS // nil without a certificate: plain HTTP
	watchdogPID int      // touched by the lease loop only

	metrics   *metrics.Agent // nil in tests that build an Agent by hand: nothing recorded
	metricsLn net.Listener   // nil without Config.MetricsListen
	outgoing  outgoing       // outgoing migrations, for what each sent (metrics.go)
}

func (c *Config) setDefaults() error {
	if c.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("no --name given and no hostname: %w", err)
		}
		c.Name = h
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:7401"
	}
	if c.Controller == "" {
		c.Controller = "http://127.0.0.1:7400"
	}
	if c.StateDir == "" {
		return errors.New("agent: a state directory is required (--state-dir)")
	}
	// Absolute: the watchdog, another process, is told it and finds
	// itself by it.
	abs, err := filepath.Abs(c.StateDir)
	if err != nil {
		return err
	}
	c.StateDir = abs
	if c.Driver == "" {
		c.Driver = driver.HypervisorQEMU
	}
	if c.Accel == "" {
		c.Accel = "auto"
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c.leaseDefaults()
}

// driverDir is the state directory of the driver named name: the agent's
// and its watchdog's common convention.
func driverDir(stateDir, name string) string { return filepath.Join(stateDir, name) }

// localPool is where local disks live.
func (a *Agent) localPool() string { return filepath.Join(a.cfg.StateDir, "pool") }

// New prepares an agent: it takes the state directory's lock (one agent
// per directory) and opens the driver cfg.Driver names from the registry
// in package driver (the qemu driver resolves the accelerator then).
func New(ctx context.Context, cfg Config) (*Agent, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Logger.With("host", cfg.Name), shutdown: make(chan struct{}), imports: map[string]*importJob{}}
	for _, d := range []string{cfg.StateDir, a.localPool(), fenceDir(cfg.StateDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	lf, err := os.OpenFile(filepath.Join(cfg.StateDir, "agent.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("another agent is using state directory %s: %w", cfg.StateDir, err)
	}
	a.lockFile = lf
	if cfg.SharedDir != "" {
		if a.poolID, err = sharedPoolID(cfg.SharedDir); err != nil {
			a.Close()
			return nil, err
		}
	}
	if cfg.leaseOn() {
		// From the start, before a slow accelerator probe: a restarted
		// agent must renew before the watchdog's patience runs out.
		lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		a.leaseStop, a.leaseDone = stop, make(chan struct{})
		safe.Go(a.log, "lease renewal", func() { a.keepLease(lctx) })
	}
	if err := a.setupTLS(ctx); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.grants.load(filepath.Join(cfg.StateDir, grantsFile)); err != nil {
		a.Close()
		return nil, err
	}
	if a.cfg.Advertise == "" {
		a.cfg.Advertise = a.scheme() + a.cfg.Listen
	}
	a.images = &imageCache{client: api.NewHTTPClient(api.HTTPOptions{ResponseHeaderTimeout: downloadHeaderTimeout, TLS: a.controllerTLS()}), controller: cfg.Controller, localDir: filepath.Join(cfg.StateDir, "images"), sharedDir: cfg.SharedDir, log: a.log}

	drv, err := driver.Open(ctx, cfg.Driver, driver.Options{StateDir: driverDir(cfg.StateDir, cfg.Driver),
		Accel: cfg.Accel, AccelReason: cfg.AccelReason, QEMUBinary: cfg.QEMUBinary, QEMUUser: cfg.QEMUUser, NoPostCopyPreempt: cfg.NoPostCopyPreempt,
		DirtySampleEvery: cfg.DirtySampleEvery, ClaimedQEMUVersion: cfg.FakeQEMUVersion, Extra: cfg.Faults, Logger: a.log})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.drv = drv
	// A registry of its own, not the client's global one: tests run
	// several agents in one process.
	a.metrics = metrics.NewAgent()
	a.metrics.WatchState(a.metricsState)
	if err := a.metricsListen(); err != nil {
		a.Close()
		return nil, fmt.Errorf("metrics listener on %s: %w", cfg.MetricsListen, err)
	}
	return a, nil
}

// sharedPoolID reads (or, first time, writes) the marker that identifies
// a shared pool, so the controller can tell which hosts see the same one.
func sharedPoolID(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create shared pool %s: %w", dir, err)
	}
	p := filepath.Join(dir, ".godwit-pool-id")
	if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
		return string(b), nil
	}
	id := fmt.Sprintf("shared-%x", time.Now().UnixNano())
	tmp := fmt.Sprintf("%s.%d", p, os.Getpid())
	if err := os.WriteFile(tmp, []byte(id), 0o600); err != nil {
		return "", err
	}
	// Link, not rename: if another agent wrote the marker first, keep its.
	if err := os.Link(tmp, p); err != nil && !errors.Is(err, os.ErrExist) {
		os.Remove(tmp)
		return "", err
	}
	os.Remove(tmp)
	b, err := os.ReadFile(p)
	return string(b), err
}

// Close stops renewing the lease and releases the driver and the state
// directory; VMs keep running (and the watchdog fences those on the
// shared pool unless an agent renews the lease again in time).
func (a *Agent) Close() error {
	if a.leaseStop != nil {
		a.leaseStop()
		select {
		case <-a.leaseDone:
		case <-time.After(5 * time.Second):
			// A renewal hung on the pool; the watchdog sees this
			// process gone soon enough.
			a.log.Warn("lease renewal still hung on the shared pool at shutdown")
		}
		a.leaseStop = nil
	}
	if a.metricsLn != nil {
		a.metricsLn.Close() // served or not: closed twice is harmless
	}
	if a.drv != nil {
		a.drv.Close()
	}
	if a.lockFile != nil {
		a.lockFile.Close()
	}
	return nil
}

// Run serves the agent until ctx is cancelled or the controller asks it to
// shut down. VMs keep running when it returns, unless a shutdown request
// asked to stop them.
func Run(ctx context.Context, cfg Config) error {
	a, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	return a.Serve(ctx, ln)
}

// Serve reattaches to surviving VMs, then serves the agent API on ln and
// heartbeats until ctx is done or a shutdown is requested.
func (a *Agent) Serve(ctx context.Context, ln net.Listener) error {
	vms, err := a.drv.Recover(ctx)
	if err != nil {
		return fmt.Errorf("recover vms: %w", err)
	}
	for _, st := range vms {
		a.log.Info("vm recovered", "vm", st.Name, "id", st.ID, "state", st.State, "pid", st.PID)
	}
	a.removeOrphanSeeds(vms)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	safe.Go(a.log, "heartbeat loop", func() { a.heartbeatLoop(ctx) })
	a.log.Info("agent serving", "addr", ln.Addr().String(), "controller", a.cfg.Controller, "driver", a.cfg.Driver, "state_dir", a.cfg.StateDir)
	hosts := append([]string{httpx.HostOf(a.cfg.Listen), httpx.HostOf(a.cfg.Advertise)}, a.cfg.AllowHosts...)
	a.serveMetrics(ctx, hosts)
	err = httpx.Serve(ctx, a.listener(ln), a.Handler(), a.shutdown, httpx.Guard(httpx.GuardConfig{Hosts: hosts}))
	a.log.Info("agent stopped")
	return err
}
