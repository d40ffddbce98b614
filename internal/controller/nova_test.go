package controller_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	out, err := cmd.CombinedOutput()
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
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 4, 8192, 8192, 8192)
	ctx := tc.ctx
	tc.importFakeKernel(t, "cirros")
	alice, err := tc.client.CreateToken(ctx, api.CreateTokenRequest{Name: "alice", Project: "alpha", Role: api.RoleMember})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := tc.client.CreateToken(ctx, api.CreateTokenRequest{Name: "bob", Project: "beta", Role: api.RoleMember})
	if err != nil {
		t.Fatal(err)
	}
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
	os.run("admin", "--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", "--host", to, "--wait", id)
	os.json(&srv, "admin", "server", "show", id)
	if srv["OS-EXT-SRV-ATTR:host"] != to || srv["status"] != "ACTIVE" {
		t.Errorf("after a live migration to %s: host %v status %v", to, srv["OS-EXT-SRV-ATTR:host"], srv["status"])
	}
	migs, err := tc.client.Migrations(ctx, "web1")
	if err != nil || len(migs) != 1 || migs[0].Kind != api.KindLive || migs[0].Destination != to {
		t.Errorf("godwit's migrations after os-migrateLive: %+v, %v", migs, err)
	}
	os.run("admin", "server", "migrate", "--wait", id)
	os.json(&srv, "admin", "server", "show", id)
	if srv["OS-EXT-SRV-ATTR:host"] == to || srv["status"] != "ACTIVE" {
		t.Errorf("after a cold migration: host %v status %v", srv["OS-EXT-SRV-ATTR:host"], srv["status"])
	}

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
