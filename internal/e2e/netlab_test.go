package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gcluster "github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/netprobe"
)

// netLab is a small data center on this machine, for the networking
// tests: every host in a network namespace of its own with two links, a
// management link (the agent's API and migration streams) into the
// bridge where the controller listens, and an uplink for the VM network
// (agent --uplink) into a fabric bridge; and a client namespace on the
// fabric, outside every host, which measures what the VMs' users see.
// The machine itself holds the VM network's gateway on the fabric.
//
//	root ns: gwe2em (10.233.0.1, controller)   gwe2ef (10.214.0.1, gateway)
//	gwe2e-hI: mgmt 10.233.0.1I, uplink0 on gwe2ef, gw-vmnet (the agent's)
//	gwe2e-client: 10.214.0.250 on gwe2ef
//
// Names are fixed so that a killed run is cleaned up by the next.
type netLab struct {
	t     *testing.T
	hosts int
}

const (
	labMgmtBridge   = "gwe2em"
	labFabric       = "gwe2ef"
	labMgmtNet      = "10.233.0."
	labVMSubnet     = "10.214.0.0/24"
	labGateway      = "10.214.0.1"
	labClientAddr   = "10.214.0.250"
	labClientNS     = "gwe2e-client"
	labVMNetwork    = "vmnet"
	labUplink       = "uplink0"
	labControllerIP = labMgmtNet + "1"
)

func labHostNS(i int) string   { return fmt.Sprintf("gwe2e-h%d", i) }
func labHostAddr(i int) string { return fmt.Sprintf("%s%d", labMgmtNet, 10+i) }

// requireNetLab skips unless this machine can build the lab: root,
// iproute2, nftables (port security is on by default).
func requireNetLab(t *testing.T) {
	t.Helper()
	requireQEMU(t)
	if os.Geteuid() != 0 {
		t.Skip("the networking tests make namespaces, bridges and taps: they need root (make test runs as root)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the networking tests need %s (make test installs iproute2 and nftables)", tool)
		}
	}
}

// newNetLab builds the lab for hosts hosts; the test's cleanup removes it.
func newNetLab(t *testing.T, hosts int) *netLab {
	t.Helper()
	l := &netLab{t: t, hosts: hosts}
	// The lab's names are fixed and machine-wide: one lab at a time on
	// this machine, across checkouts and test binaries. Released last,
	// after the teardown.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "godwit-e2e-netlab.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	l.teardown()
	t.Cleanup(l.teardown)
	steps := [][]string{
		{"ip", "link", "add", labMgmtBridge, "type", "bridge"},
		{"ip", "addr", "add", labControllerIP + "/24", "dev", labMgmtBridge},
		{"ip", "link", "set", labMgmtBridge, "up"},
		{"ip", "link", "add", labFabric, "type", "bridge"},
		{"ip", "addr", "add", labGateway + "/24", "dev", labFabric},
		{"ip", "link", "set", labFabric, "up"},
		{"ip", "netns", "add", labClientNS},
		{"ip", "link", "add", "gwe2ec", "type", "veth", "peer", "name", "gwe2ecn"},
		{"ip", "link", "set", "gwe2ecn", "netns", labClientNS},
		{"ip", "link", "set", "gwe2ec", "master", labFabric, "up"},
		{"ip", "-n", labClientNS, "link", "set", "lo", "up"},
		{"ip", "-n", labClientNS, "link", "set", "gwe2ecn", "name", "eth0"},
		{"ip", "-n", labClientNS, "addr", "add", labClientAddr + "/24", "dev", "eth0"},
		{"ip", "-n", labClientNS, "link", "set", "eth0", "up"},
	}
	for i := 1; i <= hosts; i++ {
		ns := labHostNS(i)
		m, mn, u, un := fmt.Sprintf("gwe2em%d", i), fmt.Sprintf("gwe2emn%d", i), fmt.Sprintf("gwe2eu%d", i), fmt.Sprintf("gwe2eun%d", i)
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			[]string{"ip", "link", "add", m, "type", "veth", "peer", "name", mn},
			[]string{"ip", "link", "set", mn, "netns", ns},
			[]string{"ip", "link", "set", m, "master", labMgmtBridge, "up"},
			[]string{"ip", "-n", ns, "addr", "add", labHostAddr(i) + "/24", "dev", mn},
			[]string{"ip", "-n", ns, "link", "set", mn, "up"},
			[]string{"ip", "link", "add", u, "type", "veth", "peer", "name", un},
			[]string{"ip", "link", "set", un, "netns", ns},
			[]string{"ip", "link", "set", u, "master", labFabric, "up"},
			[]string{"ip", "-n", ns, "link", "set", un, "name", labUplink},
		)
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("build the network lab: %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	return l
}

// teardown removes the namespaces (their veths and the bridges and taps
// the agents made inside go with them) and the root's bridges.
func (l *netLab) teardown() {
	for i := 1; i <= max(l.hosts, 3); i++ {
		_ = exec.Command("ip", "netns", "del", labHostNS(i)).Run()
	}
	_ = exec.Command("ip", "netns", "del", labClientNS).Run()
	for _, b := range []string{labMgmtBridge, labFabric} {
		_ = exec.Command("ip", "link", "del", b).Run()
	}
}

// opts places a cluster's agents in the lab's host namespaces, each with
// its uplink for the VM network.
func (l *netLab) opts(o clusterOpts) clusterOpts {
	o.hosts = l.hosts
	o.netns = labHostNS
	addr, err := gcluster.FreeAddr(labControllerIP)
	if err != nil {
		l.t.Fatal(err)
	}
	o.controllerAddr = addr
	o.agentAddr = func(i int) string { return labHostAddr(i) + ":7401" }
	o.agentArgs = append(o.agentArgs, "--uplink", labVMNetwork+"="+labUplink)
	return o
}

// probe measures a VM's address from the client namespace for d: ping
// every 10 ms and its TCP stream (godwit probe, -o json).
func (l *netLab) probe(exe, ip string, d time.Duration) (*exec.Cmd, func() probeResult) {
	l.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", labClientNS, exe, "probe", ip, "--stream", "7777", "--for", d.String(), "-o", "json")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, func() probeResult {
		l.t.Helper()
		if err := cmd.Wait(); err != nil {
			l.t.Fatalf("probe of %s: %v: %s", ip, err, out.String())
		}
		var r probeResult
		if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
			l.t.Fatalf("probe of %s printed %q: %v", ip, out.String(), err)
		}
		return r
	}
}

// probeResult is what godwit probe -o json reports.
type probeResult struct {
	Ping   netprobe.PingResult
	Stream netprobe.StreamResult
}

func (r *probeResult) UnmarshalJSON(b []byte) error {
	var rep netprobe.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return err
	}
	r.Ping, r.Stream = rep.Results()
	return nil
}

// hasLink says whether host's namespace has a link whose name starts with
// prefix.
func (l *netLab) hasLink(host, prefix string) bool {
	l.t.Helper()
	i, _ := strconv.Atoi(strings.TrimPrefix(host, "host"))
	out, err := exec.Command("ip", "-n", labHostNS(i), "-br", "link").CombinedOutput()
	if err != nil {
		l.t.Fatalf("ip -n %s link: %v: %s", labHostNS(i), err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}
