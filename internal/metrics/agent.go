package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Agent is a host agent's metrics and the registry they are served from
// (godwit agent --metrics-listen). A nil *Agent records nothing (an
// agent built by hand in a test).
type Agent struct {
	reg      *prometheus.Registry
	sent     *prometheus.HistogramVec // status
	requests *prometheus.HistogramVec // method, route, status_class
}

// NewAgent returns an agent's metrics on a registry of their own.
func NewAgent() *Agent {
	m := &Agent{
		reg: newRegistry("agent"),
		sent: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "godwit_agent_migration_sent_bytes",
			Help: "Bytes (memory and disk) this host sent in each outgoing live migration it started, recorded when the migration ends, by its end status " +
				"(completed, failed, cancelled, none: lost in an agent restart); _sum is the total sent.",
			Buckets: SentBytesBuckets,
		}, []string{"status"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "godwit_agent_request_duration_seconds",
			Help: "How long the agent's API took to answer the controller (and peer hosts), by method, route pattern and status class: " +
				"nearly every route is one driver call (create, start, stop, prepare an incoming migration, switch over...).",
			Buckets: APIBuckets,
		}, []string{"method", "route", "status_class"}),
	}
	m.reg.MustRegister(m.sent, m.requests)
	return m
}

// Handler serves the agent's metrics.
func (m *Agent) Handler() http.Handler { return handler(m.reg) }

// AgentState is what an agent's host runs now, read at each scrape.
type AgentState struct {
	// VMs counts the driver's VMs by state (running, stopped, crashed...).
	VMs map[string]int
	// MigrationsIn are copies prepared for an incoming migration whose
	// guest has not run here yet; MigrationsOut the outgoing migrations
	// this agent started that have not ended.
	MigrationsIn, MigrationsOut int
}

var (
	agentVMsDesc = prometheus.NewDesc("godwit_agent_vms",
		"VMs the host's driver knows, by state.", []string{"state"}, nil)
	agentMigrationsDesc = prometheus.NewDesc("godwit_agent_migrations_active",
		"Migrations under way on this host, by direction: in (a copy prepared here whose guest has not run here yet) or out (started here, not ended).",
		[]string{"direction"}, nil)
)

// WatchState registers the gauges computed at scrape time from what read
// returns.
func (m *Agent) WatchState(read func(context.Context) (AgentState, error)) {
	m.reg.MustRegister(&agentCollector{read: read})
}

// MigrationSent records an outgoing migration that ended with status,
// having sent bytes.
func (m *Agent) MigrationSent(status string, bytes int64) {
	if m == nil {
		return
	}
	m.sent.WithLabelValues(status).Observe(float64(max(bytes, 0)))
}

// Request records one answered agent API request on its route pattern.
func (m *Agent) Request(pattern string, status int, d time.Duration) {
	if m == nil || pattern == "" {
		return
	}
	method, route := SplitPattern(pattern)
	m.requests.WithLabelValues(method, route, StatusClass(status)).Observe(d.Seconds())
}

type agentCollector struct {
	read func(context.Context) (AgentState, error)
}

func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- agentVMsDesc
	ch <- agentMigrationsDesc
}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	st, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(agentVMsDesc, err)
		return
	}
	// running and stopped always, so that an empty host reads 0.
	vms := map[string]int{"running": 0, "stopped": 0}
	for s, n := range st.VMs {
		vms[s] += n
	}
	for s, n := range vms {
		ch <- prometheus.MustNewConstMetric(agentVMsDesc, prometheus.GaugeValue, float64(n), s)
	}
	ch <- prometheus.MustNewConstMetric(agentMigrationsDesc, prometheus.GaugeValue, float64(st.MigrationsIn), "in")
	ch <- prometheus.MustNewConstMetric(agentMigrationsDesc, prometheus.GaugeValue, float64(st.MigrationsOut), "out")
}
