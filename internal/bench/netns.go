package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
)

// The drain scenario's network: a bridge in this namespace (where the
// controller listens) and one network namespace per host, joined to the
// bridge by a veth pair whose two ends are shaped to the link rate with
// tbf — so the moves out of one host share its one link, as on real
// hosts. The names are fixed, so a run that was killed is cleaned up by
// the next one.
const (
	labBridge     = "gwbench0"
	labSubnet     = "10.231.0."
	labBridgeAddr = labSubnet + "1"
	labLinkRate   = "1gbit"
)

func labNS(i int) string         { return fmt.Sprintf("gwbench-h%d", i) }
func labUplinkRoot(i int) string { return fmt.Sprintf("gwbu%d", i) }

// labUplink is each host's interface to the VMs' network (agent
// --uplink), the inner end of a veth whose outer end joins the fabric.
const labUplink = "uplink0"

func labAddr(i int) string     { return fmt.Sprintf("%s%d", labSubnet, 10+i) }
func labVethRoot(i int) string { return fmt.Sprintf("gwbh%d", i) }
func labVethNS(i int) string   { return fmt.Sprintf("gwbn%d", i) }

// netLab is a network set up by setupLab; teardown removes it.
type netLab struct {
	hosts int
	log   *slog.Logger
}

// setupLab creates the bridge and one shaped namespace per host. On
// failure it removes what it made.
func setupLab(ctx context.Context, log *slog.Logger, hosts int) (lab *netLab, err error) {
	lab = &netLab{hosts: hosts, log: log}
	lab.teardown() // what a killed run left
	out, _ := exec.CommandContext(ctx, "ip", "-4", "-o", "addr").CombinedOutput()
	if strings.Contains(string(out), " "+labSubnet) {
		return nil, fmt.Errorf("the benchmark's subnet %s0/24 is already in use on this machine:\n%s", labSubnet, out)
	}
	defer func() {
		if err != nil {
			lab.teardown()
		}
	}()
	run := func(args ...string) error {
		if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	tbf := []string{"root", "tbf", "rate", labLinkRate, "burst", "256kb", "latency", "50ms"}
	steps := [][]string{
		{"ip", "link", "add", labBridge, "type", "bridge"},
		{"ip", "addr", "add", labBridgeAddr + "/24", "dev", labBridge},
		{"ip", "link", "set", labBridge, "up"},
	}
	for i := 1; i <= hosts; i++ {
		ns, root, in := labNS(i), labVethRoot(i), labVethNS(i)
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "link", "add", root, "type", "veth", "peer", "name", in},
			[]string{"ip", "link", "set", in, "netns", ns},
			[]string{"ip", "link", "set", root, "master", labBridge},
			[]string{"ip", "link", "set", root, "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", ns, "addr", "add", labAddr(i) + "/24", "dev", in},
			[]string{"ip", "-n", ns, "link", "set", in, "up"},
			// Shaped both ways: what leaves the host (inside its
			// namespace) and what enters it (the bridge side).
			append([]string{"ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", in}, tbf...),
			append([]string{"tc", "qdisc", "add", "dev", root}, tbf...),
		)
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return lab, fmt.Errorf("set up the drain network: %w", err)
		}
	}
	log.Info("drain network ready", "bridge", labBridge, "hosts", hosts, "link", labLinkRate)
	return lab, nil
}

// check connects from host 1's namespace to the other hosts' agents and
// to the controller. Bridged frames pass the host's iptables when
// br_netfilter is loaded, and a FORWARD policy of DROP (Docker sets one)
// cuts the hosts off from each other.
func (l *netLab) check(ctx context.Context, agentPort, ctrlAddr string) error {
	targets := []string{labBridgeAddr + "/" + ctrlAddr}
	for i := 2; i <= l.hosts; i++ {
		targets = append(targets, labAddr(i)+"/"+agentPort)
	}
	for _, t := range targets {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", labNS(1), "timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/"+t)
		if out, err := cmd.CombinedOutput(); err != nil {
			hint := ""
			if b, _ := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables"); strings.TrimSpace(string(b)) == "1" {
				hint = "; bridged traffic passes iptables here (net.bridge.bridge-nf-call-iptables=1): allow forwarding on " + labBridge + " or set it to 0"
			}
			return fmt.Errorf("host1's namespace cannot connect to %s (%s)%s: %w", t, strings.TrimSpace(string(out)), hint, err)
		}
	}
	return nil
}

// uplinks gives each host a second link, its uplink to the VMs' network,
// joined to bridge (the network's fabric here, where the client is).
// Unshaped: the VMs' traffic is the clients', not the migrations'.
func (l *netLab) uplinks(ctx context.Context, bridge string) error {
	for i := 1; i <= l.hosts; i++ {
		root, in := labUplinkRoot(i), labUplinkRoot(i)+"n"
		for _, s := range [][]string{
			{"ip", "link", "add", root, "type", "veth", "peer", "name", in},
			{"ip", "link", "set", in, "netns", labNS(i)},
			{"ip", "-n", labNS(i), "link", "set", in, "name", labUplink},
			{"ip", "link", "set", root, "master", bridge, "up"},
		} {
			if out, err := exec.CommandContext(ctx, s[0], s[1:]...).CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %w: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
			}
		}
	}
	return nil
}

// teardown removes the namespaces (their veth ends go with them) and the
// bridge; it runs after every process inside was stopped.
func (l *netLab) teardown() {
	for i := 1; i <= max(l.hosts, 3); i++ {
		if _, err := os.Stat("/run/netns/" + labNS(i)); err == nil {
			if out, err := exec.Command("ip", "netns", "del", labNS(i)).CombinedOutput(); err != nil {
				l.log.Warn("remove network namespace", "netns", labNS(i), "err", err, "out", strings.TrimSpace(string(out)))
			}
		}
		_ = exec.Command("ip", "link", "del", labVethRoot(i)).Run()
		_ = exec.Command("ip", "link", "del", labUplinkRoot(i)).Run()
	}
	if _, err := os.Stat("/sys/class/net/" + labBridge); err == nil {
		if out, err := exec.Command("ip", "link", "del", labBridge).CombinedOutput(); err != nil {
			l.log.Warn("remove bridge", "bridge", labBridge, "err", err, "out", strings.TrimSpace(string(out)))
		}
	}
}
