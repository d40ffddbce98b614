package controller_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// openstack runs Debian's OpenStack clients against a test cluster,
// with a clouds.yaml of password logins (godwit tokens).
type openstack struct {
	t   *testing.T
	env []string
}

func newOpenStack(t *testing.T, tc *testCluster, clouds map[string][3]string) *openstack {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the openstack client")
	}
	for _, bin := range []string{"/usr/bin/openstack", "/usr/bin/nova"} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s is not installed (apt-get install python3-openstackclient python3-novaclient; make test installs them)", bin)
		}
	}
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("clouds:\n")
	for name, c := range clouds {
		fmt.Fprintf(&b, `  %s:
    auth:
      auth_url: %s/identity/v3
      username: %s
      password: %s
      project_name: %s
      user_domain_name: Default
      project_domain_name: Default
    cacert: %s
    region_name: RegionOne
    identity_api_version: 3
`, name, tc.url, c[0], c[1], c[2], filepath.Join(tc.tlsDir, "ca.crt"))
	}
	cfg := filepath.Join(dir, "clouds.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return &openstack{t: t, env: []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "OS_CLIENT_CONFIG_FILE=" + cfg, "PYTHONWARNINGS=ignore"}}
}

// run runs the openstack client as cloud and returns its output; a
// failure fails the test.
func (o *openstack) run(cloud string, args ...string) string {
	o.t.Helper()
	out, err := o.try(cloud, args...)
	if err != nil {
		o.t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (o *openstack) try(cloud string, args ...string) (string, error) {
	o.t.Helper()
	cmd := exec.Command("/usr/bin/openstack", append([]string{"--os-cloud", cloud}, args...)...)
	cmd.Env = o.env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	o.t.Logf("%.1fs openstack %s", time.Since(start).Seconds(), strings.Join(args, " "))
	return string(out), err
}

// json runs a command with -f json and decodes its output.
func (o *openstack) json(v any, cloud string, args ...string) {
	o.t.Helper()
	out := o.run(cloud, append(args, "-f", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		o.t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestNovaOpenStackClient drives godwit with Debian's openstack client
// (python3-openstackclient) through Keystone's password login: flavors,
// images, a server's life, live and cold migration, and a member kept
// to its project.
func TestNovaOpenStackClient(t *testing.T) {
	// Parallel: the clients are Python processes, mostly their start-up;
	// the suite runs them beside each other (see docs/testing.md).
	t.Parallel()
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 4, 8192, 8192, 8192)
	ctx := tc.ctx
	tc.importFakeKernel(t, "cirros")
	alice := tc.memberToken(t, "alice", "alpha")
	bob := tc.memberToken(t, "bob", "beta")
	os := newOpenStack(t, tc, map[string][3]string{
		"admin": {"bootstrap-admin", tc.adminToken, "default"},
		"alice": {"alice", alice.Secret, "alpha"},
		"bob":   {"bob", bob.Secret, "beta"},
		"wrong": {"alice", bob.Secret, "alpha"},
	})

	// A wrong password is refused with godwit's reason.
	if out, err := os.try("wrong", "server", "list"); err == nil || !strings.Contains(out, "token's name") {
		t.Errorf("alice with bob's token: %v\n%s", err, out)
	}

	// Flavors: an admin creates one; everyone lists it.
	var fl map[string]any
	os.json(&fl, "admin", "flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "m1.small")
	if fl["name"] != "m1.small" || fl["vcpus"] != float64(1) || fl["ram"] != float64(256) || fl["disk"] != float64(1) {
		t.Errorf("flavor create: %v", fl)
	}
	if out, err := os.try("alice", "flavor", "create", "--vcpus", "1", "--ram", "64", "m1.tiny"); err == nil || !strings.Contains(out, "admin") {
		t.Errorf("a member creating a flavor: %v\n%s", err, out)
	}
	var flavors []map[string]any
	os.json(&flavors, "alice", "flavor", "list")
	if len(flavors) != 1 || flavors[0]["Name"] != "m1.small" || flavors[0]["RAM"] != float64(256) {
		t.Errorf("flavor list: %v", flavors)
	}
	var images []map[string]any
	os.json(&images, "alice", "image", "list")
	if len(images) != 1 || images[0]["Name"] != "cirros" || images[0]["Status"] != "active" {
		t.Errorf("image list: %v", images)
	}

	// A server's life, as alice.
	var srv map[string]any
	os.json(&srv, "alice", "server", "create", "--image", "cirros", "--flavor", "m1.small", "--wait", "web1")
	id, _ := srv["id"].(string)
	if srv["status"] != "ACTIVE" || srv["name"] != "web1" || id == "" || !strings.Contains(fmt.Sprint(srv["flavor"]), "m1.small") {
		t.Fatalf("server create: %v", srv)
	}
	vm, err := tc.client.VM(ctx, "web1")
	if err != nil || vm.ID != id || vm.Project != "alpha" || vm.Flavor.MemoryMiB != 256 || vm.FlavorName != "m1.small" {
		t.Fatalf("godwit's VM of the server: %+v, %v", vm, err)
	}
	var list []map[string]any
	os.json(&list, "alice", "server", "list")
	if len(list) != 1 || list[0]["Name"] != "web1" || list[0]["Status"] != "ACTIVE" || list[0]["ID"] != id {
		t.Errorf("server list: %v", list)
	}
	os.json(&list, "bob", "server", "list")
	if len(list) != 0 {
		t.Errorf("bob sees alpha's servers: %v", list)
	}
	if out, err := os.try("bob", "server", "show", id); err == nil || !strings.Contains(out, "No server with a name or ID") {
		t.Errorf("bob showing alice's server: %v\n%s", err, out)
	}
	os.run("alice", "server", "stop", "web1")
	waitVMState(t, tc, "web1", api.VMStopped)
	os.json(&srv, "alice", "server", "show", "web1")
	if srv["status"] != "SHUTOFF" {
		t.Errorf("after stop: status %v", srv["status"])
	}
	os.run("alice", "server", "start", "web1")
	waitVMState(t, tc, "web1", api.VMRunning)

	// Moves, as the admin: live to a named host, then cold.
	if out, err := os.try("alice", "server", "migrate", "--live-migration", "web1"); err == nil || !strings.Contains(out, "admin") {
		t.Errorf("a member live-migrating: %v\n%s", err, out)
	}
	from := vm.Host
	to := "host2"
	if from == to {
		to = "host3"
	}
	// No --wait: the client polls every 5 s; the status is read here
	// (TestNovaLiveMigrationQEMU uses --wait).
	os.run("admin", "--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", "--host", to, id)
	waitNovaStatus(t, tc, id, "ACTIVE", to)
	os.json(&srv, "admin", "server", "show", id)
	if srv["OS-EXT-SRV-ATTR:host"] != to || srv["status"] != "ACTIVE" {
		t.Errorf("after a live migration to %s: host %v status %v", to, srv["OS-EXT-SRV-ATTR:host"], srv["status"])
	}
	migs, err := tc.client.Migrations(ctx, "web1")
	if err != nil || len(migs) != 1 || migs[0].Kind != api.KindLive || migs[0].Destination != to {
		t.Errorf("godwit's migrations after os-migrateLive: %+v, %v", migs, err)
	}
	// Cold: held in VERIFY_RESIZE on the new host as in Nova, reverted
	// (back to where it was), migrated again and confirmed.
	os.run("admin", "server", "migrate", id)
	waitNovaStatus(t, tc, id, "VERIFY_RESIZE", "!"+to)
	os.run("admin", "server", "migration", "revert", id)
	waitNovaStatus(t, tc, id, "ACTIVE", to)
	os.run("admin", "server", "migrate", id)
	waitNovaStatus(t, tc, id, "VERIFY_RESIZE", "!"+to)
	os.run("alice", "server", "migration", "confirm", "web1")
	os.json(&srv, "admin", "server", "show", id)
	if srv["OS-EXT-SRV-ATTR:host"] == to || srv["status"] != "ACTIVE" {
		t.Errorf("after a cold migration confirmed: host %v status %v", srv["OS-EXT-SRV-ATTR:host"], srv["status"])
	}

	// Resize: held in VERIFY_RESIZE, then confirmed; another server's
	// reverted to its old size.
	os.run("admin", "flavor", "create", "--vcpus", "2", "--ram", "512", "--disk", "1", "m1.medium")
	os.run("alice", "server", "resize", "--flavor", "m1.medium", "web1")
	waitNovaStatus(t, tc, id, "VERIFY_RESIZE", "")
	os.json(&srv, "alice", "server", "show", "web1")
	if srv["status"] != "VERIFY_RESIZE" {
		t.Errorf("after resize: status %v", srv["status"])
	}
	os.run("alice", "server", "resize", "confirm", "web1")
	os.json(&srv, "alice", "server", "show", "web1")
	if vm, _ := tc.client.VM(ctx, "web1"); srv["status"] != "ACTIVE" || vm.Flavor.VCPUs != 2 || vm.Flavor.MemoryMiB != 512 || vm.FlavorName != "m1.medium" {
		t.Errorf("after resize confirm: status %v, godwit's VM %+v (flavor %s)", srv["status"], vm.Flavor, vm.FlavorName)
	}
	// Rebuild: a new disk from the image, same server.
	os.run("alice", "server", "rebuild", "--image", "cirros", "web1")
	waitNovaStatus(t, tc, id, "ACTIVE", "")
	if ins, err := tc.client.Intents(ctx); err != nil || !slices.ContainsFunc(ins, func(in api.Intent) bool { return in.Kind == api.IntentRebuild && in.Target == "web1" }) {
		t.Errorf("godwit's intents after server rebuild: %+v, %v", ins, err)
	}
	var srv2 map[string]any
	os.json(&srv2, "alice", "server", "create", "--image", "cirros", "--flavor", "m1.small", "--wait", "web2")
	os.run("alice", "server", "resize", "--flavor", "m1.medium", "web2")
	waitNovaStatus(t, tc, srv2["id"].(string), "VERIFY_RESIZE", "")
	os.run("alice", "server", "resize", "revert", "web2")
	deadline := time.Now().Add(30 * time.Second)
	for {
		os.json(&srv, "alice", "server", "show", "web2")
		vm, _ := tc.client.VM(ctx, "web2")
		if srv["status"] == "ACTIVE" && vm.Flavor.MemoryMiB == 256 && vm.FlavorName == "m1.small" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after resize revert: status %v, godwit's VM %+v (flavor %s)", srv["status"], vm.Flavor, vm.FlavorName)
		}
		time.Sleep(200 * time.Millisecond)
	}
	os.run("alice", "server", "delete", "web2")

	os.run("alice", "server", "delete", "--wait", "web1")
	if _, err := tc.client.VM(ctx, "web1"); !api.IsCode(err, api.CodeNotFound) {
		t.Errorf("after server delete: %v", err)
	}
}

func waitVMState(t *testing.T, tc *testCluster, name, state string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		vm, err := tc.client.VM(tc.ctx, name)
		if err == nil && vm.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("vm %s: state %s, %v; want %s", name, vm.State, err, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Errors come in each API's format with godwit's explanations, and the
// microversion is negotiated as Nova does.
func TestNovaErrorsAndVersions(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 2, 4096)
	ctx := tc.ctx
	tc.importFakeKernel(t, "cirros")
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "web", Image: "cirros", Pool: api.PoolShared, Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}}); err != nil {
		t.Fatal(err)
	}
	vm, _ := tc.client.VM(ctx, "web")
	call := func(method, path, body string, hdr map[string]string) (int, http.Header, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, tc.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("X-Auth-Token", tc.adminToken)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := tc.client.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, resp.Header, out
	}
	fault := func(out map[string]any, name string) string {
		f, _ := out[name].(map[string]any)
		msg, _ := f["message"].(string)
		return msg
	}
	srv := "/compute/v2.1/servers/" + vm.ID

	code, hdr, out := call("GET", srv, "", map[string]string{"OpenStack-API-Version": "compute 2.47"})
	s, _ := out["server"].(map[string]any)
	if code != 200 || hdr.Get("OpenStack-API-Version") != "compute 2.47" || s["status"] != "ACTIVE" || s["OS-EXT-SRV-ATTR:host"] != vm.Host {
		t.Errorf("show at 2.47: %d %v %v", code, hdr.Get("OpenStack-API-Version"), out)
	}
	if f, _ := s["flavor"].(map[string]any); f["ram"] != float64(64) || f["vcpus"] != float64(1) {
		t.Errorf("2.47 embeds the flavor's sizes: %v", s["flavor"])
	}
	_, _, out = call("GET", srv, "", nil)
	if f, _ := out["server"].(map[string]any)["flavor"].(map[string]any); f["id"] == nil || f["ram"] != nil {
		t.Errorf("2.1 refers to the flavor by id: %v", f)
	}
	if code, _, out := call("GET", srv, "", map[string]string{"OpenStack-API-Version": "compute 2.99"}); code != 406 || !strings.Contains(fault(out, "notAcceptable"), "maximum is 2.60") {
		t.Errorf("an unsupported microversion: %d %v", code, out)
	}
	if code, _, out := call("GET", "/compute/v2.1/servers/00000000-0000-4000-8000-000000000000", "", nil); code != 404 || !strings.Contains(fault(out, "itemNotFound"), "could not be found") {
		t.Errorf("a missing server: %d %v", code, out)
	}
	if code, _, out := call("POST", srv+"/action", `{"shelve":null}`, nil); code != 400 || !strings.Contains(fault(out, "badRequest"), "docs/nova-compat.md") {
		t.Errorf("an action not served: %d %v", code, out)
	}
	if code, _, out := call("POST", srv+"/action", `{"os-resetState":{"state":"active"}}`, nil); code != 400 || !strings.Contains(fault(out, "badRequest"), "godwit vm start") {
		t.Errorf("os-resetState: %d %v", code, out)
	}
	if code, _, out := call("POST", srv+"/action", `{"os-start":null}`, nil); code != 409 || !strings.Contains(fault(out, "conflictingRequest"), "Cannot 'start' instance") {
		t.Errorf("starting a running server: %d %v", code, out)
	}
	if code, _, out := call("POST", srv+"/action", `{"migrate":{"host":"host1"}}`, nil); code != 400 || !strings.Contains(fault(out, "badRequest"), "2.56") {
		t.Errorf("migrate with a host before 2.56: %d %v", code, out)
	}
	// Keystone's format, and its challenge.
	req, _ := http.NewRequestWithContext(ctx, "GET", tc.url+"/compute/v2.1/servers", nil)
	req.Header.Set("X-Auth-Token", "gwt_0123456789ab_"+strings.Repeat("C", 43))
	resp, err := tc.client.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("a bad token on compute: %d", resp.StatusCode)
	}
	if code, _, out := call("POST", "/identity/v3/auth/tokens", `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"nobody","password":"`+tc.adminToken+`"}}}}}`, nil); code != 401 || !strings.Contains(fmt.Sprint(out["error"]), "token's name") {
		t.Errorf("a password of another user: %d %v", code, out)
	}
}

// TestNovaOpenStackAdmin: what admins do with the openstack and nova
// clients — hypervisors, compute services (disable with a reason, force
// down), a live migration listed, shown, aborted and force-completed,
// and nova evacuate of a server whose host was proven down.
func TestNovaOpenStackAdmin(t *testing.T) {
	// Parallel: the clients are Python processes, mostly their start-up;
	// the suite runs them beside each other (see docs/testing.md).
	t.Parallel()
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 4, 16384, 16384, 16384)
	ctx := tc.ctx
	tc.importFakeKernel(t, "cirros")
	os := newOpenStack(t, tc, map[string][3]string{"admin": {"bootstrap-admin", tc.adminToken, "default"}})

	var hvs []map[string]any
	os.json(&hvs, "admin", "hypervisor", "list")
	if len(hvs) != 3 || hvs[0]["Hypervisor Hostname"] != "host1" || hvs[0]["State"] != "up" {
		t.Errorf("hypervisor list: %v", hvs)
	}
	// A big server: at the fake link's 1 GB/s its first pass lasts ~8 s.
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "big", Image: "cirros", Pool: api.PoolShared, Host: "host1", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 8192}}); err != nil {
		t.Fatal(err)
	}
	var hv map[string]any
	os.json(&hv, "admin", "hypervisor", "show", "host1")
	if hv["hypervisor_hostname"] != "host1" || hv["vcpus"] != float64(4) || hv["memory_mb_used"] != float64(8192) || hv["running_vms"] != float64(1) {
		t.Errorf("hypervisor show host1: %v", hv)
	}

	os.run("admin", "compute", "service", "set", "--disable", "--disable-reason", "disk swap", "host3", "nova-compute")
	var svcs []map[string]any
	os.json(&svcs, "admin", "compute", "service", "list")
	var h3 map[string]any
	for _, s := range svcs {
		if s["Host"] == "host3" {
			h3 = s
		}
	}
	if len(svcs) != 3 || h3["Status"] != "disabled" || h3["Binary"] != "nova-compute" {
		t.Errorf("compute service list: %v", svcs)
	}
	if h, err := tc.client.Host(ctx, "host3"); err != nil || h.Enabled || h.DisabledReason != "disk swap" {
		t.Errorf("godwit's host3 after the disable: enabled %v reason %q, %v", h.Enabled, h.DisabledReason, err)
	}

	// A live migration, listed and shown while it runs, then aborted;
	// another force-completed.
	vm, _ := tc.client.VM(ctx, "big")
	v := []string{"--os-compute-api-version", "2.59"}
	start := func() api.Migration {
		t.Helper()
		os.run("admin", append(v, "server", "migrate", "--live-migration", "--host", "host2", vm.ID)...)
		var m api.Migration
		deadline := time.Now().Add(10 * time.Second)
		for {
			ms, _ := tc.client.Migrations(ctx, "big")
			for _, x := range ms {
				if !x.State.Final() {
					m = x
				}
			}
			if m.State == api.MigTransferring || time.Now().After(deadline) {
				return m
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The aborted one is slowed (8 GiB at 200 MB/s: about 40 s) so that
	// it still runs after three client calls, which take seconds each on
	// a loaded machine; the force-completed one runs at the default.
	bandwidth := func(mbps int) {
		t.Helper()
		if _, err := tc.client.UpdateClusterSettings(ctx, api.ClusterSettingsUpdate{BandwidthMBPerS: &mbps}); err != nil {
			t.Fatal(err)
		}
	}
	bandwidth(200)
	m := start()
	var ml []map[string]any
	os.json(&ml, "admin", append(v, "server", "migration", "list", "--server", vm.ID)...)
	if len(ml) != 1 || ml[0]["UUID"] != m.ID || ml[0]["Status"] != "running" || ml[0]["Type"] != "live-migration" || ml[0]["Dest Compute"] != "host2" {
		t.Errorf("server migration list: %v (godwit's %s %s)", ml, m.ID, m.State)
	}
	var ms map[string]any
	os.json(&ms, "admin", append(v, "server", "migration", "show", vm.ID, m.ID)...)
	if ms["UUID"] != m.ID || ms["Status"] != "running" {
		t.Errorf("server migration show: %v", ms)
	}
	os.run("admin", append(v, "server", "migration", "abort", vm.ID, m.ID)...)
	if got := waitMigration(t, tc.client, m.ID); got.State != api.MigCancelled {
		t.Errorf("after server migration abort: %s", got.State)
	}
	bandwidth(0)
	m = start()
	os.run("admin", append(v, "server", "migration", "force", "complete", vm.ID, m.ID)...)
	if got := waitMigration(t, tc.client, m.ID); got.State != api.MigCompleted || len(got.Decisions) == 0 {
		t.Errorf("after server migration force complete: %s, decisions %v", got.State, got.Decisions)
	}

	// Evacuate: host2 (where big now runs) dies; Nova's evacuate is
	// refused until the host is proven down, then rebuilds it elsewhere.
	nova := func(args ...string) (string, error) {
		cmd := exec.Command("/usr/bin/nova", append([]string{"--os-compute-api-version", "2.60"}, args...)...)
		cmd.Env = append(os.env, "OS_AUTH_URL="+tc.url+"/identity/v3", "OS_USERNAME=bootstrap-admin", "OS_PASSWORD="+tc.adminToken,
			"OS_PROJECT_NAME=default", "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default", "OS_CACERT="+filepath.Join(tc.tlsDir, "ca.crt"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := nova("list", "--all-tenants"); err != nil || !strings.Contains(out, "big") {
		t.Fatalf("nova list: %v\n%s", err, out)
	}
	tc.stopAgent(2)
	waitHostState(t, tc, "host2", api.HostDown)
	if out, err := nova("evacuate", vm.ID); err == nil || !strings.Contains(out, "nothing proves it is dead") {
		t.Errorf("nova evacuate before the host is proven down: %v\n%s", err, out)
	}
	os.run("admin", append(v, "compute", "service", "set", "--down", "host2", "nova-compute")...)
	if out, err := nova("evacuate", vm.ID); err != nil {
		t.Fatalf("nova evacuate: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := tc.client.VM(ctx, "big")
		if err == nil && got.Host != "host2" && got.State == api.VMRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after nova evacuate: %+v, %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitHostState(t *testing.T, tc *testCluster, name, state string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := tc.client.Host(tc.ctx, name)
		if err == nil && h.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %s: %s, %v; want %s", name, h.State, err, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNovaSchemas checks the replies against Nova's published response
// schemas with Tempest's own service clients (scripts/nova-schemas.py),
// at every microversion where a schema changes up to nova.MaxVersion.
func TestNovaSchemas(t *testing.T) {
	// Parallel: the clients are Python processes, mostly their start-up;
	// the suite runs them beside each other (see docs/testing.md).
	t.Parallel()
	if testing.Short() {
		t.Skip("runs Tempest's clients")
	}
	if _, err := os.Stat("/usr/lib/python3/dist-packages/tempest/lib"); err != nil {
		t.Skip("Tempest is not installed (apt-get install tempest; make test installs it)")
	}
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 4, 8192, 8192, 8192)
	ctx := tc.ctx
	tc.importFakeKernel(t, "cirros")
	if _, err := tc.client.CreateFlavor(ctx, api.CreateFlavorRequest{Name: "m1.small", VCPUs: 1, MemoryMiB: 256, DiskMiB: 1024, Description: "one vCPU"}); err != nil {
		t.Fatal(err)
	}
	for _, req := range []api.CreateVMRequest{
		{Name: "web", Image: "cirros", Pool: api.PoolShared, FlavorName: "m1.small"},
		{Name: "db", Image: "cirros", Pool: api.PoolShared, Flavor: api.Flavor{VCPUs: 2, MemoryMiB: 128}},
	} {
		if _, err := tc.client.CreateVM(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tc.client.VMAction(ctx, "db", "stop", api.VMActionRequest{}); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []api.MigrationKind{api.KindLive, api.KindCold} {
		m, err := tc.client.Migrate(ctx, "web", api.MigrateRequest{Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		waitMigration(t, tc.client, m.ID)
	}
	cmd := exec.Command("/usr/bin/python3", "../../scripts/nova-schemas.py", tc.url+"/identity/v3", "bootstrap-admin", tc.adminToken, "default", filepath.Join(tc.tlsDir, "ca.crt"))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "PYTHONWARNINGS=ignore"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("Nova's schemas (Tempest's clients): %v\n%s", err, out)
	}
	t.Logf("%d checks against Tempest's schemas passed", strings.Count(string(out), "\nok ")+1)
}

// waitNovaStatus waits until a server's Nova status is status and, when
// host is not "", its host is host (or, "!h", not h).
func waitNovaStatus(t *testing.T, tc *testCluster, id, status, host string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(tc.ctx, "GET", tc.url+"/compute/v2.1/servers/"+id, nil)
		req.Header.Set("X-Auth-Token", tc.adminToken)
		var body struct {
			Server map[string]any `json:"server"`
		}
		if resp, err := tc.client.HTTP.Do(req); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
		}
		h, _ := body.Server["OS-EXT-SRV-ATTR:host"].(string)
		okHost := host == "" || h == host || (strings.HasPrefix(host, "!") && h != host[1:] && h != "")
		if body.Server["status"] == status && okHost {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server %s: status %v on %v; want %s on %s", id, body.Server["status"], h, status, host)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
