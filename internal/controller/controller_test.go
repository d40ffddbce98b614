package controller_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/agent"
	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/controller"
	"github.com/godwit/godwit/internal/driver/fake"
	"github.com/godwit/godwit/internal/pki"
	"github.com/godwit/godwit/internal/qcow2"
	"github.com/godwit/godwit/internal/service"
)

// testCluster is a controller and fake-driver agents in this process:
// real HTTP, real store, real scheduler, no QEMU.
type testCluster struct {
	url     string
	dataDir string // the controller's
	client  *api.Client
	ctx     context.Context
	agents  []*testAgent
	tlsDir  string // the cluster's CA and the controller's certificate; "" without TLS
	// adminToken is the bootstrap admin token of a cluster with a CA.
	adminToken string
	ctrl       *testController // the controller serving at url now
}

// testController is the controller of a testCluster, restartable on the
// same data directory and address (restartController).
type testController struct {
	cfg    controller.Config
	addr   string
	ctrl   *controller.Controller
	cancel context.CancelFunc
	done   chan struct{}
}

// scheme is how the cluster's processes are reached.
func (tc *testCluster) scheme() string {
	if tc.tlsDir != "" {
		return "https://"
	}
	return "http://"
}

// testAgent is one agent of a testCluster, stoppable and restartable on
// the same state (the fake driver's VMs outlive it, as QEMUs do).
type testAgent struct {
	cfg    agent.Config
	cancel context.CancelFunc
	done   chan struct{}
	// front, when set, serves in front of the agent (given its URL),
	// and the agent advertises the front's address.
	front func(agentURL string) http.Handler
	// metrics is the URL of the agent's metrics (clusterOptions.agentMetrics).
	metrics string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func newTestCluster(t *testing.T, hosts int, memMiB int) *testCluster {
	t.Helper()
	mems := make([]int, hosts)
	for i := range mems {
		mems[i] = memMiB
	}
	return newTestClusterSized(t, 2, mems...)
}

// newTestClusterSized starts one host per entry of mems, each offering
// that much memory and cpus CPUs.
func newTestClusterSized(t *testing.T, cpus int, mems ...int) *testCluster {
	t.Helper()
	return newTestClusterWith(t, clusterOptions{}, cpus, mems...)
}

// clusterOptions tune a test cluster beyond its hosts' sizes.
type clusterOptions struct {
	agentOutage time.Duration  // the controller's Config.AgentOutage; 0: its default
	faults      []*fake.Faults // the fake driver's knobs, by host (host1 first); nil: none
	// accels and qemus are the accelerator and QEMU version each fake
	// host claims (host1 first; "": none, and the fake's default).
	accels, qemus []string
	// versions are the godwit versions the agents claim, ctrlVersion the
	// controller's (empty: this build's).
	versions       []string
	ctrlVersion    string
	allowUnsafeTCG bool   // the controller's AllowUnsafeTCGMigration
	storeDSN       string // the controller's store ("": SQLite)
	tls            bool   // a cluster with a CA: HTTPS, hosts joined with tokens, mutual TLS
	// The controller's upload limits (0: the defaults).
	maxDiskUpload, maxKernelUpload int64
	uploadIdle                     time.Duration
	// fronts puts a handler in front of host n's agent (testAgent.front).
	fronts map[int]func(agentURL string) http.Handler
	// agentMetrics has every agent serve its metrics on a listener of
	// its own (testAgent.metrics).
	agentMetrics bool
}

// newTestClusterWith is newTestClusterSized with options.
func newTestClusterWith(t *testing.T, opts clusterOptions, cpus int, mems ...int) *testCluster {
	t.Helper()
	hosts := len(mems)
	ctx, cancel := context.WithCancel(context.Background())
	tc := &testCluster{ctx: ctx, dataDir: t.TempDir()}
	if opts.tls {
		tc.tlsDir = t.TempDir()
		if _, err := pki.Init(tc.tlsDir, "test", "controller", []string{"127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
		var err error
		if tc.adminToken, err = auth.WriteBootstrap(tc.tlsDir); err != nil {
			t.Fatal(err)
		}
	}
	tc.ctrl = &testController{cfg: controller.Config{TLSDir: tc.tlsDir, UploadIdle: opts.uploadIdle, Config: service.Config{DataDir: tc.dataDir, StoreDSN: opts.storeDSN, HostDownAfter: 5 * time.Second, Version: opts.ctrlVersion,
		AgentOutage: opts.agentOutage, AllowUnsafeTCGMigration: opts.allowUnsafeTCG,
		MaxDiskUpload: opts.maxDiskUpload, MaxKernelUpload: opts.maxKernelUpload, Logger: quietLogger()}}}
	tc.startController(t, listen(t))
	tc.url = tc.scheme() + tc.ctrl.addr
	tc.client = tc.userClient(t)
	for i := 1; i <= hosts; i++ {
		ta := &testAgent{cfg: agent.Config{
			Name: fmt.Sprintf("host%d", i), Controller: tc.url,
			StateDir: t.TempDir(), SharedDir: filepath.Join(os.TempDir(), "godwit-test-shared-"+t.Name()),
			Driver: "fake", HeartbeatInterval: 100 * time.Millisecond, CPUs: cpus, MemoryMiB: mems[i-1], Logger: quietLogger(),
		}}
		if i <= len(opts.faults) {
			ta.cfg.Faults = opts.faults[i-1]
		}
		if i <= len(opts.accels) {
			ta.cfg.Accel = opts.accels[i-1]
		}
		if i <= len(opts.qemus) {
			ta.cfg.FakeQEMUVersion = opts.qemus[i-1]
		}
		if i <= len(opts.versions) {
			ta.cfg.Version = opts.versions[i-1]
		}
		if opts.tls {
			tok, err := tc.client.JoinToken(ctx, ta.cfg.Name, api.JoinTokenRequest{})
			if err != nil {
				t.Fatal(err)
			}
			ta.cfg.Join = tok.Token
		}
		ta.front = opts.fronts[i]
		if opts.agentMetrics {
			ta.cfg.MetricsListen = "127.0.0.1:0"
		}
		tc.agents = append(tc.agents, ta)
		tc.startAgent(t, i)
		ta.cfg.Join = "" // the host has its certificate now; the token was good once
	}
	t.Cleanup(func() {
		cancel()
		for _, a := range tc.agents {
			if a.done != nil {
				<-a.done
			}
		}
		tc.stopController()
		os.RemoveAll(filepath.Join(os.TempDir(), "godwit-test-shared-"+t.Name()))
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		hs, _ := tc.client.Hosts(ctx)
		if len(hs) == hosts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d hosts registered; want %d", len(hs), hosts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return tc
}

// startController starts the cluster's controller, serving on ln.
func (tc *testCluster) startController(t *testing.T, ln net.Listener) {
	t.Helper()
	ctx, cancel := context.WithCancel(tc.ctx)
	ctrl, err := controller.New(ctx, tc.ctrl.cfg)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = ctrl.Serve(ctx, ln); close(done) }()
	tc.ctrl.ctrl, tc.ctrl.cancel, tc.ctrl.done, tc.ctrl.addr = ctrl, cancel, done, ln.Addr().String()
}

// stopController stops the cluster's controller, as a restart does: what
// it runs stops with it; its store stays.
func (tc *testCluster) stopController() {
	if tc.ctrl.done == nil {
		return
	}
	tc.ctrl.cancel()
	<-tc.ctrl.done
	tc.ctrl.ctrl.Close()
	tc.ctrl.done = nil
}

// restartController stops the controller and starts another on the same
// data directory and address: the agents and the clients find it where
// they left it, and it resumes what the first left unfinished.
func (tc *testCluster) restartController(t *testing.T) {
	t.Helper()
	tc.stopController()
	var ln net.Listener
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if ln, err = net.Listen("tcp", tc.ctrl.addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listen again on %s: %v", tc.ctrl.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tc.startController(t, ln)
}

// startAgent starts (or restarts) agent n (host<n>) on its state.
func (tc *testCluster) startAgent(t *testing.T, n int) {
	t.Helper()
	ta := tc.agents[n-1]
	aln := listen(t)
	ta.cfg.Advertise = tc.scheme() + aln.Addr().String()
	if ta.front != nil {
		srv := httptest.NewServer(ta.front(ta.cfg.Advertise))
		t.Cleanup(srv.Close)
		ta.cfg.Advertise = srv.URL
	}
	ctx, cancel := context.WithCancel(tc.ctx)
	a, err := agent.New(ctx, ta.cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if addr := a.MetricsAddr(); addr != nil {
		ta.metrics = "http://" + addr.String() + "/metrics"
	}
	ta.cancel, ta.done = cancel, make(chan struct{})
	go func(done chan struct{}) { _ = a.Serve(ctx, aln); a.Close(); close(done) }(ta.done)
}

// userClient is a client of the API as a user: trusting the cluster's CA
// when it has one, without a certificate of its own.
func (tc *testCluster) userClient(t *testing.T) *api.Client {
	t.Helper()
	c := api.NewClient(tc.url)
	if tc.tlsDir != "" {
		b, err := os.ReadFile(filepath.Join(tc.tlsDir, pki.CACertFile))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(b)
		c.HTTP = api.NewHTTPClient(api.HTTPOptions{TLS: &tls.Config{RootCAs: pool}})
		c.Token = tc.adminToken
	}
	return c
}

// stopAgent stops agent n; its VMs keep "running" (fake processes).
func (tc *testCluster) stopAgent(n int) {
	ta := tc.agents[n-1]
	ta.cancel()
	<-ta.done
	ta.done = nil
}

// importFakeKernel imports an image whose kernel is a minimal bzImage
// header: enough for the controller's checks and the fake driver.
func (tc *testCluster) importFakeKernel(t *testing.T, name string) {
	t.Helper()
	kernel := make([]byte, 4096)
	copy(kernel[0x202:], "HdrS")
	path := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(path, kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.client.ImportImage(context.Background(), api.ImportImageMeta{Name: name}, map[string]string{api.RoleKernel: path}); err != nil {
		t.Fatal(err)
	}
}

func (tc *testCluster) raw(t *testing.T, method, path, contentType, body string) (int, api.Error) {
	t.Helper()
	req, _ := http.NewRequest(method, tc.url+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e api.Error
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(b, &e); err != nil {
			t.Errorf("%s %s: error body is not JSON: %q", method, path, b)
		}
	}
	return resp.StatusCode, e
}

// Every bad request gets a 4xx JSON error that says what to do, and
// changes nothing.
func TestBadInput(t *testing.T) {
	tc := newTestCluster(t, 2, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "keep", Image: "guest", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.client.VMAction(ctx, "keep", "stop", api.VMActionRequest{Force: true}); err != nil {
		t.Fatal(err)
	}
	before, _ := tc.client.VMs(ctx)

	vm := func(fields string) string {
		return `{"name":"ok-1","image":"guest","flavor":{"vcpus":1,"memory_mib":128}` + fields + `}`
	}
	long := strings.Repeat("a", 64)
	cases := []struct {
		name, method, path, body string
		status                   int
		code, msg                string
	}{
		{"unknown vm", "GET", "/v1/vms/nope", "", 404, api.CodeNotFound, "godwit vm list"},
		{"unknown vm delete", "DELETE", "/v1/vms/nope", "", 404, api.CodeNotFound, "not found"},
		{"unknown vm start", "POST", "/v1/vms/nope/start", "", 404, api.CodeNotFound, "not found"},
		{"unknown action", "POST", "/v1/vms/keep/explode", "", 404, api.CodeNotFound, "start, stop or reboot"},
		{"reboot a stopped vm", "POST", "/v1/vms/keep/reboot", "", 409, api.CodeConflict, "start it instead"},
		{"malformed json", "POST", "/v1/vms", `{"name":`, 400, api.CodeInvalid, "malformed JSON"},
		{"empty body", "POST", "/v1/vms", ``, 400, api.CodeInvalid, "empty"},
		{"trailing data", "POST", "/v1/vms", vm("") + `{}`, 400, api.CodeInvalid, "after the JSON object"},
		{"unknown field", "POST", "/v1/vms", vm(`,"colour":"red"`), 400, api.CodeInvalid, "colour"},
		{"wrong type", "POST", "/v1/vms", `{"name":"x","image":"guest","flavor":{"vcpus":"two"}}`, 400, api.CodeInvalid, "flavor.vcpus"},
		{"name missing", "POST", "/v1/vms", `{"image":"guest","flavor":{"vcpus":1,"memory_mib":128}}`, 400, api.CodeInvalid, "name is required"},
		{"name too long", "POST", "/v1/vms", `{"name":"` + long + `","image":"guest","flavor":{"vcpus":1,"memory_mib":128}}`, 400, api.CodeInvalid, "at most 63"},
		{"name bad characters", "POST", "/v1/vms", `{"name":"Web_1","image":"guest","flavor":{"vcpus":1,"memory_mib":128}}`, 400, api.CodeInvalid, "lowercase letters"},
		{"bad project", "POST", "/v1/vms", vm(`,"project":"A B"`), 400, api.CodeInvalid, "project name"},
		{"unknown image", "POST", "/v1/vms", `{"name":"x","image":"nope","flavor":{"vcpus":1,"memory_mib":128}}`, 400, api.CodeInvalid, "godwit image list"},
		{"no image", "POST", "/v1/vms", `{"name":"x","flavor":{"vcpus":1,"memory_mib":128}}`, 400, api.CodeInvalid, "image is required"},
		{"zero vcpus", "POST", "/v1/vms", `{"name":"x","image":"guest","flavor":{"vcpus":0,"memory_mib":128}}`, 400, api.CodeInvalid, "vcpus must be"},
		{"memory too small", "POST", "/v1/vms", `{"name":"x","image":"guest","flavor":{"vcpus":1,"memory_mib":1}}`, 400, api.CodeInvalid, "memory_mib must be"},
		{"memory in bytes", "POST", "/v1/vms", `{"name":"x","image":"guest","flavor":{"vcpus":1,"memory_mib":268435456}}`, 400, api.CodeInvalid, "memory_mib must be"},
		{"negative disk", "POST", "/v1/vms", `{"name":"x","image":"guest","flavor":{"vcpus":1,"memory_mib":128,"disk_mib":-1}}`, 400, api.CodeInvalid, "disk_mib must be"},
		{"unknown pool", "POST", "/v1/vms", vm(`,"pool":"nfs"`), 400, api.CodeInvalid, "use \"local\" or \"shared\""},
		{"unknown panic policy", "POST", "/v1/vms", vm(`,"on_panic":"reboot"`), 400, api.CodeInvalid, "use restart, pause, none"},
		{"unknown host", "POST", "/v1/vms", vm(`,"host":"host9"`), 400, api.CodeInvalid, "godwit host list"},
		{"no capacity", "POST", "/v1/vms", `{"name":"big","image":"guest","flavor":{"vcpus":1,"memory_mib":4096}}`, 409, api.CodeNoCapacity, "MiB memory free"},
		{"pinned host full", "POST", "/v1/vms", `{"name":"big","image":"guest","host":"host1","flavor":{"vcpus":1,"memory_mib":4096}}`, 409, api.CodeNoCapacity, "host1"},
		{"duplicate name", "POST", "/v1/vms", `{"name":"keep","image":"guest","flavor":{"vcpus":1,"memory_mib":128}}`, 409, api.CodeConflict, "already exists"},
		{"wrong method", "PUT", "/v1/vms", vm(""), 405, api.CodeMethod, "allowed"},
		{"wrong method on vm", "PUT", "/v1/vms/keep", "{}", 405, api.CodeMethod, "allowed"},
		{"display name too long", "PATCH", "/v1/vms/keep", `{"display_name":"` + strings.Repeat("x", 256) + `"}`, 400, api.CodeInvalid, "use at most 255"},
		{"access ipv4 not ipv4", "PATCH", "/v1/vms/keep", `{"access_ipv4":"2001:db8::1"}`, 400, api.CodeInvalid, "give it as access_ipv6"},
		{"unknown endpoint", "GET", "/v1/no-such-thing", "", 404, api.CodeNotFound, "no such endpoint"},
		{"not json", "POST", "/v1/vms", "name=x", 415, api.CodeMediaType, "application/json"},
		{"bad stop timeout", "POST", "/v1/vms/keep/stop", `{"timeout_seconds":-5}`, 400, api.CodeInvalid, "timeout_seconds"},
		{"bad console offset", "GET", "/v1/vms/keep/console?offset=-1", "", 400, api.CodeInvalid, "offset"},
		{"unknown host show", "GET", "/v1/hosts/nope", "", 404, api.CodeNotFound, "godwit host list"},
		{"unknown image show", "GET", "/v1/images/nope", "", 404, api.CodeNotFound, "godwit image list"},
		{"image in use", "DELETE", "/v1/images/guest", "", 409, api.CodeConflict, "keep"},
		{"image upload not multipart", "POST", "/v1/images", `{"name":"x"}`, 400, api.CodeInvalid, "multipart"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			ct := "application/json"
			if tt.name == "not json" {
				ct = "application/x-www-form-urlencoded"
			}
			status, e := tc.raw(t, tt.method, tt.path, ct, tt.body)
			if status != tt.status || e.Code != tt.code || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("%s %s = %d %s %q; want %d %s containing %q", tt.method, tt.path, status, e.Code, e.Message, tt.status, tt.code, tt.msg)
			}
		})
	}
	after, _ := tc.client.VMs(ctx)
	if len(after) != len(before) || after[0].State != before[0].State {
		t.Errorf("bad requests changed state: before %+v, after %+v", before, after)
	}
	if ims, _ := tc.client.Images(ctx); len(ims) != 1 {
		t.Errorf("images after bad requests: %+v", ims)
	}
}

// Image uploads that are not what they claim are refused before anything
// is stored.
func TestImageImportChecks(t *testing.T) {
	tc := newTestCluster(t, 1, 1024)
	ctx := context.Background()
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, bytes.Repeat([]byte("x"), 1024), 0o644)
	backing := filepath.Join(dir, "backing.qcow2")
	os.WriteFile(backing, qcow2.MinimalHeader("/etc/shadow", 0), 0o644)
	dataFile := filepath.Join(dir, "datafile.qcow2")
	os.WriteFile(dataFile, qcow2.MinimalHeader("", 1<<2), 0o644)
	for _, tt := range []struct {
		name  string
		meta  api.ImportImageMeta
		files map[string]string
		msg   string
	}{
		{"kernel not bzImage", api.ImportImageMeta{Name: "a"}, map[string]string{api.RoleKernel: junk}, "bzImage"},
		{"disk not qcow2", api.ImportImageMeta{Name: "a"}, map[string]string{api.RoleDisk: junk}, "qemu-img convert"},
		{"disk with a backing file", api.ImportImageMeta{Name: "a"}, map[string]string{api.RoleDisk: backing}, `backing file ("/etc/shadow"); flatten it`},
		{"disk with a data file", api.ImportImageMeta{Name: "a"}, map[string]string{api.RoleDisk: dataFile}, "external file"},
		{"initrd alone", api.ImportImageMeta{Name: "a"}, map[string]string{api.RoleInitrd: junk}, "needs a kernel"},
		{"nothing", api.ImportImageMeta{Name: "a"}, map[string]string{}, "needs a kernel"},
		{"bad name", api.ImportImageMeta{Name: "A/B"}, map[string]string{api.RoleInitrd: junk}, "invalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tc.client.ImportImage(ctx, tt.meta, tt.files)
			if !api.IsCode(err, api.CodeInvalid) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("import = %v; want invalid containing %q", err, tt.msg)
			}
		})
	}
	if ims, _ := tc.client.Images(ctx); len(ims) != 0 {
		t.Errorf("refused imports left images: %+v", ims)
	}
	if left, _ := os.ReadDir(filepath.Join(tc.dataDir, "images")); len(left) != 0 {
		t.Errorf("refused imports left files: %v", left)
	}
}
