package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

func network(name, subnet string) api.Network {
	return api.Network{Name: name, Type: api.NetworkBridge, Subnet: subnet, Gateway: strings.TrimSuffix(subnet, "0/24") + "1",
		MTU: api.DefaultMTU, Bridge: "gw-" + name, CreatedAt: now()}
}

func port(id, net, vmID, mac, ip string) api.Port {
	return api.Port{ID: id, Network: net, VMID: vmID, MAC: mac, IP: ip, PortSecurity: true, CreatedAt: now()}
}

// mustNetworks creates networks or fails t.
func mustNetworks(t *testing.T, s store.Store, ns ...api.Network) {
	t.Helper()
	for _, n := range ns {
		if err := s.CreateNetwork(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
}

// portIDs lists the IDs of the ports that f matches, in their order.
func portIDs(t *testing.T, s store.Store, f store.PortFilter) string {
	t.Helper()
	ps, err := s.Ports(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	return strings.Join(ids, " ")
}

// Networks round-trip, list by name with their ports counted, and
// cannot be deleted while a port uses them.
func testNetworks(t *testing.T, s store.Store) {
	n2, n1 := network("net2", "10.2.0.0/24"), network("net1", "10.1.0.0/24")
	mustNetworks(t, s, n2, n1)
	if err := s.CreateNetwork(ctx, network("net1", "10.9.0.0/24")); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("duplicate network: %v; want ErrConflict", err)
	}
	got, err := s.Network(ctx, "net1")
	if err != nil || !reflect.DeepEqual(got, n1) {
		t.Fatalf("network round trip: %v\n got %+v\nwant %+v", err, got, n1)
	}
	if _, err := s.Network(ctx, "nope"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("unknown network: %v; want ErrNotFound", err)
	}

	if err := s.CreatePorts(ctx, []api.Port{
		port("pa0", "net1", "vm-a", "02:00:00:00:00:01", "10.1.0.10"),
		port("pa1", "net2", "vm-a", "02:00:00:00:00:02", "10.2.0.10"),
		port("pb0", "net1", "vm-b", "02:00:00:00:00:03", "10.1.0.11"),
	}); err != nil {
		t.Fatal(err)
	}
	ns, err := s.Networks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, n := range ns {
		listed = append(listed, fmt.Sprintf("%s:%d", n.Name, n.Ports))
	}
	if got, want := strings.Join(listed, " "), "net1:2 net2:1"; got != want {
		t.Errorf("networks with their port counts = %q; want %q", got, want)
	}
	if got, _ := s.Network(ctx, "net1"); got.Ports != 2 {
		t.Errorf("net1 counts %d ports; want 2", got.Ports)
	}

	err = s.DeleteNetwork(ctx, "net1")
	if !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "vm-a") || !strings.Contains(err.Error(), "vm-b") {
		t.Errorf("delete a network in use: %v; want ErrConflict naming vm-a and vm-b", err)
	}
	if _, err := s.Network(ctx, "net1"); err != nil {
		t.Errorf("a refused delete removed the network: %v", err)
	}
	if err := s.DeletePorts(ctx, "vm-b"); err != nil {
		t.Fatal(err)
	}
	err = s.DeleteNetwork(ctx, "net1")
	if !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "vm-a") || strings.Contains(err.Error(), "vm-b") {
		t.Errorf("delete a network vm-a still uses: %v; want ErrConflict naming vm-a only", err)
	}
	if err := s.DeletePorts(ctx, "vm-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNetwork(ctx, "net1"); err != nil {
		t.Fatalf("delete a network no port uses: %v", err)
	}
	if _, err := s.Network(ctx, "net1"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("deleted network: %v; want ErrNotFound", err)
	}
	if err := s.DeleteNetwork(ctx, "net1"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("delete twice: %v; want ErrNotFound", err)
	}
	if ns, _ := s.Networks(ctx); len(ns) != 1 || ns[0].Name != "net2" || ns[0].Ports != 0 {
		t.Errorf("networks after deleting net1 and every port = %+v; want net2 with 0 ports", ns)
	}
}

// Ports round-trip, list by VM and then in the order they were created
// (not by ID), and filter by network and VM.
func testPorts(t *testing.T, s store.Store) {
	mustNetworks(t, s, network("net1", "10.1.0.0/24"), network("net2", "10.2.0.0/24"))
	b9 := port("p9", "net1", "vm-b", "02:00:00:00:00:09", "10.1.0.9")
	calls := [][]api.Port{
		{b9, port("p1", "net2", "vm-b", "02:00:00:00:00:01", "10.2.0.1")},
		{port("p5", "net1", "vm-a", "02:00:00:00:00:05", "10.1.0.5")},
		{port("p0", "net1", "vm-b", "02:00:00:00:00:00", "")}, // a later NIC of vm-b, no address
		{port("p3", "net2", "vm-a", "02:00:00:00:00:03", "10.2.0.3")},
	}
	for _, ps := range calls {
		if err := s.CreatePorts(ctx, ps); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreatePorts(ctx, nil); err != nil {
		t.Errorf("create no ports: %v", err)
	}
	for _, c := range []struct {
		f    store.PortFilter
		want string
	}{
		{store.PortFilter{}, "p5 p3 p9 p1 p0"},
		{store.PortFilter{VMID: "vm-b"}, "p9 p1 p0"},
		{store.PortFilter{Network: "net1"}, "p5 p9 p0"},
		{store.PortFilter{Network: "net2", VMID: "vm-a"}, "p3"},
		{store.PortFilter{VMID: "vm-c"}, ""},
	} {
		if got := portIDs(t, s, c.f); got != c.want {
			t.Errorf("ports %+v = %q; want %q", c.f, got, c.want)
		}
	}
	ps, err := s.Ports(ctx, store.PortFilter{VMID: "vm-b", Network: "net1"})
	if err != nil || len(ps) != 2 || !reflect.DeepEqual(ps[0], b9) {
		t.Fatalf("port round trip: %v\n got %+v\nwant %+v first", err, ps, b9)
	}
	// A second port without an address on the same network is no clash.
	if err := s.CreatePorts(ctx, []api.Port{port("p7", "net1", "vm-c", "02:00:00:00:00:07", "")}); err != nil {
		t.Errorf("a second port without an address: %v", err)
	}
	if err := s.CreatePorts(ctx, []api.Port{port("p9", "net2", "vm-c", "02:00:00:00:00:99", "10.2.0.99")}); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("a port ID taken: %v; want ErrConflict", err)
	}
	if err := s.DeletePorts(ctx, "vm-b"); err != nil {
		t.Fatal(err)
	}
	if got := portIDs(t, s, store.PortFilter{}); got != "p5 p3 p7" {
		t.Errorf("ports after deleting vm-b's = %q; want p5 p3 p7", got)
	}
	if err := s.DeletePorts(ctx, "vm-b"); err != nil {
		t.Errorf("delete the ports of a VM that has none: %v", err)
	}
}

// A MAC is unique in the cluster, an address in its network; a batch
// that breaks either, or names a network that does not exist, leaves
// nothing behind; DeletePorts frees both for reuse.
func testPortsUnique(t *testing.T, s store.Store) {
	mustNetworks(t, s, network("net1", "10.1.0.0/24"), network("net2", "10.2.0.0/24"))
	const mac, ip = "02:00:00:00:00:01", "10.0.0.5"
	if err := s.CreatePorts(ctx, []api.Port{port("a0", "net1", "vm-a", mac, ip)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		ports []api.Port
		is    error
		msg   string
	}{
		{"the MAC taken on another network",
			[]api.Port{port("b0", "net2", "vm-b", "02:00:00:00:00:02", "10.0.0.6"), port("b1", "net2", "vm-b", mac, "10.0.0.7")},
			errs.ErrConflict, "mac " + mac + " is taken"},
		{"the address taken on the same network",
			[]api.Port{port("b0", "net2", "vm-b", "02:00:00:00:00:02", "10.0.0.6"), port("b1", "net1", "vm-b", "02:00:00:00:00:03", ip)},
			errs.ErrConflict, "address " + ip + " is taken on network net1"},
		{"one MAC twice in the batch",
			[]api.Port{port("b0", "net1", "vm-b", "02:00:00:00:00:02", "10.0.0.6"), port("b1", "net2", "vm-b", "02:00:00:00:00:02", "10.0.0.7")},
			errs.ErrConflict, "mac 02:00:00:00:00:02 is taken"},
		{"one address twice in the batch",
			[]api.Port{port("b0", "net2", "vm-b", "02:00:00:00:00:02", "10.0.0.6"), port("b1", "net2", "vm-b", "02:00:00:00:00:03", "10.0.0.6")},
			errs.ErrConflict, "address 10.0.0.6 is taken on network net2"},
		{"an unknown network",
			[]api.Port{port("b0", "net2", "vm-b", "02:00:00:00:00:02", "10.0.0.6"), port("b1", "nope", "vm-b", "02:00:00:00:00:03", "10.0.0.7")},
			errs.ErrNotFound, `network "nope" not found`},
	} {
		err := s.CreatePorts(ctx, c.ports)
		if !errors.Is(err, c.is) || err.Error() != c.msg {
			t.Errorf("%s: %v; want %q (%v)", c.name, err, c.msg, c.is)
		}
		if got := portIDs(t, s, store.PortFilter{}); got != "a0" {
			t.Errorf("%s: ports after the failed batch = %q; want a0 alone", c.name, got)
		}
	}
	// The same address on another network is no clash.
	if err := s.CreatePorts(ctx, []api.Port{port("b0", "net2", "vm-b", "02:00:00:00:00:02", ip)}); err != nil {
		t.Fatalf("the same address on another network: %v", err)
	}
	if err := s.DeletePorts(ctx, "vm-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePorts(ctx, []api.Port{port("c0", "net1", "vm-c", mac, ip)}); err != nil {
		t.Errorf("reuse the MAC and address of deleted ports: %v", err)
	}
	if got := portIDs(t, s, store.PortFilter{}); got != "b0 c0" {
		t.Errorf("ports = %q; want b0 c0", got)
	}
}

// Under 100 concurrent CreatePorts drawing MACs and addresses from small
// ranges, the database lets no MAC and no address of a network in twice,
// refuses the rest with ErrConflict saying what is taken, and keeps
// exactly the batches it accepted, each whole and in its order.
func testPortsConcurrent(t *testing.T, s store.Store) {
	nets := []string{"net1", "net2"}
	mustNetworks(t, s, network("net1", "10.1.0.0/24"), network("net2", "10.2.0.0/24"))
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, seed))
	const n = 100
	batches := make([][]api.Port, n)
	for i := range batches {
		vmID := fmt.Sprintf("vm-%d", r.IntN(5)) // several batches per VM: their numbering races too
		for j := range 1 + r.IntN(2) {
			batches[i] = append(batches[i], port(fmt.Sprintf("p%d-%d", i, j), nets[r.IntN(2)], vmID,
				fmt.Sprintf("02:00:00:00:00:%02x", r.IntN(60)), fmt.Sprintf("10.0.0.%d", r.IntN(30))))
		}
	}
	errc := make([]error, n)
	var wg sync.WaitGroup
	for i := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc[i] = s.CreatePorts(ctx, batches[i])
		}()
	}
	wg.Wait()

	want := map[string]bool{} // IDs of the ports of accepted batches
	accepted := 0
	for i, err := range errc {
		switch {
		case err == nil:
			accepted++
			for _, p := range batches[i] {
				want[p.ID] = true
			}
		case !errors.Is(err, errs.ErrConflict):
			t.Errorf("batch %d: %v; want success or ErrConflict", i, err)
		}
	}
	ps, err := s.Ports(ctx, store.PortFilter{})
	if err != nil {
		t.Fatal(err)
	}
	macs, addrs, at := map[string]string{}, map[string]string{}, map[string]int{}
	for i, p := range ps {
		if other, ok := macs[p.MAC]; ok {
			t.Errorf("mac %s is on ports %s and %s", p.MAC, other, p.ID)
		}
		macs[p.MAC] = p.ID
		addr := p.Network + "/" + p.IP
		if other, ok := addrs[addr]; ok {
			t.Errorf("address %s is on ports %s and %s", addr, other, p.ID)
		}
		addrs[addr] = p.ID
		if !want[p.ID] {
			t.Errorf("port %s is stored, but its batch was refused", p.ID)
		}
		at[p.ID] = i
	}
	if len(ps) != len(want) {
		t.Errorf("%d ports stored; the %d accepted batches had %d", len(ps), accepted, len(want))
	}
	for i, b := range batches {
		if errc[i] == nil && len(b) == 2 && at[b[1].ID] != at[b[0].ID]+1 {
			t.Errorf("batch %d's ports are listed at %d and %d; want adjacent, in their order", i, at[b[0].ID], at[b[1].ID])
		}
		if errc[i] != nil && !takenBy(errc[i].Error(), b, macs, addrs) {
			t.Errorf("batch %d was refused with %q, which names nothing of it that is taken", i, errc[i])
		}
	}
	if accepted == 0 || accepted == n {
		t.Errorf("%d of %d batches accepted; the ranges are meant to make some, not all, collide", accepted, n)
	}
	t.Logf("%d of %d batches accepted, %d ports", accepted, n, len(ps))
}

// takenBy reports whether msg is CreatePorts' refusal of batch for a
// MAC or an address that is stored (macs, addrs) or twice in batch.
func takenBy(msg string, batch []api.Port, macs, addrs map[string]string) bool {
	seenMAC, seenAddr := map[string]int{}, map[string]int{}
	for _, p := range batch {
		seenMAC[p.MAC]++
		seenAddr[p.Network+"/"+p.IP]++
	}
	for _, p := range batch {
		addr := p.Network + "/" + p.IP
		if _, ok := macs[p.MAC]; (ok || seenMAC[p.MAC] > 1) && msg == "mac "+p.MAC+" is taken" {
			return true
		}
		if _, ok := addrs[addr]; (ok || seenAddr[addr] > 1) && msg == "address "+p.IP+" is taken on network "+p.Network {
			return true
		}
	}
	return false
}

// A network being deleted while ports are created on it ends with the
// network and the ports created, or neither: never a port on a network
// that is gone.
func testNetworkDeleteRace(t *testing.T, s store.Store) {
	const rounds, creators = 20, 3
	for i := range rounds {
		name := fmt.Sprintf("race%d", i)
		mustNetworks(t, s, network(name, "10.3.0.0/24"))
		createErrs := make([]error, creators)
		var deleteErr error
		start := make(chan struct{})
		var wg sync.WaitGroup
		for j := range creators {
			p := port(fmt.Sprintf("p-%s-%d", name, j), name, fmt.Sprintf("vm-%s-%d", name, j),
				fmt.Sprintf("02:00:00:00:%02x:%02x", i, j), fmt.Sprintf("10.3.0.%d", 10+j))
			wg.Add(1)
			go func() { defer wg.Done(); <-start; createErrs[j] = s.CreatePorts(ctx, []api.Port{p}) }()
		}
		wg.Add(1)
		go func() { defer wg.Done(); <-start; deleteErr = s.DeleteNetwork(ctx, name) }()
		close(start)
		wg.Wait()

		_, netErr := s.Network(ctx, name)
		stored := portIDs(t, s, store.PortFilter{Network: name})
		created := 0
		for j, err := range createErrs {
			id := fmt.Sprintf("p-%s-%d", name, j)
			switch {
			case err == nil:
				created++
				if !strings.Contains(stored+" ", id+" ") {
					t.Errorf("round %d: port %s was created but is not stored (ports %q)", i, id, stored)
				}
			case !errors.Is(err, errs.ErrNotFound):
				t.Errorf("round %d: create port %s: %v; want success or ErrNotFound", i, id, err)
			}
		}
		switch {
		case deleteErr == nil:
			if !errors.Is(netErr, errs.ErrNotFound) || created > 0 || stored != "" {
				t.Errorf("round %d: the delete succeeded, yet the network reads %v and %d ports were created (%q stored)",
					i, netErr, created, stored)
			}
		case errors.Is(deleteErr, errs.ErrConflict):
			if netErr != nil || created == 0 || len(strings.Fields(stored)) != created {
				t.Errorf("round %d: the delete was refused (%v), yet the network reads %v, %d ports were created and %q stored",
					i, deleteErr, netErr, created, stored)
			}
		default:
			t.Errorf("round %d: delete: %v; want success or ErrConflict", i, deleteErr)
		}
	}
}
