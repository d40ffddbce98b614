// Package metrics defines godwit's Prometheus metrics, all named
// godwit_*, and the registries they are served from: one for the
// controller (Controller) and one for each agent (Agent).
//
// Each process builds its own registry instead of using the client's
// global default one, so that tests can run several controllers and
// agents in one process without their metrics adding up or their
// registrations colliding. The process collectors (Go runtime, process
// CPU and memory) are registered on it too.
//
// Events are recorded where they happen, once: a migration, an intent or
// an operation when it reaches its final state, an API request when it
// is answered, a stall when bytes move again. What reflects current
// state — hosts by state, claims, queue depths, bandwidth in use — is
// computed from the store at scrape time (a prometheus.Collector), which
// cannot drift from the records.
//
// The package sits at the vocabulary's level: it imports only api and
// internal/version (and the Prometheus client), so the service, intent,
// controller and agent levels can all record into it (internal/layers
// checks). docs/metrics.md lists every metric.
//
// The Prometheus Go client (github.com/prometheus/client_golang) is the
// one dependency this adds: it is what Prometheus, Grafana and every
// exporter speak, it writes the exposition format (text and protobuf,
// with content negotiation and gzip) correctly, and its histogram and
// registry semantics are the reference others follow.
package metrics

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/godwit/godwit/internal/version"
)

// Histogram buckets, in seconds (bytes for sizes).
var (
	// APIBuckets: most API calls answer in milliseconds; an image
	// upload or a followed console takes much longer.
	APIBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120}
	// DurationBuckets: a fake move takes a second, a real one of a busy
	// guest with a large memory an hour: 0.5 s to about 2.3 h.
	DurationBuckets = prometheus.ExponentialBuckets(0.5, 2, 15)
	// PhaseBuckets: a migration's phases, from a few milliseconds (the
	// state changes in the controller) to an hour (a long transfer).
	PhaseBuckets = prometheus.ExponentialBuckets(0.005, 4, 10)
	// DowntimeBuckets: a live move's pause is tens to hundreds of
	// milliseconds, the targets (max_downtime_ms) around 300 ms; a cold
	// move is all downtime, up to minutes.
	DowntimeBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300}
	// StallBuckets: a transfer that moved nothing for at least
	// MinStall; the controller gives up on a pre-copy after 30 s.
	StallBuckets = []float64{2, 3, 5, 10, 20, 30, 60, 120, 300}
	// SentBytesBuckets: bytes an agent sent for one outgoing migration,
	// 16 MiB to 64 GiB.
	SentBytesBuckets = prometheus.ExponentialBuckets(16<<20, 2, 13)
)

// newRegistry is a process's own registry, with the Go runtime and
// process collectors and godwit's build information.
func newRegistry(component string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "godwit_build_info",
			Help:        "Always 1: the godwit version and component (controller or agent) of this process.",
			ConstLabels: prometheus.Labels{"version": version.Version, "component": component},
		}, func() float64 { return 1 }),
	)
	return reg
}

// handler serves reg in the Prometheus exposition format. A collector
// that fails (the store did not answer) leaves its metrics out and the
// others are served: a scrape shows what it can.
func handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, Registry: reg})
}

// StatusClass is an HTTP status's class, "2xx" to "5xx": a label with a
// handful of values where the status itself would make many series.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

// SplitPattern splits a ServeMux pattern, "GET /v1/vms/{name}", into its
// method and its path pattern; a pattern without a method has "" for it.
func SplitPattern(pattern string) (method, route string) {
	if m, r, ok := strings.Cut(pattern, " "); ok {
		return m, strings.TrimSpace(r)
	}
	return "", pattern
}
