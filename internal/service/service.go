package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/events"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/metrics"
	"github.com/godwit/godwit/internal/store"
	"github.com/godwit/godwit/internal/store/open"
)

// Service is godwit's service level: the store, the image store, the
// VM lifecycle, the two migration kinds and the operations intents are
// made of. The controller package serves it over HTTP.
type Service struct {
	cfg   Config
	store store.Store // publishes to events
	// events are the changes of VMs, migrations and intents that the
	// store published, for GET /v1/events.
	events *events.Hub
	log    *slog.Logger
	images *imageStore

	// imageUse is held for reading from a create's look at its image to
	// the VM's record, and for writing by DeleteImage, so an image is
	// never deleted between the two (the store refuses to delete an
	// image that a recorded VM uses).
	imageUse sync.RWMutex

	// schedMu makes "choose a host and record the VM there" atomic, so
	// two concurrent creates never book the same free capacity twice.
	schedMu sync.Mutex

	// busy names the operation running on a VM; a second operation on the
	// same VM is refused with 409 instead of interleaving with the first.
	busyMu sync.Mutex
	busy   map[string]string

	// cancels aborts running migrations, by migration id.
	migMu   sync.Mutex
	cancels map[string]context.CancelFunc

	// The cluster's settings, cached (settings.go).
	settingsMu sync.Mutex
	cached     *api.ClusterSettings

	// ended is closed, and replaced, whenever a migration ends
	// (WaitMigration).
	endedMu sync.Mutex
	ended   chan struct{}

	link linkGate // transfers out of each source, for drains (link.go)

	// netMu makes network creation (its overlap check) and port
	// allocation (its choice of free addresses) one at a time.
	netMu sync.Mutex

	// flavorMu makes flavor creation (its check that no name is another
	// flavor's ID) one at a time.
	flavorMu sync.Mutex

	leases *leaseWatch // nil unless the controller sees the shared pool

	refused refusedHosts // agents of incompatible versions (hostversion.go)

	// recovering are the migrations a previous controller left running,
	// their VMs locked until Serve recovers them (recover.go).
	recovering []recovery
}

func (c *Config) setDefaults() {
	if c.HostDownAfter == 0 {
		c.HostDownAfter = 10 * time.Second
	}
	if c.AgentOutage == 0 {
		c.AgentOutage = agentOutage
	}
	if c.MaxDiskUpload <= 0 {
		c.MaxDiskUpload = DefaultMaxDiskUpload
	}
	if c.MaxKernelUpload <= 0 {
		c.MaxKernelUpload = DefaultMaxKernelUpload
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// New opens the store (applying schema migrations) and the image store.
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg.setDefaults()
	if cfg.DataDir == "" {
		return nil, errors.New("controller: a data directory is required (--data-dir)")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	st, err := open.Open(ctx, cfg.StoreDSN, cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	ims, err := newImageStore(filepath.Join(cfg.DataDir, "images"))
	if err != nil {
		st.Close()
		return nil, err
	}
	// Every write of a VM, migration or intent goes through the wrapped
	// store, the intent runner's too (it gets Store()), so the event
	// stream misses none.
	hub := events.NewHub(cfg.EventBuffer)
	c := &Service{cfg: cfg, store: events.Wrap(st, hub, cfg.Logger), events: hub, log: cfg.Logger, images: ims, busy: map[string]string{}, cancels: map[string]context.CancelFunc{},
		ended: make(chan struct{}), leases: newLeaseWatch(cfg.SharedDir, time.Now)}
	if _, err := c.lockInterrupted(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("find interrupted migrations: %w", err)
	}
	return c, nil
}

// Events is the hub of the live event stream.
func (c *Service) Events() *events.Hub { return c.events }

// Close closes the store.
func (c *Service) Close() error { return c.store.Close() }

// Start recovers the migrations a previous controller left running, then
// runs the host monitor, the lease watch and the deletes that had not
// ended, in the background until ctx is done. The intent runner resumes
// its intents after Start returns, then the API is served.
func (c *Service) Start(ctx context.Context) {
	go c.monitorHosts(ctx)
	if c.leases != nil {
		go c.leases.run(ctx, c.log)
	}
	c.recoverMigrations(ctx)
	c.releaseOrphanPorts(ctx)
	go c.resumeDeletes(ctx)
	go c.pruneAudit(ctx)
}

// StoreKind names the store: sqlite or postgres.
func (c *Service) StoreKind() string { return c.store.Kind() }

// DataDir is the controller's data directory.
func (c *Service) DataDir() string { return c.cfg.DataDir }

// busyGrace is how long lockVM waits for a VM's running operation to
// let go before it answers busy. An operation records its end (a
// migration its final state) a moment before its goroutine releases the
// VM; a caller that saw the end and asks at once would otherwise be told
// the VM is busy with an operation it has just seen finish.
const busyGrace = time.Second

// lockVM marks a VM busy with op, or returns a conflict naming the
// operation already running (after waiting up to busyGrace for it to
// end). The returned func releases it.
func (c *Service) lockVM(name, op string) (func(), error) {
	deadline := time.Now().Add(busyGrace)
	c.busyMu.Lock()
	defer c.busyMu.Unlock()
	for {
		cur, ok := c.busy[name]
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			return nil, errs.Conflict("vm %q is busy: %s in progress; retry when it finishes", name, cur)
		}
		c.busyMu.Unlock()
		time.Sleep(20 * time.Millisecond)
		c.busyMu.Lock()
	}
	c.busy[name] = op
	return func() {
		c.busyMu.Lock()
		delete(c.busy, name)
		c.busyMu.Unlock()
	}, nil
}

func (c *Service) isBusy(name string) bool {
	c.busyMu.Lock()
	defer c.busyMu.Unlock()
	_, ok := c.busy[name]
	return ok
}

// agent returns a client for a host's agent: over mutual TLS, accepting
// only that host's certificate, when the cluster has a CA.
func (c *Service) agent(h api.Host) *hostapi.Agent {
	if c.cfg.AgentTLS != nil {
		return hostapi.NewAgentTLS(h.Address, 0, c.cfg.AgentTLS(h.Name))
	}
	return hostapi.NewAgent(h.Address, 0)
}

// Config is the service's configuration, its defaults applied.
func (c *Service) Config() Config { return c.cfg }

// MarkBusy marks a VM busy with op (a second operation on it is refused
// with 409 until the returned func releases it). This is not the VM's
// lock of LockVM, which people set.
func (c *Service) MarkBusy(name, op string) (func(), error) { return c.lockVM(name, op) }

// IsBusy reports whether an operation runs on the VM now.
func (c *Service) IsBusy(name string) bool { return c.isBusy(name) }

// Store is the service's store, which also keeps the intent level's
// records.
func (c *Service) Store() store.Store { return c.store }

// Metrics is where the service records what ends (nil: nowhere); the
// intent level records its intents there too.
func (c *Service) Metrics() *metrics.Controller { return c.cfg.Metrics }
