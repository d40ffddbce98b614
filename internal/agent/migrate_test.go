package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/fake"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
)

// migrationRecorder is the fake driver, recording what the agent asks of
// its live-migration side instead of migrating.
type migrationRecorder struct {
	*fake.Driver
	switchedOver []string
	out          []driver.MigrateOptions
}

func (m *migrationRecorder) SwitchOver(_ context.Context, id string, _ time.Duration) error {
	m.switchedOver = append(m.switchedOver, id)
	return nil
}

func (m *migrationRecorder) MigrateOut(_ context.Context, _ string, _ driver.Incoming, opts driver.MigrateOptions) error {
	m.out = append(m.out, opts)
	return nil
}

// The switch-over answers on its route and, for a controller of the
// previous version, on the one it had before the rename; the bandwidth
// cap reaches the driver in bytes/s under either of its names.
func TestMigrationRoutes(t *testing.T) {
	d, _ := fakeWithVM(t)
	rec := &migrationRecorder{Driver: d}
	c, url := resizeAgent(t, rec)
	ctx := context.Background()

	if _, err := c.SwitchOver(ctx, resizeID); err != nil {
		t.Fatal(err)
	}
	post := func(path, body string) {
		t.Helper()
		resp, err := http.Post(url+"/v1/vms/"+resizeID+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s %s: %s", path, body, resp.Status)
		}
	}
	post("/complete-incoming", "{}")
	if len(rec.switchedOver) != 2 {
		t.Errorf("switched over %d times; want 2 (new route, old route)", len(rec.switchedOver))
	}

	if err := c.MigrateOut(ctx, resizeID, hostapi.MigrateOut{URI: "tcp:127.0.0.1:1", BandwidthMBPerS: 32, Policy: api.PolicyPreCopy}); err != nil {
		t.Fatal(err)
	}
	post("/migrate", `{"uri":"tcp:127.0.0.1:1","bandwidth_mbps":125}`) // a controller from before the rename
	post("/migrate", `{"uri":"tcp:127.0.0.1:1"}`)
	var got []int64
	for _, o := range rec.out {
		got = append(got, o.BandwidthBytesPerS)
	}
	if len(got) != 3 || got[0] != 32e6 || got[1] != 125e6 || got[2] != 0 || rec.out[0].Policy != api.PolicyPreCopy {
		t.Errorf("driver caps %v bytes/s (policy %q); want [32e6 125e6 0], pre-copy", got, rec.out[0].Policy)
	}
}

// notifyingMigrator reports an active migration until the test ends it,
// and says when it changes, as the qemu driver does from QEMU's events.
type notifyingMigrator struct {
	*fake.Driver
	mu      sync.Mutex
	status  string
	asked   chan struct{} // a waiter took the change channel
	changed chan struct{}
}

func (m *notifyingMigrator) MigrationChanged(context.Context, string) (<-chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case m.asked <- struct{}{}:
	default:
	}
	return m.changed, nil
}

func (m *notifyingMigrator) MigrationStatus(context.Context, string) (driver.MigrationStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return driver.MigrationStatus{Status: m.status}, nil
}

func (m *notifyingMigrator) end() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status = driver.MigrationCompleted
	close(m.changed)
	m.changed = make(chan struct{})
}

// A status read that may wait answers once the migration has ended, so
// that the controller learns of the end at once; one that may not answers
// with the status as it is.
func TestMigrationStatusWaitsForTheEnd(t *testing.T) {
	d, _ := fakeWithVM(t)
	m := &notifyingMigrator{Driver: d, status: driver.MigrationActive, asked: make(chan struct{}, 1), changed: make(chan struct{})}
	c, _ := resizeAgent(t, m)
	ctx := context.Background()

	st, err := c.MigrationStatus(ctx, resizeID)
	if err != nil || st.Status != driver.MigrationActive {
		t.Fatalf("a read without wait: %+v, %v; want active at once", st, err)
	}
	select {
	case <-m.asked:
		t.Fatal("a read without wait waited for a change")
	default:
	}
	got := make(chan hostapi.MigrationStatus, 1)
	go func() {
		st, err := c.MigrationStatusWait(ctx, resizeID, hostapi.MaxWait)
		if err != nil {
			t.Error(err)
		}
		got <- st
	}()
	select {
	case <-m.asked: // the handler waits on the change now
	case st := <-got:
		t.Fatalf("a waiting read answered %q without waiting for a change", st.Status)
	}
	m.end()
	if st := <-got; st.Status != driver.MigrationCompleted {
		t.Errorf("a waiting read answered %q; want completed, the migration's end", st.Status)
	}
}

// The agent hands QEMU only tcp: targets with IP literals: an exec: URI
// (a shell), file: or unix: (guest memory to a path) or an NBD target by
// name is refused with 400 before the driver sees it.
func TestMigrateOutRefusesTargets(t *testing.T) {
	d, _ := fakeWithVM(t)
	rec := &migrationRecorder{Driver: d}
	c, _ := resizeAgent(t, rec)
	ctx := context.Background()
	for _, req := range []hostapi.MigrateOut{
		{URI: "exec:sh -c 'touch /tmp/godwit-pwned'"},
		{URI: "file:/tmp/guest-memory"},
		{URI: "unix:/tmp/evil.sock"},
		{URI: "tcp:evil.example:4444"},
		{URI: "tcp:127.0.0.1:0"},
		{URI: "tcp:127.0.0.1:70000"},
		{URI: "tcp:127.0.0.1:4444", NBD: "evil.example:10809"},
		{URI: "tcp:127.0.0.1:4444", NBD: "unix:/tmp/nbd.sock"},
		{},
	} {
		err := c.MigrateOut(ctx, resizeID, req)
		if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "refused") {
			t.Errorf("migrate to %q / %q: %v; want 400 saying it is refused", req.URI, req.NBD, err)
		}
	}
	if len(rec.out) != 0 {
		t.Errorf("the driver was asked to migrate %d times; want none", len(rec.out))
	}
	if err := c.MigrateOut(ctx, resizeID, hostapi.MigrateOut{URI: "tcp:[::1]:4444", NBD: "[::1]:10809"}); err != nil {
		t.Errorf("an IPv6 target: %v", err)
	}
}

// A host receives migrations on an IP address (the only kind a source
// accepts): its listen address, or the advertised one when it listens on
// all, a name resolved, loopback when nothing names one.
func TestMigrationHost(t *testing.T) {
	for _, tt := range []struct{ listen, advertise, want string }{
		{"127.0.0.1:7401", "http://127.0.0.1:7401", "127.0.0.1"},
		{"10.0.0.5:7401", "http://node5.example:7401", "10.0.0.5"},
		{"[::1]:7401", "http://[::1]:7401", "::1"},
		{"0.0.0.0:7401", "http://10.0.0.5:7401", "10.0.0.5"},
		{"[::]:7401", "http://[2001:db8::5]:7401", "2001:db8::5"},
		{"0.0.0.0:7401", "http://0.0.0.0:7401", "127.0.0.1"},
		{":7401", "http://10.0.0.5:7401", "10.0.0.5"},
		{"localhost:7401", "http://localhost:7401", "127.0.0.1"},
		{"", "", "127.0.0.1"},
	} {
		a := &Agent{cfg: Config{Listen: tt.listen, Advertise: tt.advertise}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if got := a.migrationHost(context.Background()); got != tt.want {
			t.Errorf("listen %q, advertise %q: migration host %q; want %q", tt.listen, tt.advertise, got, tt.want)
		}
	}
}
