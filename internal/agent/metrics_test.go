package agent

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/metrics"
)

// get answers a plain GET: its status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hasSample reports whether a scrape holds the sample line exactly.
func hasSample(page, line string) bool {
	for _, l := range strings.Split(page, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// godwit agent --metrics-listen serves GET /metrics, and only that, on a
// plain listener of its own: the host's VMs by state and the API's
// latency by route pattern. The API itself serves no metrics.
func TestMetricsListen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, Config{Name: "h1", StateDir: t.TempDir(), Driver: "fake", Controller: "http://127.0.0.1:1",
		MetricsListen: "127.0.0.1:0", NoLease: true, HeartbeatInterval: time.Hour, Logger: quiet()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = a.Serve(ctx, ln); a.Close(); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if a.MetricsAddr() == nil {
		t.Fatal("no metrics address with MetricsListen set")
	}
	api, mURL := "http://"+ln.Addr().String(), "http://"+a.MetricsAddr().String()

	spec := driver.VMSpec{ID: resizeID, Name: "r", VCPUs: 1, MaxVCPUs: 1, MemoryMiB: 128, MaxMemoryMiB: 128, Cmdline: "console=ttyS0",
		Disk: &driver.Disk{Path: filepath.Join(t.TempDir(), "r.qcow2"), SizeMiB: 64}}
	if err := a.drv.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := a.drv.Start(ctx, resizeID); err != nil {
		t.Fatal(err)
	}
	// The API is up once it answers; then one call that finds the VM
	// and one that does not.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if status, _ := get(t, api+"/v1/vms/"+resizeID); status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent's API never answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, _ := get(t, api+"/v1/vms/00000000-0000-4000-8000-000000000000"); status != http.StatusNotFound {
		t.Fatalf("an unknown vm answered %d; want 404", status)
	}

	status, page := get(t, mURL+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics on the metrics listener: %d %s", status, page)
	}
	for _, line := range []string{
		`godwit_agent_vms{state="running"} 1`,
		`godwit_agent_vms{state="stopped"} 0`,
		`godwit_agent_migrations_active{direction="in"} 0`,
		`godwit_agent_migrations_active{direction="out"} 0`,
		`godwit_agent_request_duration_seconds_count{method="GET",route="/v1/vms/{id}",status_class="4xx"} 1`,
	} {
		if !hasSample(page, line) {
			t.Errorf("the agent's metrics lack %s", line)
		}
	}
	if !strings.Contains(page, `godwit_agent_request_duration_seconds_count{method="GET",route="/v1/vms/{id}",status_class="2xx"} `) {
		t.Errorf("the agent's metrics have no latency for GET /v1/vms/{id}")
	}
	if strings.Contains(page, resizeID) {
		t.Errorf("a raw path (the VM's ID) is in the agent's metrics")
	}
	if status, _ := get(t, mURL+"/v1/vms"); status != http.StatusNotFound {
		t.Errorf("the metrics listener answers the API (GET /v1/vms: %d); want 404", status)
	}
	if status, _ := get(t, api+"/metrics"); status != http.StatusNotFound {
		t.Errorf("the API serves GET /metrics (%d); want 404: metrics are on their own listener", status)
	}
}

// Without --metrics-listen an agent listens for nothing more.
func TestNoMetricsListener(t *testing.T) {
	a, err := New(context.Background(), Config{Name: "h1", StateDir: t.TempDir(), Driver: "fake", NoLease: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if addr := a.MetricsAddr(); addr != nil {
		t.Errorf("metrics served on %s without MetricsListen", addr)
	}
}

// An outgoing migration is recorded once, when a status read first shows
// it ended, with the most it was seen to send (its process died: the
// last read says nothing was sent); one the agent did not start is not.
func TestOutgoingRecordedOnce(t *testing.T) {
	m := metrics.NewAgent()
	var o outgoing
	o.started("a")
	o.seen(m, "a", driver.MigrationStatus{Status: driver.MigrationActive, MemoryTransferred: 100 << 20, DiskTransferred: 28 << 20})
	o.seen(m, "a", driver.MigrationStatus{Status: driver.MigrationFailed})
	o.seen(m, "a", driver.MigrationStatus{Status: driver.MigrationFailed})
	o.seen(m, "b", driver.MigrationStatus{Status: driver.MigrationCompleted, MemoryTransferred: 1 << 30})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	_, page := get(t, srv.URL)
	for _, line := range []string{
		`godwit_agent_migration_sent_bytes_count{status="failed"} 1`,
		`godwit_agent_migration_sent_bytes_sum{status="failed"} 1.34217728e+08`,
	} {
		if !hasSample(page, line) {
			t.Errorf("the metrics lack %s", line)
		}
	}
	if strings.Contains(page, `status="completed"`) {
		t.Errorf("a migration this agent did not start was recorded")
	}
}
