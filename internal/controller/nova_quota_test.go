package controller_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// TestNovaQuotaSets drives godwit's project quotas with Debian's
// openstack client through Nova's os-quota-sets: shown to an admin and
// to the project's member (another project's refused), set with
// openstack quota set and read back as godwit's quota (its disk limit,
// which Nova does not show, kept), then enforced as Nova does — a create
// over the instances quota and a resize over the cores quota refused
// with Nova's 403 "Quota exceeded" — and a key godwit has no quota for
// refused with a 400 saying so.
func TestNovaQuotaSets(t *testing.T) {
	// Parallel: the clients are Python processes, mostly their start-up;
	// the suite runs them beside each other (see docs/testing.md).
	t.Parallel()
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 8, 8192, 8192)
	ctx := tc.ctx
	tc.importFakeKernel(t, "cirros")
	alice := tc.memberToken(t, "alice", "alpha")
	bob := tc.memberToken(t, "bob", "beta")
	os := newOpenStack(t, tc, map[string][3]string{
		"admin": {"bootstrap-admin", tc.adminToken, "default"},
		"alice": {"alice", alice.Secret, "alpha"},
	})
	_ = bob // beta exists: alice asks for its quota below
	for _, f := range []api.CreateFlavorRequest{
		{Name: "m1.small", VCPUs: 1, MemoryMiB: 256, DiskMiB: 1024},
		{Name: "m1.large", VCPUs: 3, MemoryMiB: 256, DiskMiB: 1024},
	} {
		if _, err := tc.client.CreateFlavor(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	// A disk quota, godwit's own: Nova's calls keep it.
	if _, err := tc.client.SetQuota(ctx, "alpha", api.Quota{DiskMiB: 100000}); err != nil {
		t.Fatal(err)
	}

	// Shown: no limits yet (-1), the keys godwit has no quota for at
	// Nova's defaults.
	var qs map[string]any
	os.json(&qs, "admin", "quota", "show", "alpha")
	if qs["cores"] != float64(-1) || qs["ram"] != float64(-1) || qs["instances"] != float64(-1) || qs["key-pairs"] != float64(100) || qs["project"] != "alpha" {
		t.Errorf("quota show alpha as admin: %v", qs)
	}
	os.json(&qs, "alice", "quota", "show", "alpha")
	if qs["cores"] != float64(-1) || qs["project"] != "alpha" {
		t.Errorf("quota show alpha as its member: %v", qs)
	}
	// (The client asks Keystone for beta first, which refuses alice:
	// TestNovaQuotaSetsHTTP asks os-quota-sets itself.)
	if out, err := os.try("alice", "quota", "show", "beta"); err == nil || !strings.Contains(out, "HTTP 403") {
		t.Errorf("alice shows beta's quota: %s", out)
	}
	if out, err := os.try("alice", "quota", "set", "--cores", "10", "alpha"); err == nil || !strings.Contains(out, "admin") {
		t.Errorf("a member sets its quota: %v\n%s", err, out)
	}

	// Set, and read back as godwit's quota.
	os.run("admin", "quota", "set", "--cores", "3", "--ram", "1024", "--instances", "2", "alpha")
	p, err := tc.client.Project(ctx, "alpha")
	if err != nil || p.Quota != (api.Quota{VMs: 2, VCPUs: 3, MemoryMiB: 1024, DiskMiB: 100000}) {
		t.Fatalf("godwit's quota after openstack quota set: %+v, %v", p.Quota, err)
	}
	os.json(&qs, "alice", "quota", "show")
	if qs["cores"] != float64(3) || qs["ram"] != float64(1024) || qs["instances"] != float64(2) {
		t.Errorf("quota show after set: %v", qs)
	}
	var defaults map[string]any
	os.json(&defaults, "alice", "quota", "show", "--default", "alpha")
	if defaults["cores"] != float64(-1) || defaults["instances"] != float64(-1) {
		t.Errorf("quota show --default: %v", defaults)
	}

	// Enforced: two servers fit, a third is over the instances quota;
	// a resize to 3 vCPUs is over the cores quota.
	os.run("alice", "server", "create", "--image", "cirros", "--flavor", "m1.small", "--wait", "web1")
	os.run("alice", "server", "create", "--image", "cirros", "--flavor", "m1.small", "--wait", "web2")
	out, err := os.try("alice", "server", "create", "--image", "cirros", "--flavor", "m1.small", "web3")
	if err == nil || !strings.Contains(out, "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances") || !strings.Contains(out, "HTTP 403") {
		t.Errorf("a create over the instances quota: %v\n%s", err, out)
	}
	out, err = os.try("alice", "server", "resize", "--flavor", "m1.large", "web1")
	if err == nil || !strings.Contains(out, "Quota exceeded for cores: Requested 2, but already used 2 of 3 cores") || !strings.Contains(out, "HTTP 403") {
		t.Errorf("a resize over the cores quota: %v\n%s", err, out)
	}
	if vm, err := tc.client.VM(ctx, "web1"); err != nil || vm.Flavor.VCPUs != 1 {
		t.Errorf("web1 after the refused resize: %+v, %v", vm.Flavor, err)
	}
	var detail []map[string]any
	os.json(&detail, "alice", "quota", "list", "--detail", "--compute", "--project", "alpha")
	i := slices.IndexFunc(detail, func(d map[string]any) bool { return d["Resource"] == "cores" })
	if i < 0 || detail[i]["In Use"] != float64(2) || detail[i]["Limit"] != float64(3) || detail[i]["Reserved"] != float64(0) {
		t.Errorf("quota list --detail: %v", detail)
	}

	// A key godwit has no quota for.
	out, err = os.try("admin", "quota", "set", "--key-pairs", "5", "alpha")
	if err == nil || !strings.Contains(out, "godwit has no key_pairs quota") || !strings.Contains(out, "instances, cores and ram") || !strings.Contains(out, "HTTP 400") {
		t.Errorf("quota set --key-pairs: %v\n%s", err, out)
	}
	// -1 lifts a limit.
	os.run("admin", "quota", "set", "--instances", "-1", "alpha")
	if p, err := tc.client.Project(ctx, "alpha"); err != nil || p.Quota != (api.Quota{VCPUs: 3, MemoryMiB: 1024, DiskMiB: 100000}) {
		t.Errorf("godwit's quota after --instances -1: %+v, %v", p.Quota, err)
	}
}

// Nova's os-quota-sets over HTTP: the detail's in_use from the
// project's VMs, the keys each microversion shows, a member kept to its
// own project, and what an update refuses (a user_id, a key not shown
// at the microversion, 0, a limit under the use without force) and
// what reset keeps (the disk quota).
func TestNovaQuotaSetsHTTP(t *testing.T) {
	t.Parallel()
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 8, 8192)
	ctx := tc.ctx
	tc.importFakeKernel(t, "cirros")
	alice := tc.memberToken(t, "alice", "alpha")
	bob := tc.memberToken(t, "bob", "beta")
	if _, err := tc.client.SetQuota(ctx, "alpha", api.Quota{VMs: 3, VCPUs: 4, MemoryMiB: 2048, DiskMiB: 50000}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "web", Project: "alpha", Image: "cirros", Pool: api.PoolShared, Flavor: api.Flavor{VCPUs: 2, MemoryMiB: 512}}); err != nil {
		t.Fatal(err)
	}
	call := func(token, method, path, version, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, tc.url+"/compute/v2.1/os-quota-sets/"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("X-Auth-Token", token)
		if version != "" {
			req.Header.Set("OpenStack-API-Version", "compute "+version)
		}
		resp, err := tc.client.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	message := func(out map[string]any) string {
		for _, f := range out {
			if m, ok := f.(map[string]any); ok {
				s, _ := m["message"].(string)
				return s
			}
		}
		return ""
	}
	keys := func(out map[string]any) []string {
		qs, _ := out["quota_set"].(map[string]any)
		var ks []string
		for k := range qs {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}

	// The detail, as the project's member: in_use from its VMs.
	code, out := call(alice.Secret, "GET", "alpha/detail", "", "")
	qs, _ := out["quota_set"].(map[string]any)
	for k, want := range map[string][3]float64{"instances": {1, 3, 0}, "cores": {2, 4, 0}, "ram": {512, 2048, 0}, "key_pairs": {0, 100, 0}, "floating_ips": {0, -1, 0}} {
		d, _ := qs[k].(map[string]any)
		if code != 200 || d["in_use"] != want[0] || d["limit"] != want[1] || d["reserved"] != want[2] {
			t.Errorf("detail %s: %d %v; want in_use %v, limit %v, reserved %v", k, code, qs[k], want[0], want[1], want[2])
		}
	}
	if qs["id"] != "alpha" {
		t.Errorf("detail's id: %v", qs["id"])
	}

	// The keys by microversion: 2.36 drops the network proxies', 2.57
	// the personality files'.
	base := []string{"cores", "id", "instances", "key_pairs", "metadata_items", "ram", "server_group_members", "server_groups"}
	injected := []string{"injected_file_content_bytes", "injected_file_path_bytes", "injected_files"}
	network := []string{"fixed_ips", "floating_ips", "security_group_rules", "security_groups"}
	for version, want := range map[string][]string{
		"2.1":  append(append(slices.Clone(base), injected...), network...),
		"2.36": append(slices.Clone(base), injected...),
		"2.57": base,
	} {
		slices.Sort(want)
		for _, path := range []string{"alpha", "alpha/detail", "alpha/defaults"} {
			if code, out := call(tc.adminToken, "GET", path, version, ""); code != 200 || !slices.Equal(keys(out), want) {
				t.Errorf("GET %s at %s: %d %v; want %v", path, version, code, keys(out), want)
			}
		}
	}
	if code, out := call(tc.adminToken, "PUT", "alpha", "2.57", `{"quota_set":{"injected_files":5}}`); code != 400 || !strings.Contains(message(out), "not a quota at microversion 2.57") {
		t.Errorf("injected_files at 2.57: %d %v", code, out)
	}

	// A member: its own project only; the defaults are everyone's.
	if code, out := call(bob.Secret, "GET", "alpha", "", ""); code != 403 || !strings.Contains(message(out), "os-quota-sets:show") {
		t.Errorf("bob reads alpha's quota: %d %v", code, out)
	}
	if code, out := call(bob.Secret, "GET", "alpha/detail", "", ""); code != 403 || strings.Contains(message(out), "512") {
		t.Errorf("bob reads alpha's detail: %d %v", code, out)
	}
	if code, _ := call(bob.Secret, "GET", "alpha/defaults", "", ""); code != 200 {
		t.Errorf("bob reads the defaults: %d", code)
	}
	if code, _ := call(alice.Secret, "PUT", "alpha", "", `{"quota_set":{"cores":8}}`); code != 403 {
		t.Errorf("alice sets her quota: %d", code)
	}

	// user_id: a read shows the project's quota, which binds every
	// user; a write is refused.
	if code, out := call(alice.Secret, "GET", "alpha?user_id="+alice.ID, "", ""); code != 200 || out["quota_set"].(map[string]any)["cores"] != float64(4) {
		t.Errorf("GET with user_id: %d %v", code, out)
	}
	if code, out := call(tc.adminToken, "PUT", "alpha?user_id="+alice.ID, "", `{"quota_set":{"cores":8}}`); code != 400 || !strings.Contains(message(out), "per project") {
		t.Errorf("PUT with user_id: %d %v", code, out)
	}
	if code, out := call(tc.adminToken, "DELETE", "alpha?user_id="+alice.ID, "", ""); code != 400 || !strings.Contains(message(out), "per project") {
		t.Errorf("DELETE with user_id: %d %v", code, out)
	}

	// What an update refuses, and force.
	for body, want := range map[string]string{
		`{"quota_set":{"cores":0}}`:                   "a godwit quota of 0 is no limit",
		`{"quota_set":{"cores":-2}}`:                  "must be -1 or greater",
		`{"quota_set":{"cores":1}}`:                   "already used and reserved 2",
		`{"quota_set":{"cores":"many"}}`:              "not an integer",
		`{"quota_set":{"networks":3}}`:                "not a quota at microversion 2.1",
		`{"quota_set":{"metadata_items":64}}`:         "godwit has no metadata_items quota",
		`{"quota_set":{"cores":8,"key_pairs":5}}`:     "godwit has no key_pairs quota",
		`{"quota_set":{"cores":8,"force":"perhaps"}}`: "not a boolean",
	} {
		if code, out := call(tc.adminToken, "PUT", "alpha", "", body); code != 400 || !strings.Contains(message(out), want) {
			t.Errorf("PUT %s: %d %v; want 400 saying %q", body, code, out, want)
		}
	}
	if p, _ := tc.client.Project(ctx, "alpha"); p.Quota.VCPUs != 4 {
		t.Errorf("a refused update changed the quota: %+v", p.Quota)
	}
	code, out = call(tc.adminToken, "PUT", "alpha", "", `{"quota_set":{"cores":1,"force":true,"ram":"4096","key_pairs":100,"instances":null}}`)
	if qs, _ := out["quota_set"].(map[string]any); code != 200 || qs["cores"] != float64(1) || qs["ram"] != float64(4096) || qs["instances"] != float64(3) || qs["id"] != nil {
		t.Errorf("PUT with force: %d %v", code, out)
	}
	if p, _ := tc.client.Project(ctx, "alpha"); p.Quota != (api.Quota{VMs: 3, VCPUs: 1, MemoryMiB: 4096, DiskMiB: 50000}) {
		t.Errorf("godwit's quota after PUT: %+v", p.Quota)
	}

	// Reset: the defaults (no limits); the disk quota, which Nova does
	// not show, is kept.
	if code, _ := call(tc.adminToken, "DELETE", "alpha", "", ""); code != 202 {
		t.Errorf("DELETE: %d", code)
	}
	if p, _ := tc.client.Project(ctx, "alpha"); p.Quota != (api.Quota{DiskMiB: 50000}) {
		t.Errorf("godwit's quota after DELETE: %+v", p.Quota)
	}
	if code, out := call(tc.adminToken, "GET", "alpha", "", ""); code != 200 || out["quota_set"].(map[string]any)["cores"] != float64(-1) {
		t.Errorf("GET after DELETE: %d %v", code, out)
	}
	// The limits agree with the quota set.
	req, _ := http.NewRequestWithContext(ctx, "GET", tc.url+"/compute/v2.1/limits", nil)
	req.Header.Set("X-Auth-Token", alice.Secret)
	resp, err := tc.client.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lim struct {
		Limits struct {
			Absolute map[string]float64 `json:"absolute"`
		} `json:"limits"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&lim); err != nil || lim.Limits.Absolute["maxTotalKeypairs"] != 100 || lim.Limits.Absolute["maxTotalCores"] != -1 || lim.Limits.Absolute["totalCoresUsed"] != 2 {
		t.Errorf("limits: %v, %v", lim.Limits.Absolute, err)
	}
}
