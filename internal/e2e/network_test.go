package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/hostinfo"
)

// netVM creates a VM on the lab's network and waits until its guest has
// configured its address from the seed; it returns the address.
func (c *cluster) netVM(name, host, pool, cmdline string, nic api.NICRequest) string {
	c.t.Helper()
	nic.Network = labVMNetwork
	vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: name, Image: "testguest", Pool: pool, Host: host,
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 32}, Cmdline: cmdline, Networks: []api.NICRequest{nic}})
	if err != nil {
		c.t.Fatal(err)
	}
	ip := vm.Ports[0].IP
	c.waitGuest(name, 0, 90*time.Second, name+" configuring "+ip, func(hb guestlog.Heartbeat) error {
		if hb.IP != ip {
			return fmt.Errorf("guest reports ip=%s", hb.IP)
		}
		return nil
	})
	return ip
}

// answers checks that ip answers ping and serves its stream to the
// client namespace.
func (c *cluster) answers(lab *netLab, when, ip string) {
	c.t.Helper()
	seen := c.measuredMove(lab, []string{ip}, func() { time.Sleep(time.Second) })
	c.t.Logf("%s: %s: %s; %s", when, ip, seen[0].Ping, seen[0].Stream)
	if seen[0].Ping.Received == 0 || !seen[0].Stream.Survived {
		c.t.Errorf("%s the vm does not answer on %s: %s; %s", when, ip, seen[0].Ping, seen[0].Stream)
	}
}

// deleteVMs deletes every VM, so that the test leaves no QEMU behind
// (its agents leave their VMs running when they stop).
func (c *cluster) deleteVMs() {
	vms, err := c.client.VMs(bg)
	if err != nil {
		c.t.Errorf("list vms to delete: %v", err)
		return
	}
	for _, v := range vms {
		if err := c.client.DeleteVM(bg, v.Name); err != nil {
			c.t.Errorf("delete %s: %v", v.Name, err)
		}
	}
}

// measuredMove runs move while the client namespace probes each address
// (ping every 10 ms, and the guest's TCP stream), and returns what the
// client saw of each. It stops the probes 2 s after the move.
func (c *cluster) measuredMove(lab *netLab, ips []string, move func()) []probeResult {
	c.t.Helper()
	exe := filepath.Join(gcluster.BinariesForTest(c.t), "godwit")
	var cmds []*exec.Cmd
	var waits []func() probeResult
	for _, ip := range ips {
		cmd, wait := lab.probe(exe, ip, 5*time.Minute)
		cmds, waits = append(cmds, cmd), append(waits, wait)
	}
	time.Sleep(time.Second) // the stream connected, replies flowing
	move()
	time.Sleep(2 * time.Second)
	out := make([]probeResult, len(ips))
	for i := range ips {
		_ = cmds[i].Process.Signal(os.Interrupt)
		out[i] = waits[i]()
	}
	return out
}

// What a client outside every host sees of live moves: its TCP
// connection to the VM survives a live move on shared storage, a live
// block copy and a drain, and the VM answers ping throughout but for a
// blackout (printed, with QEMU's downtime beside it). After a cold move
// it answers on the same address. MAC and address never change.
func TestNetworkMovesQEMU(t *testing.T) {
	requireNetLab(t)
	lab := newNetLab(t, 3)
	// Lease renewals every 500 ms and hosts down after 3 s without a
	// heartbeat: the evacuation at the end has its proof of death soon.
	// With a CA: the controller and the agents speak mutual TLS across the
	// lab's namespaces, and every live move below is encrypted (QEMU's
	// TLS migration channel, and NBD with TLS for the block copy).
	c := newCluster(t, lab.opts(clusterOpts{driver: "qemu", downAfter: 3 * time.Second, agentArgs: []string{"--lease-renew", "500ms"}, tls: true}))
	t.Cleanup(c.deleteVMs)
	c.importGuest()
	if _, err := c.client.CreateNetwork(bg, api.CreateNetworkRequest{Name: labVMNetwork, Subnet: labVMSubnet, Gateway: labGateway}); err != nil {
		t.Fatal(err)
	}
	web := c.netVM("web", "host1", api.PoolShared, "dirty_mb=16 dirty_rate_mb=4", api.NICRequest{})
	db := c.netVM("db", "host1", api.PoolLocal, "dirty_mb=16 dirty_rate_mb=4", api.NICRequest{IP: "10.214.0.77"})
	if db != "10.214.0.77" {
		t.Fatalf("db got %s; asked for 10.214.0.77", db)
	}
	ports := map[string][]api.Port{}
	for _, n := range []string{"web", "db"} {
		v, _ := c.client.VM(bg, n)
		ports[n] = v.Ports
	}

	var rows []string
	check := func(what string, vms []string, seen []probeResult, migs []api.Migration) {
		t.Helper()
		for i, r := range seen {
			down := "?"
			if i < len(migs) {
				down = fmt.Sprintf("%d ms", migs[i].Progress.DowntimeMS)
			}
			row := fmt.Sprintf("%s: %s: ping longest gap %s (%d/%d replies), stream %s, QEMU downtime %s",
				what, vms[i], r.Ping.LongestGap, r.Ping.Received, r.Ping.Sent, r.Stream, down)
			t.Log(row)
			rows = append(rows, row)
			if !r.Stream.Survived || r.Stream.SeqBroken {
				t.Errorf("%s: the TCP connection to %s did not survive: %s", what, vms[i], r.Stream)
			}
			if r.Ping.Received == 0 || r.Ping.Received < r.Ping.Sent/2 {
				t.Errorf("%s: %s answered %d of %d pings", what, vms[i], r.Ping.Received, r.Ping.Sent)
			}
		}
	}
	live := func(vm, to string) api.Migration {
		m, err := c.client.Migrate(bg, vm, api.MigrateRequest{Kind: api.KindLive, To: to, BandwidthMBPerS: 125})
		if err != nil {
			t.Fatal(err)
		}
		if m = c.waitMigration(m.ID, 120*time.Second); m.State != api.MigCompleted {
			t.Fatalf("live move of %s: %s: %s", vm, m.State, m.Reason)
		}
		if !m.Encrypted {
			t.Errorf("live move of %s in a cluster with a CA is not encrypted", vm)
		}
		return m
	}

	var m api.Migration
	seen := c.measuredMove(lab, []string{web}, func() { m = live("web", "host2") })
	check("live, shared storage", []string{"web"}, seen, []api.Migration{m})
	seen = c.measuredMove(lab, []string{db}, func() { m = live("db", "host2") })
	check("live, block copy", []string{"db"}, seen, []api.Migration{m})

	// A drain of host2 moves both, one link at a time.
	var migs []api.Migration
	seen = c.measuredMove(lab, []string{web, db}, func() {
		in, err := c.client.Drain(bg, "host2", api.DrainRequest{BandwidthMBPerS: 125})
		if err != nil {
			t.Fatal(err)
		}
		if in = c.waitIntent(in.ID, 180*time.Second); in.State != api.IntentCompleted {
			t.Fatalf("drain: %s", in.State)
		}
		for _, vm := range []string{"web", "db"} {
			ms, _ := c.client.Migrations(bg, vm)
			if len(ms) > 0 {
				migs = append(migs, ms[0])
			}
		}
	})
	check("drain", []string{"web", "db"}, seen, migs)
	if _, err := c.client.SetHostEnabled(bg, "host2", true); err != nil {
		t.Fatal(err)
	}

	// An agent restart (SIGTERM, then start) keeps the VM's tap and rules:
	// its clients see nothing of it.
	v, _ := c.client.VM(bg, "web")
	seen = c.measuredMove(lab, []string{web}, func() {
		c.Agent(v.Host).Stop()
		c.startAgent(v.Host)
		c.waitAgent(v.Host)
	})
	check("agent restart", []string{"web"}, seen, nil)

	// An aborted live move removes the destination's copy with its tap:
	// the MAC is never left plugged on two hosts.
	v, _ = c.client.VM(bg, "web")
	to := "host1"
	if v.Host == to {
		to = "host3"
	}
	ma, err := c.client.Migrate(bg, "web", api.MigrateRequest{Kind: api.KindLive, To: to, BandwidthMBPerS: 1, Policy: api.PolicyPreCopy})
	if err != nil {
		t.Fatal(err)
	}
	tapOf := "gw" + strings.ReplaceAll(v.Ports[0].ID, "-", "")[:8]
	c.eventually(60*time.Second, "the destination's tap", func() error {
		if !lab.hasLink(to, tapOf) {
			return fmt.Errorf("no %s* on %s yet", tapOf, to)
		}
		return nil
	})
	if _, err := c.client.AbortMigration(bg, ma.ID); err != nil {
		t.Fatal(err)
	}
	if ma = c.waitMigration(ma.ID, 60*time.Second); ma.State != api.MigCancelled && ma.State != api.MigRolledBack {
		t.Fatalf("aborted move ended %s", ma.State)
	}
	if lab.hasLink(to, tapOf) {
		t.Errorf("the aborted move left web's tap on %s", to)
	}
	if !lab.hasLink(v.Host, tapOf) {
		t.Errorf("the aborted move took web's tap off its own host %s", v.Host)
	}

	// A stopped VM holds no tap: its MAC is nowhere until it starts again,
	// on the same address.
	dv, _ := c.client.VM(bg, "db")
	dbTap := "gw" + strings.ReplaceAll(dv.Ports[0].ID, "-", "")[:8]
	if _, err := c.client.VMAction(bg, "db", "stop", api.VMActionRequest{}); err != nil {
		t.Fatal(err)
	}
	if lab.hasLink(dv.Host, dbTap) {
		t.Errorf("db is stopped, and its tap is still on %s", dv.Host)
	}
	from := c.consoleLen("db")
	if _, err := c.client.VMAction(bg, "db", "start", api.VMActionRequest{}); err != nil {
		t.Fatal(err)
	}
	c.waitGuest("db", from, 90*time.Second, "db back on "+db, func(hb guestlog.Heartbeat) error {
		if hb.IP != db {
			return fmt.Errorf("ip=%s", hb.IP)
		}
		return nil
	})
	if !lab.hasLink(dv.Host, dbTap) {
		t.Errorf("db started again without its tap on %s", dv.Host)
	}

	// A cold move restarts the guest: the same address answers after, and
	// the source keeps no tap.
	v, _ = c.client.VM(bg, "web")
	mc, err := c.client.Migrate(bg, "web", api.MigrateRequest{Kind: api.KindCold, To: "host2"})
	if err != nil {
		t.Fatal(err)
	}
	if mc = c.waitMigration(mc.ID, 120*time.Second); mc.State != api.MigCompleted {
		t.Fatalf("cold move: %s: %s", mc.State, mc.Reason)
	}
	c.waitGuest("web", 0, 90*time.Second, "web back on "+web, func(hb guestlog.Heartbeat) error {
		if hb.IP != web {
			return fmt.Errorf("ip=%s", hb.IP)
		}
		return nil
	})
	c.answers(lab, "after a cold move", web)
	if lab.hasLink(v.Host, tapOf) {
		t.Errorf("the cold move left web's tap on %s", v.Host)
	}

	// Its host dies (the agent and the QEMU killed): evacuated, web is
	// rebuilt on another host and answers on the same address again.
	v, _ = c.client.VM(bg, "web")
	dead := v.Host
	c.Agent(dead).Kill()
	for _, pid := range hostinfo.QEMUPIDs(v.ID) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	c.eventually(20*time.Second, dead+" down", func() error {
		if h, err := c.client.Host(bg, dead); err != nil || h.State != api.HostDown {
			return fmt.Errorf("%s is %s (%v)", dead, h.State, err)
		}
		return nil
	})
	in, err := c.client.Evacuate(bg, dead, api.EvacuateRequest{HostIsDown: true})
	if err != nil {
		t.Fatal(err)
	}
	if in = c.waitIntent(in.ID, 120*time.Second); in.State != api.IntentCompleted {
		t.Fatalf("evacuate %s: %s", dead, in.State)
	}
	c.waitGuest("web", c.consoleLen("web"), 90*time.Second, "web rebuilt on "+web, func(hb guestlog.Heartbeat) error {
		if hb.IP != web {
			return fmt.Errorf("ip=%s", hb.IP)
		}
		return nil
	})
	c.answers(lab, "after an evacuation", web)
	for _, n := range []string{"web", "db"} {
		v, _ := c.client.VM(bg, n)
		if fmt.Sprint(v.Ports) != fmt.Sprint(ports[n]) {
			t.Errorf("%s's ports changed: %+v, was %+v", n, v.Ports, ports[n])
		}
		c.noTrouble(n)
	}
	netTable(t, "moves", rows)
}

// Port security: a guest that sends from another MAC or another address
// gets none of it through its host, and its neighbours are unaffected; a
// port made without port security lets the same frames through (so the
// test sees the frames it expects to be dropped).
func TestPortSecurityQEMU(t *testing.T) {
	requireNetLab(t)
	lab := newNetLab(t, 2)
	c := newCluster(t, lab.opts(clusterOpts{driver: "qemu"}))
	t.Cleanup(c.deleteVMs)
	c.importGuest()
	if _, err := c.client.CreateNetwork(bg, api.CreateNetworkRequest{Name: labVMNetwork, Subnet: labVMSubnet, Gateway: labGateway}); err != nil {
		t.Fatal(err)
	}
	// The spoofed frames go to 255.255.255.255:7778; the gateway (this
	// namespace, on the fabric) listens there.
	ln, err := net.ListenUDP("udp4", &net.UDPAddr{Port: 7778})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	from := map[string]int{}
	go func() {
		buf := make([]byte, 2048)
		for {
			_, addr, err := ln.ReadFromUDP(buf)
			if err != nil {
				return
			}
			mu.Lock()
			from[addr.IP.String()]++
			mu.Unlock()
		}
	}()
	macSpoofer := c.netVM("mac-spoofer", "host1", api.PoolShared, "spoof=mac", api.NICRequest{})
	ipSpoofer := c.netVM("ip-spoofer", "host1", api.PoolShared, "spoof=ip", api.NICRequest{})
	open := c.netVM("open", "host2", api.PoolShared, "spoof=mac", api.NICRequest{NoPortSecurity: true})
	neighbour := c.netVM("neighbour", "host1", api.PoolShared, "", api.NICRequest{})

	seen := c.measuredMove(lab, []string{neighbour}, func() { time.Sleep(5 * time.Second) })
	mu.Lock()
	defer mu.Unlock()
	t.Logf("datagrams to :7778 by source: %v; neighbour: %s; %s", from, seen[0].Ping, seen[0].Stream)
	if from[open] == 0 {
		t.Fatalf("nothing arrived from the port without port security (%s): the test sees no spoofed frames at all", open)
	}
	spoofedIP := net.ParseIP(ipSpoofer).To4()
	spoofedIP[3] += 100
	for _, bad := range []string{macSpoofer, ipSpoofer, spoofedIP.String()} {
		if from[bad] > 0 {
			t.Errorf("%d spoofed datagrams from %s got through port security", from[bad], bad)
		}
	}
	if seen[0].Ping.Received == 0 || !seen[0].Stream.Survived {
		t.Errorf("the neighbour is cut off: %s; %s", seen[0].Ping, seen[0].Stream)
	}
	// The gateway's neighbour table never learnt a spoofed MAC.
	v, _ := c.client.VM(bg, "mac-spoofer")
	out, _ := exec.Command("ip", "neigh", "show", macSpoofer, "dev", labFabric).CombinedOutput()
	if s := strings.TrimSpace(string(out)); s != "" && !strings.Contains(s, v.Ports[0].MAC) {
		t.Errorf("the gateway maps %s to another MAC than its port's %s: %s", macSpoofer, v.Ports[0].MAC, s)
	}
}

// netTable writes a networking test's measurements to
// $GODWIT_NET_OUT/<name>.txt for docs/networking.md; t.Log has them
// already.
func netTable(t *testing.T, name string, rows []string) {
	t.Helper()
	writeRows(t, "GODWIT_NET_OUT", name, rows)
}
