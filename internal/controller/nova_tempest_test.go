package controller_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// tempestSelection is the list of Tempest's compute API tests run
// against godwit, each with the outcome it must have and why.
const tempestSelection = "testdata/tempest.txt"

// tempestCase is one line of the selection.
type tempestCase struct {
	test   string // module.Class.test_method
	expect string // pass, fail or skip
	why    string // for fail and skip: the reason, for the docs
}

func readTempestSelection(t *testing.T) []tempestCase {
	t.Helper()
	b, err := os.ReadFile(tempestSelection)
	if err != nil {
		t.Fatal(err)
	}
	var cases []tempestCase
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			t.Fatalf("%s:%d: want TEST pass|fail|skip [WHY]", tempestSelection, n+1)
		}
		c := tempestCase{test: f[0], expect: f[1], why: strings.Join(f[2:], " ")}
		switch {
		case c.expect != "pass" && c.expect != "fail" && c.expect != "skip":
			t.Fatalf("%s:%d: outcome %q is not pass, fail or skip", tempestSelection, n+1, c.expect)
		case c.expect != "pass" && c.why == "":
			t.Fatalf("%s:%d: say why %s is expected to %s", tempestSelection, n+1, c.test, c.expect)
		}
		cases = append(cases, c)
	}
	return cases
}

// TestNovaTempest runs a selection of Tempest's compute API tests
// (Debian's tempest package) against a fake-driver cluster, configured
// with pre-provisioned credentials (three godwit tokens: a member, a
// member of another project, an admin). Every test must have the
// outcome testdata/tempest.txt gives it: the ones that pass must pass,
// and one expected to fail that passes fails this test too, so the
// list in docs/nova-compat.md stays true.
func TestNovaTempest(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs Tempest")
	}
	if _, err := os.Stat("/usr/lib/python3/dist-packages/tempest/api/compute"); err != nil {
		t.Skip("Tempest is not installed (apt-get install tempest; make test installs it)")
	}
	cases := readTempestSelection(t)
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 16, 16384, 16384, 16384)
	ctx := tc.ctx
	tc.importFakeKernel(t, "cirros")
	tc.importFakeKernel(t, "cirros-alt")
	for _, f := range []api.CreateFlavorRequest{
		{ID: "1", Name: "m1.tiny", VCPUs: 1, MemoryMiB: 128, DiskMiB: 1024},
		{ID: "2", Name: "m1.small", VCPUs: 1, MemoryMiB: 256, DiskMiB: 1024},
	} {
		if _, err := tc.client.CreateFlavor(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	var accounts strings.Builder
	for _, a := range []struct {
		name, project string
		role          api.Role
	}{{"tempest-primary", "tempest1", api.RoleMember}, {"tempest-alt", "tempest2", api.RoleMember}, {"tempest-admin", "admin", api.RoleAdmin}} {
		tok, err := tc.client.CreateToken(ctx, api.CreateTokenRequest{Name: a.name, Project: a.project, Role: a.role})
		if err != nil {
			t.Fatal(err)
		}
		// A quota, the same for every project as Nova's defaults are:
		// the overlimit resize tests read the admin's project's and
		// resize the member's server past it (unlimited, they skip).
		if _, err := tc.client.SetQuota(ctx, a.project, api.Quota{VCPUs: 32, MemoryMiB: 32768}); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&accounts, "- username: %s\n  project_name: %s\n  password: %s\n", a.name, a.project, tok.Secret)
		if a.role == api.RoleAdmin {
			accounts.WriteString("  types: [admin]\n")
		} else {
			accounts.WriteString("  roles: [member]\n")
		}
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("accounts.yaml", accounts.String())
	write("tempest.conf", tempestConf(tc, dir))
	write("selection.txt", func() string {
		var b strings.Builder
		for _, c := range cases {
			b.WriteString(c.test + "\n")
		}
		return b.String()
	}())

	runner, err := filepath.Abs("../../scripts/tempest-run.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", runner, filepath.Join(dir, "selection.txt"))
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "PYTHONWARNINGS=ignore", "TEMPEST_CONFIG_DIR=" + dir, "TEMPEST_CONFIG=tempest.conf"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tempest-run.py: %v\n%s", err, stderr.Bytes())
	}
	got := map[string]tempestResult{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r tempestResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("tempest-run.py printed %q: %v", sc.Text(), err)
		}
		got[r.Test] = r
	}
	counts := map[string]int{}
	for _, c := range cases {
		r, ok := got[c.test]
		switch {
		case !ok:
			t.Errorf("%s: no result", c.test)
		case r.Status != c.expect:
			t.Errorf("%s: %s, want %s (testdata/tempest.txt)\n\t%s", c.test, r.Status, c.expect, r.Detail)
		}
		counts[r.Status]++
	}
	t.Logf("Tempest: %d tests: %d pass, %d fail (expected, with reasons), %d skip", len(cases), counts["pass"], counts["fail"], counts["skip"])
	if t.Failed() {
		t.Logf("Tempest's log (stderr):\n%s", tail(stderr.String(), 4000))
	}
}

type tempestResult struct {
	Test   string `json:"test"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// tempestConf configures Tempest for a test cluster: pre-provisioned
// credentials, Keystone v3 at the controller, the cluster's CA, godwit's
// images and flavors, and the features godwit has (live, block and cold
// migration, resize) on, the ones it has not (volumes, networks as
// Neutron, consoles, snapshots, rescue, suspend, pause, shelve) off.
func tempestConf(tc *testCluster, dir string) string {
	return fmt.Sprintf(`[DEFAULT]
log_file = %[1]s/tempest.log
[oslo_concurrency]
lock_path = %[1]s/locks
[auth]
use_dynamic_credentials = false
test_accounts_file = %[1]s/accounts.yaml
default_credentials_domain_name = Default
create_isolated_networks = false
[identity]
uri_v3 = %[2]s/identity/v3
auth_version = v3
ca_certificates_file = %[3]s
region = RegionOne
[identity-feature-enabled]
api_v2 = false
[compute]
image_ref = cirros
image_ref_alt = cirros-alt
flavor_ref = 1
flavor_ref_alt = 2
min_compute_nodes = 3
min_microversion = 2.1
max_microversion = 2.60
build_timeout = 60
build_interval = 1
fixed_network_name =
[compute-feature-enabled]
live_migration = true
block_migration_for_live_migration = true
resize = true
cold_migration = true
console_output = false
interface_attach = false
snapshot = false
rescue = false
suspend = false
pause = false
shelve = false
change_password = false
metadata_service = false
config_drive = false
personality = false
attach_encrypted_volume = false
vnc_console = false
serial_console = false
spice_console = false
[service_available]
neutron = false
cinder = false
glance = true
swift = false
nova = true
[validation]
run_validation = false
[image-feature-enabled]
api_v1 = false
`, dir, tc.url, filepath.Join(tc.tlsDir, "ca.crt"))
}
