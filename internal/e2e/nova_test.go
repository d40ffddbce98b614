package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
)

// TestNovaLiveMigrationQEMU: Debian's openstack client, logged in
// through the Keystone subset with the cluster's admin token, live-
// migrates a running test guest between two real-QEMU hosts; the
// guest's heartbeat never breaks.
func TestNovaLiveMigrationQEMU(t *testing.T) {
	requireQEMU(t)
	if _, err := os.Stat("/usr/bin/openstack"); err != nil {
		t.Skip("/usr/bin/openstack is not installed (apt-get install python3-openstackclient; make test installs it)")
	}
	c := newCluster(t, clusterOpts{hosts: 2, driver: "qemu", tls: true})
	c.importGuest()
	// Nova's live migration has no bandwidth argument: the cluster's
	// default caps it (TCG guests are moved capped; docs/testing.md).
	bw := 125
	if _, err := c.client.UpdateClusterSettings(bg, api.ClusterSettingsUpdate{BandwidthMBPerS: &bw}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "nova-guest", Image: "testguest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 192, DiskMiB: 64}, Cmdline: "dirty_mb=32 dirty_rate_mb=8"}); err != nil {
		t.Fatal(err)
	}
	before := c.waitHeartbeat("nova-guest", 3, 90*time.Second)
	vm, err := c.client.VM(bg, "nova-guest")
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	clouds := fmt.Sprintf(`clouds:
  godwit:
    auth:
      auth_url: %s/identity/v3
      username: bootstrap-admin
      password: %s
      project_name: default
      user_domain_name: Default
      project_domain_name: Default
    cacert: %s
    region_name: RegionOne
    identity_api_version: 3
`, c.URL(), c.Token(), gcluster.CAFile(c.Dir()))
	if err := os.WriteFile(filepath.Join(dir, "clouds.yaml"), []byte(clouds), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("/usr/bin/openstack", append([]string{"--os-cloud", "godwit", "--os-compute-api-version", "2.30"}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "OS_CLIENT_CONFIG_FILE=" + filepath.Join(dir, "clouds.yaml"), "PYTHONWARNINGS=ignore"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("server", "show", vm.ID, "-c", "status", "-f", "value"); strings.TrimSpace(out) != "ACTIVE" {
		t.Fatalf("server show: %q", out)
	}
	run("server", "migrate", "--live-migration", "--host", "host2", "--wait", vm.ID)
	if out := run("server", "show", vm.ID, "-c", "OS-EXT-SRV-ATTR:host", "-c", "status", "-f", "value"); !strings.Contains(out, "host2") || !strings.Contains(out, "ACTIVE") {
		t.Errorf("after the live migration: %q", out)
	}
	ms, err := c.client.Migrations(bg, "nova-guest")
	if err != nil || len(ms) != 1 || ms[0].State != api.MigCompleted || ms[0].Kind != api.KindLive || ms[0].Destination != "host2" {
		t.Fatalf("godwit's migrations: %+v, %v", ms, err)
	}
	first := c.healthy("nova-guest", before.Counter).First
	c.waitHeartbeat("nova-guest", first.Counter+3, 30*time.Second)
	t.Logf("openstack server migrate --live-migration: %s, downtime %d ms, total %d ms", ms[0].Strategy, ms[0].Progress.DowntimeMS, ms[0].Progress.TotalTimeMS)
	if err := c.client.DeleteVM(bg, "nova-guest"); err != nil {
		t.Fatal(err)
	}
}
