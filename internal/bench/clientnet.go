package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/hostnet"
	"github.com/godwit/godwit/internal/netprobe"
)

// The VMs' network of a benchmark cluster whose hosts share this
// machine's namespace: the network's bridge here, with the gateway, and a
// client in a network namespace of its own on the bridge, outside every
// host, which measures each move as a user of the VM sees it: ping every
// 10 ms and the guest's TCP stream (godwit probe). Fixed names, so a
// killed run is cleaned up by the next.
const (
	benchNetwork    = "benchnet"
	benchSubnet     = "10.232.0.0/24"
	benchClientNS   = "gwbench-client"
	benchClientAddr = "10.232.0.250/24"
	benchClientVeth = "gwbcl"
)

// clientNet is a network set up by setupClientNet; teardown removes it.
type clientNet struct {
	bridge string
	log    *slog.Logger
}

// setupClientNet makes the cluster's VM network and the client on it.
func setupClientNet(ctx context.Context, c *cluster, log *slog.Logger) (n *clientNet, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("measuring what a client sees needs root (network namespaces)")
	}
	if err := hostnet.Check(true); err != nil {
		return nil, err
	}
	nw, err := c.client.CreateNetwork(ctx, api.CreateNetworkRequest{Name: benchNetwork, Subnet: benchSubnet})
	if err != nil {
		return nil, fmt.Errorf("create the benchmark's network: %w", err)
	}
	n = &clientNet{bridge: nw.Bridge, log: log}
	n.teardown()
	defer func() {
		if err != nil {
			n.teardown()
		}
	}()
	if err := hostnet.Bridge(ctx, nw.Bridge, nw.MTU, nw.Gateway+"/24"); err != nil {
		return n, err
	}
	for _, s := range [][]string{
		{"ip", "netns", "add", benchClientNS},
		{"ip", "link", "add", benchClientVeth, "type", "veth", "peer", "name", benchClientVeth + "n"},
		{"ip", "link", "set", benchClientVeth + "n", "netns", benchClientNS},
		{"ip", "link", "set", benchClientVeth, "master", nw.Bridge, "up"},
		{"ip", "-n", benchClientNS, "link", "set", "lo", "up"},
		{"ip", "-n", benchClientNS, "addr", "add", benchClientAddr, "dev", benchClientVeth + "n"},
		{"ip", "-n", benchClientNS, "link", "set", benchClientVeth + "n", "up"},
	} {
		if out, err := exec.CommandContext(ctx, s[0], s[1:]...).CombinedOutput(); err != nil {
			return n, fmt.Errorf("set up the client's network: %s: %w: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	log.Info("client network ready", "network", benchNetwork, "bridge", nw.Bridge, "client", benchClientAddr)
	return n, nil
}

// teardown removes the client's namespace (its veth goes with it) and the
// bridge; the VMs' taps are gone with the VMs.
func (n *clientNet) teardown() {
	if _, err := os.Stat("/run/netns/" + benchClientNS); err == nil {
		if out, err := exec.Command("ip", "netns", "del", benchClientNS).CombinedOutput(); err != nil {
			n.log.Warn("remove the client namespace", "err", err, "out", strings.TrimSpace(string(out)))
		}
	}
	_ = exec.Command("ip", "link", "del", benchClientVeth).Run()
	if err := hostnet.DeleteBridge(context.Background(), n.bridge); err != nil {
		n.log.Warn("remove the client bridge", "bridge", n.bridge, "err", err)
	}
}

// probe is one godwit probe running in the client's namespace.
type probe struct {
	cmd *exec.Cmd
	out strings.Builder
}

// start probes ip (ping and its stream on 7777) until stop.
func (n *clientNet) start(ctx context.Context, godwit, ip string) (*probe, error) {
	p := &probe{}
	p.cmd = exec.CommandContext(ctx, "ip", "netns", "exec", benchClientNS, godwit, "probe", ip, "--stream", "7777", "--for", "30m", "-o", "json")
	p.cmd.Stdout = &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// stop ends the probe (SIGINT: it prints what it saw) and reads it.
func (p *probe) stop() (netprobe.PingResult, netprobe.StreamResult, error) {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return netprobe.PingResult{}, netprobe.StreamResult{}, fmt.Errorf("godwit probe: %w: %s", err, p.out.String())
		}
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		return netprobe.PingResult{}, netprobe.StreamResult{}, errors.New("godwit probe did not stop within 10 s of SIGINT")
	}
	var r netprobe.Report
	if err := json.Unmarshal([]byte(p.out.String()), &r); err != nil {
		return netprobe.PingResult{}, netprobe.StreamResult{}, fmt.Errorf("read godwit probe's report %q: %w", p.out.String(), err)
	}
	ping, stream := r.Results()
	return ping, stream, nil
}

// probeAll starts a probe of every VM on host, by name.
func (c *cluster) probeAll(ctx context.Context, godwit, host string) (map[string]*probe, error) {
	if c.net == nil {
		return nil, nil
	}
	vms, err := c.client.VMs(ctx)
	if err != nil {
		return nil, err
	}
	probes := map[string]*probe{}
	for _, vm := range vms {
		if vm.Host != host || len(vm.Ports) == 0 {
			continue
		}
		p, err := c.net.start(ctx, godwit, vm.Ports[0].IP)
		if err != nil {
			for _, q := range probes {
				_, _, _ = q.stop()
			}
			return nil, err
		}
		probes[vm.Name] = p
	}
	return probes, nil
}
