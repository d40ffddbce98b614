package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/godwit/godwit/api"
)

// histogram reads one series of a histogram vector: its count and sum.
func histogram(t *testing.T, v *prometheus.HistogramVec, labels ...string) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := v.WithLabelValues(labels...).(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// A migration's end is recorded from its record: its count, duration,
// the time between its phases, its downtime and the bytes it moved.
func TestMigrationEnded(t *testing.T) {
	m := NewController()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mig := api.Migration{Kind: api.KindLive, State: api.MigCompleted, CreatedAt: t0, FinishedAt: t0.Add(12 * time.Second),
		Phases: []api.Phase{{State: api.MigScheduling, At: t0}, {State: api.MigPreparing, At: t0.Add(time.Second)},
			{State: api.MigTransferring, At: t0.Add(3 * time.Second)}, {State: api.MigSwitchingOver, At: t0.Add(11 * time.Second)},
			{State: api.MigCompleted, At: t0.Add(12 * time.Second)}},
		Progress: api.MigrationProgress{MemoryTransferred: 3 << 30, DowntimeMS: 250}}
	m.MigrationEnded(mig)
	if got := testutil.ToFloat64(m.migrations.WithLabelValues("live", "completed")); got != 1 {
		t.Errorf("migrations{live,completed} = %v; want 1", got)
	}
	if n, sum := histogram(t, m.migrationDuration, "live", "completed"); n != 1 || sum != 12 {
		t.Errorf("duration: %d observations, %v s; want 1, 12 s", n, sum)
	}
	if n, sum := histogram(t, m.migrationPhase, "live", "transferring"); n != 1 || sum != 8 {
		t.Errorf("transferring: %d observations, %v s; want 1, 8 s", n, sum)
	}
	if n, _ := histogram(t, m.migrationPhase, "live", "completed"); n != 0 {
		t.Errorf("the final state has no duration; recorded %d times", n)
	}
	if n, sum := histogram(t, m.migrationDowntime, "live"); n != 1 || sum != 0.25 {
		t.Errorf("downtime: %d observations, %v s; want 1, 0.25 s", n, sum)
	}
	if got := testutil.ToFloat64(m.migrationBytes.WithLabelValues("live", "memory")); got != 3<<30 {
		t.Errorf("bytes{live,memory} = %v; want %d", got, 3<<30)
	}

	// A cold move of a stopped VM has no downtime; a failed one none
	// recorded; one not ended is not recorded at all.
	m.MigrationEnded(api.Migration{Kind: api.KindCold, State: api.MigCompleted, CreatedAt: t0, FinishedAt: t0.Add(time.Second)})
	m.MigrationEnded(api.Migration{Kind: api.KindLive, State: api.MigRolledBack, CreatedAt: t0, FinishedAt: t0.Add(time.Second)})
	m.MigrationEnded(api.Migration{Kind: api.KindLive, State: api.MigTransferring})
	if n, _ := histogram(t, m.migrationDowntime, "cold"); n != 0 {
		t.Errorf("a stopped VM's cold move recorded a downtime")
	}
	if n, _ := histogram(t, m.migrationDowntime, "live"); n != 1 {
		t.Errorf("live downtimes recorded %d; want 1 (the completed move's)", n)
	}
	if got := testutil.CollectAndCount(m.migrations); got != 3 {
		t.Errorf("%d migration series; want 3 (live completed, cold completed, live rolled back)", got)
	}

	// Stalls shorter than MinStall are none; nil records nothing.
	m.MigrationStalled(api.KindLive, time.Second)
	m.MigrationStalled(api.KindLive, 5*time.Second)
	if n, sum := histogram(t, m.migrationStalls, "live"); n != 1 || sum != 5 {
		t.Errorf("stalls: %d, %v s; want 1, 5 s", n, sum)
	}
	var none *Controller
	none.MigrationEnded(mig)
	none.MigrationStalled(api.KindLive, time.Minute)
	none.IntentEnded(api.Intent{State: api.IntentCompleted})
	none.OperationEnded(api.OpLive, api.OpDone)
	none.APIRequest("GET /v1/vms", 200, time.Millisecond)
	var noAgent *Agent
	noAgent.MigrationSent("completed", 1)
	noAgent.Request("GET /v1/vms", 200, time.Millisecond)
}

// A planned intent (a dry run) never ran: it is not counted.
func TestIntentEnded(t *testing.T) {
	m := NewController()
	t0 := time.Now()
	m.IntentEnded(api.Intent{Kind: api.IntentDrain, State: api.IntentPartial, CreatedAt: t0, FinishedAt: t0.Add(time.Minute)})
	m.IntentEnded(api.Intent{Kind: api.IntentDrain, State: api.IntentPlanned})
	m.IntentEnded(api.Intent{Kind: api.IntentDrain, State: api.IntentRunning})
	if got := testutil.CollectAndCount(m.intents); got != 1 {
		t.Errorf("%d intent series; want 1", got)
	}
	if n, sum := histogram(t, m.intentDuration, "drain", "partial"); n != 1 || sum != 60 {
		t.Errorf("drain duration: %d, %v s; want 1, 60 s", n, sum)
	}
}

func TestLabels(t *testing.T) {
	for status, want := range map[int]string{200: "2xx", 204: "2xx", 404: "4xx", 503: "5xx", 0: "other", 999: "other"} {
		if got := StatusClass(status); got != want {
			t.Errorf("StatusClass(%d) = %s; want %s", status, got, want)
		}
	}
	for pattern, want := range map[string][2]string{
		"GET /v1/vms/{name}": {"GET", "/v1/vms/{name}"},
		"/metrics":           {"", "/metrics"},
	} {
		if m, r := SplitPattern(pattern); m != want[0] || r != want[1] {
			t.Errorf("SplitPattern(%q) = %q, %q; want %q, %q", pattern, m, r, want[0], want[1])
		}
	}
}

// The gauges come from the state read at each scrape; a read that fails
// leaves them out and the rest is served.
func TestStateCollector(t *testing.T) {
	m := NewController()
	fail := true
	m.WatchState(func(context.Context) (State, error) {
		if fail {
			return State{}, errors.New("the store is away")
		}
		return State{
			Hosts: []api.Host{{Name: "h1", State: api.HostUp, Enabled: true, CPUs: 8, MemoryMiB: 4096, AllocatedCPUs: 3, AllocatedMemoryMiB: 1024, VMs: 2},
				{Name: "h2", State: api.HostDown, Enabled: true}},
			Migrations: []api.Migration{{Kind: api.KindLive, State: api.MigTransferring, Source: "h1", Destination: "h2", Progress: api.MigrationProgress{Throughput: 5e6}},
				{Kind: api.KindLive, State: api.MigPreparing, Source: "h1", Destination: "h2", Progress: api.MigrationProgress{Throughput: 7e6}}},
			Intents: []api.Intent{{Kind: api.IntentDrain, State: api.IntentRunning, Operations: []api.Operation{
				{Kind: api.OpLive, State: api.OpRunning}, {Kind: api.OpLive, State: api.OpPending}, {Kind: api.OpLive, State: api.OpDone}}}},
		}, nil
	})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	page := func() string {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if p := page(); strings.Contains(p, "godwit_hosts{") || !strings.Contains(p, "godwit_build_info") {
		t.Errorf("a failed state read: the gauges must be left out and the rest served:\n%s", p)
	}
	fail = false
	p := page()
	for _, line := range []string{
		`godwit_hosts{enabled="true",state="up"} 1`,
		`godwit_hosts{enabled="true",state="down"} 1`,
		`godwit_hosts{enabled="false",state="up"} 0`,
		`godwit_host_vms{host="h1"} 2`,
		`godwit_host_claimed_vcpus{host="h1"} 3`,
		`godwit_host_claimed_memory_bytes{host="h1"} 1.073741824e+09`,
		`godwit_host_capacity_vcpus{host="h1"} 8`,
		`godwit_host_migration_bandwidth_bytes_per_second{direction="out",host="h1"} 5e+06`,
		`godwit_host_migration_bandwidth_bytes_per_second{direction="in",host="h2"} 5e+06`,
		`godwit_host_migration_bandwidth_bytes_per_second{direction="in",host="h1"} 0`,
		`godwit_migrations_active{kind="live",state="transferring"} 1`,
		`godwit_migrations_active{kind="live",state="preparing"} 1`,
		`godwit_migrations_active{kind="cold",state="transferring"} 0`,
		`godwit_intents_active{kind="drain",state="running"} 1`,
		`godwit_intents_active{kind="resize",state="running"} 0`,
		`godwit_intent_operations_active{kind="live",state="running"} 1`,
		`godwit_intent_operations_active{kind="live",state="pending"} 1`,
	} {
		if !strings.Contains(p, "\n"+line+"\n") {
			t.Errorf("the page lacks %s", line)
		}
	}
}

// names lists the godwit_* metrics defined here, from their descriptions.
func names(t *testing.T) map[string]bool {
	t.Helper()
	m, a := NewController(), NewAgent()
	cs := []prometheus.Collector{m.migrations, m.migrationDuration, m.migrationPhase, m.migrationDowntime, m.migrationStalls,
		m.migrationBytes, m.intents, m.intentDuration, m.operations, m.requests, a.sent, a.requests, &stateCollector{}, &agentCollector{}}
	ch := make(chan *prometheus.Desc, 100)
	for _, c := range cs {
		c.Describe(ch)
	}
	close(ch)
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	out := map[string]bool{"godwit_build_info": true}
	for d := range ch {
		mt := re.FindStringSubmatch(d.String())
		if mt == nil {
			t.Fatalf("no name in %s", d)
		}
		out[mt[1]] = true
	}
	return out
}

var metricName = regexp.MustCompile(`godwit_[a-z_]+`)

// The Grafana dashboard queries only metrics that exist (a histogram's
// _bucket, _sum and _count series included).
func TestDashboardMetricsExist(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana/godwit.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	known := names(t)
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries++
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")
				if !known[n] && !known[base] {
					t.Errorf("panel %q queries %s, which godwit does not export", p.Title, n)
				}
			}
		}
	}
	if queries < 10 {
		t.Errorf("the dashboard has %d queries; the test read it wrong", queries)
	}
}

// docs/metrics.md lists every metric.
func TestDocsListEveryMetric(t *testing.T) {
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for n := range names(t) {
		if !strings.Contains(string(b), "`"+n+"`") {
			t.Errorf("docs/metrics.md does not list %s", n)
		}
	}
}
