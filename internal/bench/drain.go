package bench

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
)

// The drains compared: godwit's defaults against the peers' concurrency.
const (
	drainGodwit = "godwit"
	drainOne    = "one-at-a-time"
	drainTwo    = "two-at-a-time"
)

type drainVariant struct {
	name string
	req  api.DrainRequest
	desc string
}

var drainVariants = []drainVariant{
	{drainGodwit, api.DrainRequest{}, "defaults (2 per source, 1 sending; policy auto)"},
	// Nova live-migrates one VM at a time per host; KubeVirt two per
	// node. Both run plain pre-copy with QEMU's 300 ms downtime limit.
	{drainOne, api.DrainRequest{MaxPerSource: 1, Policy: api.PolicyPreCopy, MaxDowntimeMS: peerDowntimeLimitMS}, "max 1 per source, pre-copy (Nova)"},
	{drainTwo, api.DrainRequest{MaxPerSource: 2, MaxTransfersPerSource: 2, Policy: api.PolicyPreCopy, MaxDowntimeMS: peerDowntimeLimitMS},
		"max 2 per source, both sending, pre-copy (KubeVirt)"},
}

func drainVariantNamed(name string) (drainVariant, bool) {
	for _, v := range drainVariants {
		if v.name == name {
			return v, true
		}
	}
	return drainVariant{}, false
}

// drainVMs are the drained host's guests: mixed sizes and dirty rates,
// small enough for TCG.
func drainVMs(quick bool) []vmSpec {
	if quick {
		return []vmSpec{
			{"d1", 256, 32, 0}, {"d2", 256, 32, 10}, {"d3", 256, 32, 20},
			{"d4", 256, 32, 0}, {"d5", 256, 32, 30}, {"d6", 256, 32, 10},
		}
	}
	return []vmSpec{
		{"d1", 512, 128, 0}, {"d2", 512, 128, 40}, {"d3", 384, 96, 60},
		{"d4", 384, 96, 20}, {"d5", 256, 64, 0}, {"d6", 256, 64, 30},
	}
}

// drainLimit bounds one drain; past it the drain is cancelled.
const drainLimit = 15 * time.Minute

// runDrain sets up three hosts in shaped network namespaces, fills host1
// with guests and drains it once per variant, rebooting the guests on
// host1 before each.
func (b *bench) runDrain(ctx context.Context, dir string) (runs []drainRun, err error) {
	lab, err := setupLab(ctx, b.log, 3)
	if err != nil {
		return nil, err
	}
	defer lab.teardown()
	ctrlAddr, err := gcluster.FreeAddr(labBridgeAddr)
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(ctrlAddr)
	const agentPort = "7401"
	c, err := b.startCluster(ctx, "drain", gcluster.Options{
		Dir: filepath.Join(dir, "drain"), Hosts: 3, ControllerAddr: ctrlAddr,
		AgentAddr: func(i int) string { return net.JoinHostPort(labAddr(i), agentPort) },
		Netns:     labNS, AgentArgs: append([]string{"--uplink", benchNetwork + "=" + labUplink}, b.cfg.AgentArgs...),
	})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	if err := lab.check(ctx, agentPort, port); err != nil {
		return nil, err
	}
	// The VMs' network: its bridge here (with the client on it) is the
	// fabric every host's uplink joins.
	if !b.cfg.NoClient {
		cn, err := setupClientNet(ctx, c, b.log)
		if err != nil {
			return nil, fmt.Errorf("drain scenario: %w", err)
		}
		c.net = cn
		defer func() { c.stop(); cn.teardown() }() // the VMs' taps first
		if err := lab.uplinks(ctx, cn.bridge); err != nil {
			return nil, err
		}
	}
	// Every host holds the guest's image before the first drain: the
	// first drain to reach a host would otherwise fetch it, and only the
	// variant that happens to run first would pay for it.
	for i := 2; i <= 3; i++ {
		warm := vmSpec{name: fmt.Sprintf("warm-%d", i), memoryMiB: 128}
		if err := c.createVMs(ctx, gcluster.HostName(i), []vmSpec{warm}, 10); err != nil {
			return nil, fmt.Errorf("warm up %s: %w", gcluster.HostName(i), err)
		}
		if err := c.deleteVMs(ctx, []string{warm.name}); err != nil {
			return nil, err
		}
	}
	vms := drainVMs(b.cfg.Quick)
	var names []string
	for _, v := range vms {
		names = append(names, v.name)
	}
	for _, name := range b.cfg.Drains {
		v, _ := drainVariantNamed(name)
		if _, err := c.client.SetHostEnabled(ctx, gcluster.HostName(1), true); err != nil {
			return runs, fmt.Errorf("enable host1 again: %w", err)
		}
		b.log.Info("drain: booting the guests on host1", "variant", v.name, "vms", len(vms))
		if err := c.createVMs(ctx, gcluster.HostName(1), vms, 10); err != nil {
			return runs, err
		}
		if err := sleep(ctx, b.cfg.Settle); err != nil {
			return runs, err
		}
		r, err := b.drainOnce(ctx, c, v, len(vms))
		if err != nil {
			return runs, err
		}
		runs = append(runs, r)
		b.log.Info("drain run", "variant", r.Name, "state", r.State, "moved", r.Moves, "makespan_ms", r.MakespanMS, "bound_ms", r.BoundMS)
		if err := c.deleteVMs(ctx, names); err != nil {
			return runs, err
		}
	}
	return runs, nil
}

// drainOnce drains host1 and measures the makespan, from the POST to the
// moment polling sees the intent end.
func (b *bench) drainOnce(ctx context.Context, c *cluster, v drainVariant, nVMs int) (drainRun, error) {
	r := drainRun{Name: v.name, Request: v.desc, VMs: nVMs}
	probes, err := c.probeAll(ctx, b.godwit, gcluster.HostName(1))
	if err != nil {
		return r, err
	}
	defer func() {
		for _, p := range probes {
			_, _, _ = p.stop()
		}
	}()
	if err := sleep(ctx, 500*time.Millisecond); err != nil { // the probes connected
		return r, err
	}
	start := time.Now()
	in, err := c.client.Drain(ctx, gcluster.HostName(1), v.req)
	if err != nil {
		return r, fmt.Errorf("drain host1 (%s): %w", v.name, err)
	}
	cancelled := false
	for !in.State.Final() {
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return r, err
		}
		got, err := c.client.Intent(ctx, in.ID)
		if err != nil {
			b.log.Warn("poll drain", "id", in.ID, "err", err)
			continue
		}
		in = got
		if !cancelled && time.Since(start) > drainLimit {
			cancelled = true
			b.log.Warn("drain limit reached: cancelling", "id", in.ID, "limit", drainLimit)
			if _, err := c.client.CancelIntent(ctx, in.ID, api.CancelIntentRequest{AbortRunning: true}); err != nil {
				return r, fmt.Errorf("cancel the drain: %w", err)
			}
		}
	}
	r.MakespanMS = time.Since(start).Milliseconds()
	r.State = in.State
	// What each VM's client saw, over the whole drain.
	if err := sleep(ctx, time.Second); err != nil {
		return r, err
	}
	for name, p := range probes {
		ping, stream, err := p.stop()
		delete(probes, name)
		if err != nil {
			return r, err
		}
		r.Measured++
		if stream.Survived && !stream.SeqBroken {
			r.TCPKept++
		} else {
			r.ClientErrs = append(r.ClientErrs, name+": "+stream.Err)
		}
		r.WorstBlackout = max(r.WorstBlackout, ping.LongestGap, ping.SinceLastReply)
	}
	var strategies []string
	for _, op := range in.Operations {
		if op.MigrationID == "" {
			continue
		}
		m, err := c.client.Migration(ctx, op.MigrationID)
		if err != nil {
			return r, err
		}
		b.logMove(v.name, start, op, m)
		if m.State != api.MigCompleted {
			continue
		}
		r.Moves++
		r.BoundMS += boundMS(m.Progress.MemoryTotal, m.Progress.MemoryZero, linkRateBps)
		r.SentBytes += m.Progress.MemoryTransferred
		r.Nonzero += max(m.Progress.MemoryTotal-m.Progress.MemoryZero, 0)
		r.MaxDownMS = max(r.MaxDownMS, m.Progress.DowntimeMS)
		if s := strategyOf(m); !slices.Contains(strategies, s) {
			strategies = append(strategies, s)
		}
	}
	slices.Sort(strategies)
	r.Strategies = strings.Join(strategies, "; ")
	return r, nil
}

// logMove logs one move's timeline, relative to the drain request: when
// each state was entered, and what crossed the link. It shows where a
// drain's time goes beyond the bound.
func (b *bench) logMove(variant string, start time.Time, op api.Operation, m api.Migration) {
	var phases []string
	for _, p := range m.Phases {
		phases = append(phases, fmt.Sprintf("%s@%.2f", p.State, p.At.Sub(start).Seconds()))
	}
	b.log.Info("drain move", "variant", variant, "vm", op.VM, "to", m.Destination, "state", m.State,
		"op_started", fmt.Sprintf("%.2f", op.StartedAt.Sub(start).Seconds()),
		"op_finished", fmt.Sprintf("%.2f", op.FinishedAt.Sub(start).Seconds()),
		"phases", strings.Join(phases, " "), "qemu_total_ms", m.Progress.TotalTimeMS,
		"sent_mib", m.Progress.MemoryTransferred>>20, "ram_mib", m.Progress.MemoryTotal>>20,
		"zero_mib", m.Progress.MemoryZero>>20, "downtime_ms", m.Progress.DowntimeMS, "strategy", m.Strategy)
}
