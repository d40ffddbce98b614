package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/godwit/godwit/api"
)

// Controller is a controller's metrics and the registry they are served
// from. Its methods record events; a nil *Controller records nothing (a
// service built without one, in a test).
type Controller struct {
	reg *prometheus.Registry

	migrations        *prometheus.CounterVec   // kind, state
	migrationDuration *prometheus.HistogramVec // kind, state
	migrationPhase    *prometheus.HistogramVec // kind, phase
	migrationDowntime *prometheus.HistogramVec // kind
	migrationStalls   *prometheus.HistogramVec // kind
	migrationBytes    *prometheus.CounterVec   // kind, what
	intents           *prometheus.CounterVec   // kind, state
	intentDuration    *prometheus.HistogramVec // kind, state
	operations        *prometheus.CounterVec   // kind, state
	requests          *prometheus.HistogramVec // method, route, status_class
}

// NewController returns a controller's metrics on a registry of their
// own.
func NewController() *Controller {
	m := &Controller{
		reg: newRegistry("controller"),
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_migrations_total",
			Help: "Migrations that ended, by kind (live, cold) and final state (completed, failed-rolled-back, cancelled, error-needs-attention).",
		}, []string{"kind", "state"}),
		migrationDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "godwit_migration_duration_seconds",
			Help:    "How long migrations took, from their record's creation to their final state, by kind and final state.",
			Buckets: DurationBuckets,
		}, []string{"kind", "state"}),
		migrationPhase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "godwit_migration_phase_duration_seconds",
			Help:    "How long ended migrations spent in each state before the next (preparing, waiting-for-link, transferring, switching-over, finishing...), by kind.",
			Buckets: PhaseBuckets,
		}, []string{"kind", "phase"}),
		migrationDowntime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "godwit_migration_downtime_seconds",
			Help:    "The guest's downtime in completed migrations as measured by the driver (live) or the controller (cold: stop to start; a stopped VM has none), by kind.",
			Buckets: DowntimeBuckets,
		}, []string{"kind"}),
		migrationStalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "godwit_migration_stall_seconds",
			Help:    "Spans of at least 2 s in which a running transfer moved no byte (memory or disk), recorded when bytes move again or the transfer ends, by kind.",
			Buckets: StallBuckets,
		}, []string{"kind"}),
		migrationBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_migration_bytes_total",
			Help: "Bytes ended migrations moved between hosts, by kind and what (memory, disk); added when each migration ends, whatever its state.",
		}, []string{"kind", "what"}),
		intents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_intents_total",
			Help: "Intents that ended, by kind (migrate, drain, evacuate, resize, rebuild) and final state (completed, partial, failed, cancelled).",
		}, []string{"kind", "state"}),
		intentDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "godwit_intent_duration_seconds",
			Help:    "How long intents took, from their record's creation to their final state, by kind and final state.",
			Buckets: DurationBuckets,
		}, []string{"kind", "state"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_intent_operations_total",
			Help: "Operations of intents that ended, by kind (live, cold, resize, rebuild, stop, none) and final state (done, skipped, failed, cancelled).",
		}, []string{"kind", "state"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "godwit_api_request_duration_seconds",
			Help:    "How long the controller's API took to answer, by method, route pattern (never the raw path) and status class.",
			Buckets: APIBuckets,
		}, []string{"method", "route", "status_class"}),
	}
	m.reg.MustRegister(m.migrations, m.migrationDuration, m.migrationPhase, m.migrationDowntime, m.migrationStalls,
		m.migrationBytes, m.intents, m.intentDuration, m.operations, m.requests)
	return m
}

// Handler serves the controller's metrics (GET /metrics).
func (m *Controller) Handler() http.Handler { return handler(m.reg) }

// Registry is the controller's registry, for collectors of its own.
func (m *Controller) Registry() *prometheus.Registry { return m.reg }

// MigrationEnded records a migration that just reached its final state:
// its count, duration, time in each phase, downtime and bytes moved.
// Called once per migration, at the transition.
func (m *Controller) MigrationEnded(mig api.Migration) {
	if m == nil || !mig.State.Final() {
		return
	}
	kind, state := string(mig.Kind), string(mig.State)
	m.migrations.WithLabelValues(kind, state).Inc()
	if end := mig.FinishedAt; !end.IsZero() && !mig.CreatedAt.IsZero() && !end.Before(mig.CreatedAt) {
		m.migrationDuration.WithLabelValues(kind, state).Observe(end.Sub(mig.CreatedAt).Seconds())
	}
	for i := 0; i+1 < len(mig.Phases); i++ {
		p, next := mig.Phases[i], mig.Phases[i+1]
		if d := next.At.Sub(p.At); d >= 0 {
			m.migrationPhase.WithLabelValues(kind, string(p.State)).Observe(d.Seconds())
		}
	}
	// A live move's downtime is the driver's measure, 0 included (a
	// pause shorter than a millisecond); a cold move of a stopped VM has
	// none to record.
	if mig.State == api.MigCompleted && (mig.Kind == api.KindLive || mig.Progress.DowntimeMS > 0) {
		m.migrationDowntime.WithLabelValues(kind).Observe(float64(mig.Progress.DowntimeMS) / 1000)
	}
	m.migrationBytes.WithLabelValues(kind, "memory").Add(float64(max(mig.Progress.MemoryTransferred, 0)))
	m.migrationBytes.WithLabelValues(kind, "disk").Add(float64(max(mig.Progress.DiskTransferred, 0)))
}

// MinStall is the shortest span without progress recorded as a stall:
// the controller reads progress every 250 ms, and a few reads without
// news are no stall.
const MinStall = 2 * time.Second

// MigrationStalled records a span in which a running transfer of kind
// moved nothing. Spans shorter than MinStall are not stalls.
func (m *Controller) MigrationStalled(kind api.MigrationKind, d time.Duration) {
	if m == nil || d < MinStall {
		return
	}
	m.migrationStalls.WithLabelValues(string(kind)).Observe(d.Seconds())
}

// IntentEnded records an intent that just reached its final state. A
// dry run (planned) never ran and is not counted.
func (m *Controller) IntentEnded(in api.Intent) {
	if m == nil || !in.State.Final() || in.State == api.IntentPlanned {
		return
	}
	kind, state := string(in.Kind), string(in.State)
	m.intents.WithLabelValues(kind, state).Inc()
	if !in.FinishedAt.IsZero() && !in.CreatedAt.IsZero() && !in.FinishedAt.Before(in.CreatedAt) {
		m.intentDuration.WithLabelValues(kind, state).Observe(in.FinishedAt.Sub(in.CreatedAt).Seconds())
	}
}

// OperationEnded records an intent's operation that just reached its
// final state (done, skipped, failed or cancelled).
func (m *Controller) OperationEnded(kind api.OperationKind, state api.OperationState) {
	if m == nil {
		return
	}
	m.operations.WithLabelValues(string(kind), string(state)).Inc()
}

// APIRequest records one answered API request on the route pattern
// ("GET /v1/vms/{name}"): its latency and the class of its status.
func (m *Controller) APIRequest(pattern string, status int, d time.Duration) {
	if m == nil {
		return
	}
	method, route := SplitPattern(pattern)
	m.requests.WithLabelValues(method, route, StatusClass(status)).Observe(d.Seconds())
}
