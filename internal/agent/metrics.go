package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/httpx"
	"github.com/godwit/godwit/internal/metrics"
	"github.com/godwit/godwit/internal/safe"
)

// The agent's metrics are served on a listener of their own
// (Config.MetricsListen), in plain HTTP: the API accepts only the
// controller's and the hosts' certificates, which a Prometheus server
// does not hold. Nothing in them is secret: counts of VMs by state,
// migrations under way, bytes sent, request latencies by route.

// metricsListen opens the metrics listener, when one is asked for.
func (a *Agent) metricsListen() error {
	if a.cfg.MetricsListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.MetricsListen)
	if err != nil {
		return err
	}
	a.metricsLn = ln
	return nil
}

// MetricsAddr is the address the agent's metrics are served on, nil
// when it serves none (no --metrics-listen).
func (a *Agent) MetricsAddr() net.Addr {
	if a.metricsLn == nil {
		return nil
	}
	return a.metricsLn.Addr()
}

// serveMetrics serves GET /metrics, and nothing else, on the metrics
// listener until ctx is done or the agent shuts down.
func (a *Agent) serveMetrics(ctx context.Context, hosts []string) {
	if a.metricsLn == nil {
		return
	}
	ln := a.metricsLn
	a.log.Info("agent metrics serving", "addr", ln.Addr().String())
	safe.Go(a.log, "metrics server", func() {
		if err := httpx.Serve(ctx, ln, a.metricsHandler(), a.shutdown, httpx.Guard(httpx.GuardConfig{
			Hosts: append([]string{httpx.HostOf(a.cfg.MetricsListen)}, hosts...)})); err != nil {
			a.log.Error("metrics server", "err", err)
		}
	})
}

// metricsHandler answers GET /metrics with the agent's metrics.
func (a *Agent) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	return httpx.Mux(mux)
}

// timed records each API request's latency under its route's pattern.
// The pattern is read after the request: the ServeMux inside sets it on
// the request it is given (this one) when it routes it.
func (a *Agent) timed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := httpx.NewStatusWriter(w)
		next.ServeHTTP(sw, r)
		a.metrics.Request(r.Pattern, sw.Status, time.Since(start))
	})
}

// metricsState is what the agent's gauges show, read at each scrape.
func (a *Agent) metricsState(ctx context.Context) (metrics.AgentState, error) {
	sts, err := a.drv.List(ctx)
	if err != nil {
		return metrics.AgentState{}, err
	}
	st := metrics.AgentState{VMs: map[string]int{}}
	for _, s := range sts {
		st.VMs[string(s.State)]++
		if s.Incoming == driver.IncomingWaiting {
			st.MigrationsIn++
		}
	}
	st.MigrationsOut = a.outgoing.active(ctx, a)
	return st, nil
}

// outgoing follows the outgoing migrations this agent started, from
// MigrateOut to the first status read that shows them ended, to record
// what each sent once.
type outgoing struct {
	mu   sync.Mutex
	sent map[string]int64 // vm id → bytes sent, as last read
}

// started begins following vm id's outgoing migration.
func (o *outgoing) started(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sent == nil {
		o.sent = map[string]int64{}
	}
	o.sent[id] = 0
}

// seen takes a status read of vm id's outgoing migration: while it is
// active it notes the bytes sent; the first read that shows it ended
// records it in m, with the most it was seen to send (a process that
// died reports nothing sent).
func (o *outgoing) seen(m *metrics.Agent, id string, st driver.MigrationStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	prev, ok := o.sent[id]
	if !ok {
		return
	}
	n := max(prev, st.MemoryTransferred+st.DiskTransferred)
	if !ended(st.Status) {
		o.sent[id] = n
		return
	}
	delete(o.sent, id)
	m.MigrationSent(st.Status, n)
}

// ended reports whether an outgoing migration's status is an end. A
// post-copy migration whose link failed (postcopy-paused) is not over:
// it can only be resumed.
func ended(status string) bool {
	switch status {
	case driver.MigrationCompleted, driver.MigrationFailed, driver.MigrationCancelled, driver.MigrationNone:
		return true
	}
	return false
}

// active reads the status of each migration followed, recording those
// that ended unread (a controller that stopped asking), and counts the
// others.
func (o *outgoing) active(ctx context.Context, a *Agent) int {
	o.mu.Lock()
	ids := make([]string, 0, len(o.sent))
	for id := range o.sent {
		ids = append(ids, id)
	}
	o.mu.Unlock()
	mg, ok := a.drv.(driver.LiveMigrator)
	if !ok {
		return len(ids)
	}
	n := 0
	for _, id := range ids {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := mg.MigrationStatus(rctx, id)
		cancel()
		switch {
		case errors.Is(err, errs.ErrNotFound):
			st = driver.MigrationStatus{Status: driver.MigrationNone} // the VM went: its migration with it
		case err != nil:
			n++ // unreadable now is not over
			continue
		}
		o.seen(a.metrics, id, st)
		if !ended(st.Status) {
			n++
		}
	}
	return n
}
