package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/hostapi"
)

// agentKill is one case of the agent-kill matrix: which agent dies, and
// where. An empty point is a kill -9 from outside once the record shows
// memory moving (a live transfer lasts seconds); a failpoint is for the
// steps too short to hit from outside.
type agentKill struct {
	kind, pool string
	victim     string // source or destination
	point      string // agent failpoint, or "" for an outside kill mid-transfer
	where      string // for the table
}

var agentKills = []agentKill{
	{api.KindLive, api.PoolShared, "source", "", "mid-transfer (kill -9 from outside)"},
	{api.KindLive, api.PoolShared, "destination", "", "mid-transfer (kill -9 from outside)"},
	{api.KindLive, api.PoolLocal, "source", "", "mid-transfer (kill -9 from outside)"},
	{api.KindLive, api.PoolLocal, "destination", "", "mid-transfer (kill -9 from outside)"},
	{api.KindCold, api.PoolShared, "source", "agent/stop/before-reply", "stopped the vm, died before replying"},
	{api.KindCold, api.PoolShared, "destination", "agent/create/before-reply", "started the vm, died before replying"},
	{api.KindCold, api.PoolLocal, "source", "agent/serve-disk/mid-transfer", "mid-transfer, serving the disk"},
	{api.KindCold, api.PoolLocal, "destination", "agent/import/mid-transfer", "mid-transfer, importing the disk"},
}

// A host agent killed (-9) in the middle of a migration, source or
// destination, every strategy, then started again: each case ends
// completed or rolled back, the VM runs on exactly one host where its
// record says, nothing is left on the other host, and no claim leaks.
//
// Fake driver: its VMs are state files whose "processes" outlive the
// agent, as QEMU processes do; but its migration streams (the outgoing
// model, the incoming listener, a disk import) run inside the agent and
// die with it. So a kill here models an agent crash that also breaks the
// migration connection — the harder case; with QEMU the transfer itself
// carries on without its agent.
func TestAgentKilledMidMigration(t *testing.T) {
	var table []string
	for _, pair := range [][2]string{{api.KindLive, api.PoolShared}, {api.KindLive, api.PoolLocal}, {api.KindCold, api.PoolShared}, {api.KindCold, api.PoolLocal}} {
		t.Run(pair[0]+"-"+pair[1], func(t *testing.T) {
			c := newCluster(t, clusterOpts{hosts: 2, driver: "fake"})
			c.fakeGuestImage()
			vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "victim", Image: "testguest", Pool: pair[1],
				Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 64}, Cmdline: "dirty_mb=8 dirty_rate_mb=4"})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range agentKills {
				if k.kind == pair[0] && k.pool == pair[1] {
					out := c.killAgentDuring(k, vm)
					table = append(table, fmt.Sprintf("%-5s %-6s %-11s %-38s %s", k.kind, k.pool, k.victim, k.where, out))
				}
			}
		})
	}
	t.Logf("agent kill -9 mid-migration → outcome after its restart:\n%s", strings.Join(table, "\n"))
	faultTable(t, "agent-kills", table)
}

// agentAPI is a test's client for one agent.
func (c *cluster) agentAPI(host string) *hostapi.Agent {
	return hostapi.NewAgent("http://"+c.agentAddrs[host], 5*time.Second)
}

// waitAgent waits until host's agent answers.
func (c *cluster) waitAgent(host string) {
	c.t.Helper()
	c.eventually(30*time.Second, host+"'s agent answers", func() error {
		_, err := c.agentAPI(host).VMs(bg)
		return err
	})
}

// killAgentDuring migrates vm to the other host, kills the case's agent
// at its point, starts it again, and checks the end. It returns the
// outcome for the table.
func (c *cluster) killAgentDuring(k agentKill, vm api.VM) string {
	t := c.t
	t.Helper()
	cur, _ := c.client.VM(bg, vm.Name)
	src, dst := cur.Host, "host1"
	if src == "host1" {
		dst = "host2"
	}
	victim := src
	if k.victim == "destination" {
		victim = dst
	}
	if k.point != "" {
		c.agents[victim].stop(t) // its VMs live on: a restart reattaches
		c.agentEnv = map[string][]string{victim: {failpoint.Env + "=" + k.point + "=kill"}}
		c.startAgent(victim)
		c.agentEnv = nil
		c.waitAgent(victim)
	}
	// 128 MiB at 10 MB/s: a live transfer of about 13 s.
	m, err := c.client.Migrate(bg, vm.Name, api.MigrateRequest{Kind: k.kind, To: dst, BandwidthMBps: 10})
	if err != nil {
		t.Fatalf("%s %s: migrate: %v", k.kind, k.pool, err)
	}
	if k.point == "" {
		c.eventually(30*time.Second, "memory moving", func() error {
			got, err := c.client.Migration(bg, m.ID)
			if err == nil && (got.State != api.MigTransferring || got.Progress.MemoryTransferred == 0) {
				err = fmt.Errorf("migration is %s, %d bytes sent", got.State, got.Progress.MemoryTransferred)
			}
			return err
		})
		c.agents[victim].kill(t)
	} else {
		select {
		case <-c.agents[victim].done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the agent of %s did not die at %s", k.where, victim, k.point)
		}
	}
	time.Sleep(time.Second) // the agent is away for a moment
	c.startAgent(victim)
	c.waitAgent(victim)

	m = c.waitMigration(m.ID, 3*time.Minute)
	if m.State != api.MigCompleted && m.State != api.MigRolledBack {
		t.Errorf("%s %s, %s killed %s: migration ended %s: %s", k.kind, k.pool, k.victim, k.where, m.State, m.Reason)
	}
	now := c.checkOneCopy(vm, []string{"host1", "host2"})
	moved := "stayed on the source"
	if now.Host != src {
		moved = "moved to the destination"
	}
	t.Logf("%s %s, %s killed %s: %s (%s): %s", k.kind, k.pool, k.victim, k.where, m.State, moved, m.Reason)
	return fmt.Sprintf("%s, %s", m.State, moved)
}

// checkOneCopy checks that exactly one host has vm, running, where its
// record says; that the others keep nothing of it (definition, local
// disk, partial import); and that each host's allocation is its VMs'. It
// returns the VM's record.
func (c *cluster) checkOneCopy(vm api.VM, hosts []string) api.VM {
	t := c.t
	t.Helper()
	var now api.VM
	// The record catches up with a restarted agent by its heartbeats.
	c.eventually(30*time.Second, vm.Name+" running on its host", func() error {
		var err error
		if now, err = c.client.VM(bg, vm.Name); err == nil && now.State != api.VMRunning {
			err = fmt.Errorf("vm is %s (%s)", now.State, now.StateReason)
		}
		return err
	})
	var holders []string
	for _, h := range hosts {
		if rep, err := c.agentAPI(h).VM(bg, vm.ID); err == nil {
			holders = append(holders, h+":"+rep.State)
		}
		if h == now.Host {
			continue
		}
		for _, p := range []string{filepath.Join(c.stateDir(h), "fake", "vms", vm.ID), filepath.Join(c.stateDir(h), "qemu", "vms", vm.ID),
			filepath.Join(c.stateDir(h), "pool", vm.ID+".qcow2"), filepath.Join(c.stateDir(h), "pool", vm.ID+".qcow2.part")} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s keeps %s of vm %s, which runs on %s", h, p, vm.Name, now.Host)
			}
		}
	}
	if len(holders) != 1 || holders[0] != now.Host+":running" {
		t.Errorf("vm %s: copies on %v, record says %s on %s; want one running copy where the record says", vm.Name, holders, now.State, now.Host)
	}
	all, _ := c.client.VMs(bg)
	hs, _ := c.client.Hosts(bg)
	for _, h := range hs {
		want := 0
		for _, v := range all {
			if v.Host == h.Name {
				want++
			}
		}
		if h.VMs != want {
			t.Errorf("%s counts %d VMs; want %d (a leaked or lost claim)", h.Name, h.VMs, want)
		}
	}
	return now
}
