// Package controller serves godwit's REST API: it wires the intent level
// (internal/intent) and the service level (internal/service) behind HTTP. Every handler decodes a request,
// calls one service method and encodes its reply (http.go); nothing here
// decides anything about VMs, hosts or migrations.
package controller

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/httpx"
	"github.com/godwit/godwit/internal/intent"
	"github.com/godwit/godwit/internal/metrics"
	"github.com/godwit/godwit/internal/service"
	"github.com/godwit/godwit/internal/store"
)

// Config configures a controller (godwit serve): where it listens, and
// the service it serves.
type Config struct {
	// Listen is the API address, e.g. 127.0.0.1:7400.
	Listen string
	// TLSDir holds the cluster's CA and the controller's certificate
	// (godwit init): the API is then served over HTTPS and agents are
	// reached over mutual TLS. Empty: plain HTTP.
	TLSDir string
	// UploadIdle is how long an image upload may send nothing before it
	// is cut off. Default DefaultUploadIdle.
	UploadIdle time.Duration
	// AllowHosts are names clients reach the API by, which its Host
	// header check accepts besides IP addresses, localhost, this
	// machine's hostname and the name in Listen (httpx.Guard).
	AllowHosts []string
	// EventHeartbeat is how often an idle GET /v1/events sends a
	// comment. Default DefaultEventHeartbeat.
	EventHeartbeat time.Duration
	service.Config
}

// DefaultUploadIdle is Config.UploadIdle's default: a client that sends
// nothing for this long is stalled, not slow.
const DefaultUploadIdle = time.Minute

// Controller is the service behind its HTTP API.
type Controller struct {
	cfg     Config
	svc     *service.Service
	intents *intent.Runner
	log     *slog.Logger
	tls     *clusterTLS // nil without a CA
	// stopping is closed when Serve's context ends: event streams end
	// then, since a server's shutdown waits for every handler.
	stopping <-chan struct{}
}

// New opens the service (its store, applying schema migrations, and its
// image store).
func New(ctx context.Context, cfg Config) (*Controller, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:7400"
	}
	if cfg.UploadIdle <= 0 {
		cfg.UploadIdle = DefaultUploadIdle
	}
	var ct *clusterTLS
	if cfg.TLSDir != "" {
		var err error
		if ct, err = openClusterTLS(cfg.TLSDir); err != nil {
			return nil, fmt.Errorf("the cluster's CA in %s: %w (godwit init makes it)", cfg.TLSDir, err)
		}
		cfg.Config.AgentTLS = ct.agentTLS
	}
	// One registry per controller, not the client's global one: tests
	// run several controllers in one process.
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewController()
	}
	svc, err := service.New(ctx, cfg.Config)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if ct != nil {
		// The first admin token, made by godwit init or godwit up.
		b, ok, err := auth.ReadBootstrap(cfg.TLSDir)
		if err == nil && ok {
			err = svc.AddBootstrapToken(ctx, b)
		}
		if err != nil {
			svc.Close()
			return nil, fmt.Errorf("the bootstrap admin token: %w", err)
		}
	}
	c := &Controller{cfg: cfg, svc: svc, intents: intent.New(svc, svc.Store(), log), log: log, tls: ct}
	cfg.Metrics.WatchState(c.metricsState)
	return c, nil
}

// metricsState is what the gauges of GET /metrics show, read from the
// store at each scrape: the hosts with their claims, the migrations and
// intents under way.
func (c *Controller) metricsState(ctx context.Context) (metrics.State, error) {
	var st metrics.State
	var err error
	if st.Hosts, err = c.svc.Hosts(ctx); err != nil {
		return st, fmt.Errorf("hosts: %w", err)
	}
	if st.Migrations, err = c.svc.Migrations(ctx, store.MigrationFilter{Active: true}); err != nil {
		return st, fmt.Errorf("active migrations: %w", err)
	}
	if st.Intents, err = c.intents.Intents(ctx, store.IntentFilter{Active: true}); err != nil {
		return st, fmt.Errorf("active intents: %w", err)
	}
	return st, nil
}

// Close closes the service's store.
func (c *Controller) Close() error { return c.svc.Close() }

// Run serves the controller until ctx is cancelled.
func Run(ctx context.Context, cfg Config) error {
	c, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", c.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.cfg.Listen, err)
	}
	return c.Serve(ctx, ln)
}

// Serve starts the service's background work (recovery first), resumes
// the intents that had not ended, and serves the API on ln until ctx is
// done.
func (c *Controller) Serve(ctx context.Context, ln net.Listener) error {
	c.stopping = ctx.Done()
	c.svc.Start(ctx)
	c.intents.Start(ctx)
	if c.tls != nil {
		ln = c.tls.listener(ln)
	}
	c.log.Info("controller serving", "addr", ln.Addr().String(), "tls", c.tls != nil, "store", c.svc.StoreKind(), "data_dir", c.svc.DataDir())
	err := httpx.Serve(ctx, ln, c.Handler(), nil, httpx.Guard(httpx.GuardConfig{
		Hosts: append([]string{httpx.HostOf(c.cfg.Listen)}, c.cfg.AllowHosts...), Uploads: []string{importImageRoute}}))
	c.log.Info("controller stopped")
	return err
}
