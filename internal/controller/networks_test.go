package controller_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/store/storetest"
)

// fakeNICs reads the NICs a fake host was told to plug for a VM, from the
// fake driver's state file.
func (tc *testCluster) fakeNICs(t *testing.T, host int, vmID string) []driver.NIC {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tc.agents[host-1].cfg.StateDir, "fake", "vms", vmID, "state.json"))
	if err != nil {
		t.Fatalf("host%d has no state for vm %s: %v", host, vmID, err)
	}
	var st struct{ Spec driver.VMSpec }
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Spec.NICs
}

// Networks are made, listed, refused when they would overlap or make no
// sense, and deleted only when no VM uses them; every refusal is a 4xx
// that says what to do and changes nothing.
func TestNetworks(t *testing.T) {
	tc := newTestCluster(t, 1, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	lan, err := tc.client.CreateNetwork(ctx, api.CreateNetworkRequest{Name: "lan", Subnet: "10.99.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if lan.Gateway != "10.99.0.1" || lan.MTU != api.DefaultMTU || lan.Bridge != "gw-lan" || lan.Type != api.NetworkBridge {
		t.Errorf("defaults: %+v", lan)
	}
	if _, err := tc.client.CreateNetwork(ctx, api.CreateNetworkRequest{Name: "a-very-long-network-name", Subnet: "10.98.0.0/24", MTU: 9000}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		req  api.CreateNetworkRequest
		code int
		says string
	}{
		{api.CreateNetworkRequest{Name: "x", Subnet: "10.99.0.128/25"}, http.StatusConflict, "overlaps network lan"},
		{api.CreateNetworkRequest{Name: "x", Subnet: "10.0.0.0/8"}, http.StatusConflict, "overlaps"},
		{api.CreateNetworkRequest{Name: "lan", Subnet: "10.97.0.0/24"}, http.StatusConflict, "already exists"},
		{api.CreateNetworkRequest{Name: "x", Subnet: "10.97.0.5/24"}, http.StatusBadRequest, "did you mean 10.97.0.0/24"},
		{api.CreateNetworkRequest{Name: "x", Subnet: "fd00::/64"}, http.StatusBadRequest, "IPv4"},
		{api.CreateNetworkRequest{Name: "x", Subnet: "10.97.0.0/30"}, http.StatusBadRequest, "/29"},
		{api.CreateNetworkRequest{Name: "x", Subnet: "10.97.0.0/24", Gateway: "10.96.0.1"}, http.StatusBadRequest, "not a host address"},
		{api.CreateNetworkRequest{Name: "x", Subnet: "10.97.0.0/24", Gateway: "10.97.0.255"}, http.StatusBadRequest, "not a host address"},
		{api.CreateNetworkRequest{Name: "x", Subnet: "10.97.0.0/24", MTU: 100}, http.StatusBadRequest, "mtu"},
		{api.CreateNetworkRequest{Name: "Bad_Name", Subnet: "10.97.0.0/24"}, http.StatusBadRequest, "lowercase"},
	} {
		_, err := tc.client.CreateNetwork(ctx, c.req)
		var e *api.Error
		if !asAPIError(err, &e) || e.Status != c.code || !strings.Contains(e.Message, c.says) {
			t.Errorf("create %+v: %v; want %d saying %q", c.req, err, c.code, c.says)
		}
	}
	ns, err := tc.client.Networks(ctx)
	if err != nil || len(ns) != 2 {
		t.Fatalf("networks after refusals: %v %v", ns, err)
	}

	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "web-1", Image: "guest", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64},
		Networks: []api.NICRequest{{Network: "lan"}}}); err != nil {
		t.Fatal(err)
	}
	err = tc.client.DeleteNetwork(ctx, "lan")
	var e *api.Error
	if !asAPIError(err, &e) || e.Status != http.StatusConflict || !strings.Contains(e.Message, "web-1") {
		t.Errorf("delete in use: %v; want 409 naming web-1", err)
	}
	if n, _ := tc.client.Network(ctx, "lan"); n.Ports != 1 {
		t.Errorf("lan has %d ports; want 1", n.Ports)
	}
	if err := tc.client.DeleteVM(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	if err := tc.client.DeleteNetwork(ctx, "lan"); err != nil {
		t.Errorf("delete after its VM went: %v", err)
	}
	if err := tc.client.DeleteNetwork(ctx, "lan"); !asAPIError(err, &e) || e.Status != http.StatusNotFound {
		t.Errorf("delete again: %v; want 404", err)
	}
}

// A VM's ports: a MAC of godwit's locally administered prefix and the
// lowest free address, or the one asked for; bad requests refused with
// nothing left behind; every host the VM runs on is told the same NICs,
// and the MAC and address survive live and cold moves, resize and
// evacuation's rebuild.
func TestPorts(t *testing.T) {
	tc := newTestCluster(t, 2, 2048)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	for _, n := range []api.CreateNetworkRequest{{Name: "lan", Subnet: "10.99.0.0/24"}, {Name: "san", Subnet: "10.100.0.0/29", MTU: 9000}} {
		if _, err := tc.client.CreateNetwork(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	create := func(name string, nics ...api.NICRequest) (api.VM, error) {
		return tc.client.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: "guest", Host: "host1", Pool: api.PoolShared,
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64, DiskMiB: 16}, Networks: nics, UserData: "#cloud-config\n"})
	}
	a, err := create("a", api.NICRequest{Network: "lan"}, api.NICRequest{Network: "san", IP: "10.100.0.6", NoPortSecurity: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Ports) != 2 || a.Ports[0].IP != "10.99.0.2" || a.Ports[1].IP != "10.100.0.6" ||
		!strings.HasPrefix(a.Ports[0].MAC, "02:67:77:") || a.Ports[0].MAC == a.Ports[1].MAC ||
		!a.Ports[0].PortSecurity || a.Ports[1].PortSecurity {
		t.Fatalf("ports %+v", a.Ports)
	}
	b, err := create("b", api.NICRequest{Network: "lan"})
	if err != nil || b.Ports[0].IP != "10.99.0.3" {
		t.Fatalf("second vm: %v %+v", err, b.Ports)
	}

	// Bad requests: refused, and nothing of them stays.
	for _, c := range []struct {
		nics []api.NICRequest
		code int
		says string
	}{
		{[]api.NICRequest{{Network: "lan", IP: "10.99.0.2"}}, http.StatusConflict, "taken"},
		{[]api.NICRequest{{Network: "lan", IP: "10.99.0.1"}}, http.StatusConflict, "gateway"},
		{[]api.NICRequest{{Network: "lan", IP: "10.99.1.9"}}, http.StatusBadRequest, "outside"},
		{[]api.NICRequest{{Network: "nope"}}, http.StatusBadRequest, "godwit network list"},
		{[]api.NICRequest{{Network: "lan"}, {Network: "san", IP: "10.100.0.6"}}, http.StatusConflict, "taken"},
		// san is a /29: .2 to .6, .6 taken; four more fit, the fifth not.
		{[]api.NICRequest{{Network: "san"}, {Network: "san"}, {Network: "san"}, {Network: "san"}, {Network: "san"}}, http.StatusConflict, "no free address"},
	} {
		_, err := create("c", c.nics...)
		var e *api.Error
		if !asAPIError(err, &e) || e.Status != c.code || !strings.Contains(e.Message, c.says) {
			t.Errorf("create with %v: %v; want %d saying %q", c.nics, err, c.code, c.says)
		}
	}
	if _, err := tc.client.VM(ctx, "c"); err == nil {
		t.Error("a refused create left its vm")
	}
	for name, want := range map[string]int{"lan": 2, "san": 1} {
		if n, _ := tc.client.Network(ctx, name); n.Ports != want {
			t.Errorf("network %s has %d ports after refusals; want %d", name, n.Ports, want)
		}
	}

	// The host was told the VM's NICs; so is every host it moves to.
	same := func(where string, host int) {
		t.Helper()
		v, err := tc.client.VM(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(v.Ports) != fmt.Sprint(a.Ports) {
			t.Errorf("%s: ports %+v; want %+v", where, v.Ports, a.Ports)
		}
		nics := tc.fakeNICs(t, host, v.ID)
		if len(nics) != 2 || nics[0].MAC != a.Ports[0].MAC || nics[0].IP != "10.99.0.2" || nics[0].Bridge != "gw-lan" ||
			nics[1].MTU != 9000 || nics[1].PortSecurity || !nics[0].PortSecurity {
			t.Errorf("%s: host%d plugs %+v", where, host, nics)
		}
	}
	same("created", 1)
	m, err := tc.client.Migrate(ctx, "a", api.MigrateRequest{Kind: api.KindLive})
	if err != nil {
		t.Fatal(err)
	}
	if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted {
		t.Fatalf("live move: %s %s", m.State, m.Reason)
	}
	same("after a live move", 2)
	if m, err = tc.client.Migrate(ctx, "a", api.MigrateRequest{Kind: api.KindCold, To: "host1"}); err != nil {
		t.Fatal(err)
	}
	if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted {
		t.Fatalf("cold move: %s %s", m.State, m.Reason)
	}
	same("after a cold move", 1)
	// A rebuild in place and an online resize keep them too.
	in, err := tc.client.Rebuild(ctx, "a", api.RebuildRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if in = waitIntent(t, tc.client, in.ID, 30*time.Second); in.State != api.IntentCompleted {
		t.Fatalf("rebuild: %s", in.State)
	}
	same("after a rebuild", 1)
	if in, err = tc.client.Resize(ctx, "a", api.ResizeRequest{VCPUs: 2}); err != nil {
		t.Fatal(err)
	}
	if in = waitIntent(t, tc.client, in.ID, 30*time.Second); in.State != api.IntentCompleted {
		t.Fatalf("resize: %s", in.State)
	}
	same("after a resize", 1)

	// Deleting frees the MAC and the address: the next VM gets .2 again.
	if err := tc.client.DeleteVM(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	d, err := create("d", api.NICRequest{Network: "lan"})
	if err != nil || d.Ports[0].IP != "10.99.0.2" {
		t.Errorf("after a delete: %v %+v; want 10.99.0.2 again", err, d.Ports)
	}
}

// 100 creates at once, on one network: never the same MAC or address
// twice; deleting them all frees every address. On SQLite, and on
// PostgreSQL when make test provides one.
func TestPortsConcurrent(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { portsConcurrent(t, "") })
	t.Run("postgres", func(t *testing.T) { portsConcurrent(t, storetest.PostgresDB(t)) })
}

func portsConcurrent(t *testing.T, dsn string) {
	tc := newTestClusterWith(t, clusterOptions{storeDSN: dsn}, 512, 64<<10, 64<<10)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateNetwork(ctx, api.CreateNetworkRequest{Name: "lan", Subnet: "10.99.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	const n = 100
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: fmt.Sprintf("vm-%d", i), Image: "guest",
				Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}, Networks: []api.NICRequest{{Network: "lan"}}})
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	vms, err := tc.client.VMs(ctx)
	if err != nil || len(vms) != n {
		t.Fatalf("%d vms, %v", len(vms), err)
	}
	macs, ips := map[string]string{}, map[string]string{}
	for _, v := range vms {
		if len(v.Ports) != 1 {
			t.Fatalf("vm %s has %d ports", v.Name, len(v.Ports))
		}
		p := v.Ports[0]
		if other, dup := macs[p.MAC]; dup {
			t.Errorf("mac %s on %s and %s", p.MAC, v.Name, other)
		}
		if other, dup := ips[p.IP]; dup {
			t.Errorf("ip %s on %s and %s", p.IP, v.Name, other)
		}
		macs[p.MAC], ips[p.IP] = v.Name, v.Name
	}
	for i := 2; i < n+2; i++ { // the lowest free addresses: .2 to .101
		if _, ok := ips[fmt.Sprintf("10.99.0.%d", i)]; !ok {
			t.Errorf("10.99.0.%d not handed out", i)
		}
	}
	for _, v := range vms {
		wg.Add(1)
		go func() { defer wg.Done(); _ = tc.client.DeleteVM(ctx, v.Name) }()
	}
	wg.Wait()
	if nw, _ := tc.client.Network(ctx, "lan"); nw.Ports != 0 {
		t.Errorf("%d ports left after deleting every vm", nw.Ports)
	}
}

// asAPIError is errors.As for the API's error type.
func asAPIError(err error, e **api.Error) bool { return errors.As(err, e) }
