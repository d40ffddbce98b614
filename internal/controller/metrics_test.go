package controller_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/version"
)

// samples are one scrape's values, by series: the metric's name and its
// labels sorted by name, as the Prometheus client writes them
// (series builds such keys).
type samples map[string]float64

// series is the key of a sample: name{a="x",b="y"}, labels sorted by
// name whatever the order they are given in (pairs: name, value, ...).
func series(name string, pairs ...string) string {
	if len(pairs) == 0 {
		return name
	}
	var kv []string
	for i := 0; i+1 < len(pairs); i += 2 {
		kv = append(kv, pairs[i]+`="`+pairs[i+1]+`"`)
	}
	slices.Sort(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

// scrape reads a /metrics page in the text format: every sample line is
// a series, a space and a value (promhttp writes no timestamps).
func scrape(t *testing.T, c *http.Client, url, token string) (samples, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s: %s", url, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("scrape %s: Content-Type %q; want the text format", url, ct)
	}
	out := samples{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("scrape %s: a sample without a value: %q", url, line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: %q: %v", url, line, err)
		}
		out[line[:i]] = v
	}
	return out, string(b)
}

// migrateWhenFree starts a migration once the VM is free: a migration's
// record ends a moment before its VM is let go, and a request in that
// moment is refused as busy. It reports how many were refused (each one
// a 4xx answer of the route's).
func migrateWhenFree(t *testing.T, c *api.Client, vm string, req api.MigrateRequest) (api.Migration, int, error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for refused := 0; ; refused++ {
		m, err := c.Migrate(context.Background(), vm, req)
		if !api.IsCode(err, api.CodeConflict) || time.Now().After(deadline) {
			return m, refused, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape reads the controller's /metrics, as an admin in a cluster with
// a CA.
func (tc *testCluster) scrape(t *testing.T) (samples, string) {
	t.Helper()
	return scrape(t, tc.client.HTTP, tc.url+"/metrics", tc.adminToken)
}

// One live migration, one aborted, one cold and one resize move the
// controller's counters and histograms by exactly what happened, its
// gauges show the cluster as it is (a migration transferring, then none),
// and the API's latency is recorded by route pattern, never by path. The
// source agent's metrics count what it sent.
func TestMetrics(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{agentMetrics: true}, 4, 2048, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	const memMiB = 128
	for _, name := range []string{"web", "slow"} {
		if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: "guest", Pool: api.PoolShared, Host: "host1",
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: memMiB}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range tc.agents {
		if a.metrics == "" {
			t.Fatalf("agent %s serves no metrics", a.cfg.Name)
		}
	}
	agentHTTP := &http.Client{}
	before, _ := tc.scrape(t)
	src1, _ := scrape(t, agentHTTP, tc.agents[0].metrics, "")

	// A live move held at 8 MB/s: while it transfers the gauges show it.
	slow, err := tc.client.Migrate(ctx, "slow", api.MigrateRequest{Kind: api.KindLive, To: "host2", BandwidthMBPerS: 8, Policy: api.PolicyPreCopy})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, err := tc.client.Migration(ctx, slow.ID)
		if err != nil {
			t.Fatal(err)
		}
		if m.State == api.MigTransferring && m.Progress.Throughput > 0 {
			break
		}
		if m.State.Final() || time.Now().After(deadline) {
			t.Fatalf("the slow migration is %s, throughput %.0f; want it transferring", m.State, m.Progress.Throughput)
		}
		time.Sleep(20 * time.Millisecond)
	}
	during, _ := tc.scrape(t)
	agentDuring, _ := scrape(t, agentHTTP, tc.agents[0].metrics, "")
	for _, c := range []struct {
		series string
		want   float64
	}{
		{series("godwit_migrations_active", "kind", "live", "state", "transferring"), 1},
		{series("godwit_host_migration_bandwidth_bytes_per_second", "host", "host1", "direction", "out"), 8e6},
		{series("godwit_host_migration_bandwidth_bytes_per_second", "host", "host2", "direction", "in"), 8e6},
		{series("godwit_host_migration_bandwidth_bytes_per_second", "host", "host2", "direction", "out"), 0},
	} {
		if got, ok := during[c.series]; !ok || got != c.want {
			t.Errorf("during the transfer %s = %v (present %v); want %v", c.series, got, ok, c.want)
		}
	}
	if got := agentDuring[series("godwit_agent_migrations_active", "direction", "out")]; got != 1 {
		t.Errorf("host1's outgoing migrations during the transfer = %v; want 1", got)
	}
	if dstDuring, _ := scrape(t, agentHTTP, tc.agents[1].metrics, ""); dstDuring[series("godwit_agent_migrations_active", "direction", "in")] != 1 {
		t.Errorf("host2's incoming migrations during the transfer = %v; want 1", dstDuring[series("godwit_agent_migrations_active", "direction", "in")])
	}
	if _, err := tc.client.AbortMigration(ctx, slow.ID); err != nil {
		t.Fatal(err)
	}
	if m := waitMigration(t, tc.client, slow.ID); m.State != api.MigCancelled {
		t.Fatalf("the aborted migration ended %s: %s", m.State, m.Reason)
	}

	// One live move and one cold move back, both completed.
	refused := 0 // migrate requests refused while the VM was still busy
	for _, req := range []api.MigrateRequest{{Kind: api.KindLive, To: "host2"}, {Kind: api.KindCold, To: "host1"}} {
		m, n, err := migrateWhenFree(t, tc.client, "web", req)
		if err != nil {
			t.Fatal(err)
		}
		refused += n
		if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted {
			t.Fatalf("%s migration ended %s: %s", req.Kind, m.State, m.Reason)
		}
	}
	// A migrate of a VM that does not exist: 404, under the route too.
	if _, err := tc.client.Migrate(ctx, "no-such-vm", api.MigrateRequest{Kind: api.KindLive}); !api.IsCode(err, api.CodeNotFound) {
		t.Fatalf("migrate of an unknown vm: %v; want not found", err)
	}
	// One intent with one operation.
	var in api.Intent
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if in, err = tc.client.Resize(ctx, "web", api.ResizeRequest{VCPUs: 2}); !api.IsCode(err, api.CodeConflict) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if in = waitIntent(t, tc.client, in.ID, 30*time.Second); in.State != api.IntentCompleted {
		t.Fatalf("resize ended %s: %s", in.State, in.Reason)
	}

	after, text := tc.scrape(t)
	src2, _ := scrape(t, agentHTTP, tc.agents[0].metrics, "")
	dst2, _ := scrape(t, agentHTTP, tc.agents[1].metrics, "")
	delta := func(s string) float64 { return after[s] - before[s] }
	for _, c := range []struct {
		series string
		want   float64
	}{
		{series("godwit_migrations_total", "kind", "live", "state", "completed"), 1},
		{series("godwit_migrations_total", "kind", "live", "state", "cancelled"), 1},
		{series("godwit_migrations_total", "kind", "cold", "state", "completed"), 1},
		{series("godwit_migrations_total", "kind", "live", "state", "failed-rolled-back"), 0},
		{series("godwit_migration_duration_seconds_count", "kind", "live", "state", "completed"), 1},
		{series("godwit_migration_duration_seconds_count", "kind", "cold", "state", "completed"), 1},
		{series("godwit_migration_duration_seconds_count", "kind", "live", "state", "cancelled"), 1},
		// Each ended migration went through transferring once.
		{series("godwit_migration_phase_duration_seconds_count", "kind", "live", "phase", "transferring"), 2},
		{series("godwit_migration_phase_duration_seconds_count", "kind", "cold", "phase", "transferring"), 1},
		// Downtime: of the completed moves only (the cold one stopped a running VM).
		{series("godwit_migration_downtime_seconds_count", "kind", "live"), 1},
		{series("godwit_migration_downtime_seconds_count", "kind", "cold"), 1},
		// A shared disk: nothing on disk moves.
		{series("godwit_migration_bytes_total", "kind", "live", "what", "disk"), 0},
		{series("godwit_migration_bytes_total", "kind", "cold", "what", "memory"), 0},
		{series("godwit_intents_total", "kind", "resize", "state", "completed"), 1},
		{series("godwit_intent_duration_seconds_count", "kind", "resize", "state", "completed"), 1},
		{series("godwit_intent_operations_total", "kind", "resize", "state", "done"), 1},
		{series("godwit_api_request_duration_seconds_count", "method", "POST", "route", "/v1/vms/{name}/migrate", "status_class", "2xx"), 3},
		{series("godwit_api_request_duration_seconds_count", "method", "POST", "route", "/v1/vms/{name}/migrate", "status_class", "4xx"), 1 + float64(refused)},
		{series("godwit_api_request_duration_seconds_count", "method", "POST", "route", "/v1/migrations/{id}/abort", "status_class", "2xx"), 1},
		{series("godwit_api_request_duration_seconds_count", "method", "POST", "route", "/v1/vms/{name}/resize", "status_class", "2xx"), 1},
	} {
		if got := delta(c.series); got != c.want {
			t.Errorf("%s moved by %v; want %v", c.series, got, c.want)
		}
	}
	if d := delta(series("godwit_migration_duration_seconds_sum", "kind", "live", "state", "completed")); d <= 0 {
		t.Errorf("the live migration's duration added %v s; want more than 0", d)
	}
	// The completed live move sent all of the guest's memory at least
	// once; the cancelled one some of it.
	if d := delta(series("godwit_migration_bytes_total", "kind", "live", "what", "memory")); d < memMiB<<20 {
		t.Errorf("live migrations moved %v bytes of memory; want at least %d", d, memMiB<<20)
	}
	if strings.Contains(text, `route="/v1/vms/web`) || strings.Contains(text, `route="/v1/migrations/`+slow.ID) {
		t.Errorf("the API's latency is recorded under a raw path, not the route pattern")
	}

	// The gauges: the cluster as it is now, as the API shows it.
	hosts, err := tc.client.Hosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gauges := []struct {
		series string
		want   float64
	}{
		{series("godwit_hosts", "state", "up", "enabled", "true"), 2},
		{series("godwit_hosts", "state", "down", "enabled", "true"), 0},
		{series("godwit_migrations_active", "kind", "live", "state", "transferring"), 0},
		{series("godwit_host_migration_bandwidth_bytes_per_second", "host", "host1", "direction", "out"), 0},
		{series("godwit_intents_active", "kind", "resize", "state", "running"), 0},
		{series("godwit_build_info", "component", "controller", "version", version.Version), 1},
	}
	vcpus := 0
	for _, h := range hosts {
		vcpus += h.AllocatedCPUs
		gauges = append(gauges, []struct {
			series string
			want   float64
		}{
			{series("godwit_host_vms", "host", h.Name), float64(h.VMs)},
			{series("godwit_host_claimed_vcpus", "host", h.Name), float64(h.AllocatedCPUs)},
			{series("godwit_host_claimed_memory_bytes", "host", h.Name), float64(h.AllocatedMemoryMiB) * (1 << 20)},
			{series("godwit_host_capacity_vcpus", "host", h.Name), 4},
			{series("godwit_host_capacity_memory_bytes", "host", h.Name), 2048 << 20},
		}...)
	}
	if vcpus != 3 {
		t.Errorf("the hosts claim %d vCPUs; want 3 (web resized to 2, slow 1)", vcpus)
	}
	for _, c := range gauges {
		if got, ok := after[c.series]; !ok || got != c.want {
			t.Errorf("after: %s = %v (present %v); want %v", c.series, got, ok, c.want)
		}
	}

	// host1's agent sent two live migrations: the completed one all of
	// the guest's memory, the cancelled one some of it.
	sentCount := func(s samples, status string) float64 {
		return s[series("godwit_agent_migration_sent_bytes_count", "status", status)]
	}
	if d := sentCount(src2, "completed") - sentCount(src1, "completed"); d != 1 {
		t.Errorf("host1 recorded %v completed outgoing migrations; want 1", d)
	}
	if d := sentCount(src2, "cancelled") - sentCount(src1, "cancelled"); d != 1 {
		t.Errorf("host1 recorded %v cancelled outgoing migrations; want 1", d)
	}
	if d := src2[series("godwit_agent_migration_sent_bytes_sum", "status", "completed")] - src1[series("godwit_agent_migration_sent_bytes_sum", "status", "completed")]; d < memMiB<<20 {
		t.Errorf("host1 sent %v bytes in its completed migration; want at least %d", d, memMiB<<20)
	}
	if got := src2[series("godwit_agent_migrations_active", "direction", "out")]; got != 0 {
		t.Errorf("host1's outgoing migrations after = %v; want 0", got)
	}
	if d := src2[series("godwit_agent_request_duration_seconds_count", "method", "POST", "route", "/v1/vms/{id}/migrate", "status_class", "2xx")] -
		src1[series("godwit_agent_request_duration_seconds_count", "method", "POST", "route", "/v1/vms/{id}/migrate", "status_class", "2xx")]; d != 2 {
		t.Errorf("host1's agent answered %v migrate calls; want 2", d)
	}
	// Each agent's VMs, as the controller places them.
	for i, s := range []samples{src2, dst2} {
		want := 0
		for _, h := range hosts {
			if h.Name == tc.agents[i].cfg.Name {
				want = h.VMs
			}
		}
		if got := s[series("godwit_agent_vms", "state", "running")]; got != float64(want) {
			t.Errorf("%s runs %v VMs, says its agent; the controller places %d there", tc.agents[i].cfg.Name, got, want)
		}
	}
}
