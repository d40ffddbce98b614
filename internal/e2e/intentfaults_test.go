package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/hostapi"
)

// The controller is killed (SIGKILL, by a failpoint) at each named step of
// a drain and of an evacuation of a host holding three shared-pool VMs;
// after its restart the intent ends completed, every VM runs on exactly
// one host other than the drained or dead one, its record says which, and
// no claim is left. Fake driver (docs/reliability.md has the table).
func TestControllerKilledDuringIntents(t *testing.T) {
	var table []string
	for _, step := range []string{"after-plan", "move-started", "move-done"} {
		t.Run("drain-"+step, func(t *testing.T) {
			c := newCluster(t, clusterOpts{hosts: 3, driver: "fake"})
			vms := c.intentVictims()
			c.armController("drain/" + step)
			_, _ = c.client.Drain(bg, "host1", api.DrainRequest{}) // the reply may never come
			out := c.intentAfterKill("drain/"+step, vms, []string{"host1", "host2", "host3"})
			table = append(table, fmt.Sprintf("%-8s %-15s %s", "drain", step, out))
		})
	}
	for _, step := range []string{"after-plan", "before-rebuild", "after-rebuild"} {
		t.Run("evacuate-"+step, func(t *testing.T) {
			// Renewals every 500 ms: --host-is-down is refused while the
			// lease was renewed lately (as in TestEvacuateQEMU).
			c := newCluster(t, clusterOpts{hosts: 3, driver: "fake", downAfter: 3 * time.Second,
				agentArgs: []string{"--lease-renew", "500ms"}})
			vms := c.intentVictims()
			c.armController("evacuate/" + step)
			c.agents["host1"].kill(t)
			c.eventually(15*time.Second, "host1 down", func() error {
				if h, err := c.client.Host(bg, "host1"); err != nil || h.State != api.HostDown {
					return fmt.Errorf("host1 is %s (%v)", h.State, err)
				}
				return nil
			})
			c.eventually(15*time.Second, "evacuate accepted", func() error {
				_, err := c.client.Evacuate(bg, "host1", api.EvacuateRequest{HostIsDown: true})
				if api.IsCode(err, api.CodeConflict) {
					return err // the lease not lapsed yet
				}
				return nil // accepted, or the controller died answering
			})
			out := c.intentAfterKill("evacuate/"+step, vms, []string{"host2", "host3"})
			table = append(table, fmt.Sprintf("%-8s %-15s %s", "evacuate", step, out))
		})
	}
	t.Logf("controller kill -9 at each intent step → outcome after restart:\n%s", strings.Join(table, "\n"))
	faultTable(t, "intent-kills", table)
}

// intentVictims creates three running shared-pool VMs on host1.
func (c *cluster) intentVictims() []api.VM {
	t := c.t
	t.Helper()
	c.fakeGuestImage()
	var vms []api.VM
	for i := 1; i <= 3; i++ {
		vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: fmt.Sprintf("vm%d", i), Image: "testguest", Pool: api.PoolShared,
			Host: "host1", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 64}})
		if err != nil {
			t.Fatal(err)
		}
		vms = append(vms, vm)
	}
	c.eventually(30*time.Second, "the vms running", func() error {
		for _, vm := range vms {
			if v, err := c.client.VM(bg, vm.Name); err != nil || v.State != api.VMRunning {
				return fmt.Errorf("%s is %s (%v)", vm.Name, v.State, err)
			}
		}
		return nil
	})
	return vms
}

// armController restarts the controller with the failpoint armed.
func (c *cluster) armController(point string) {
	c.ctrl.stop(c.t)
	c.ctrlEnv = []string{failpoint.Env + "=" + point + "=kill"}
	c.startController()
	c.ctrlEnv = nil
}

// intentAfterKill waits for the armed controller to die, restarts it,
// waits for the host1 intent to end and checks that every VM runs on
// exactly one of hosts (never host1), where its record says, with no
// claim left. It returns the outcome for the table.
func (c *cluster) intentAfterKill(point string, vms []api.VM, hosts []string) string {
	t := c.t
	t.Helper()
	reached := true
	select {
	case <-c.ctrl.done:
	case <-time.After(30 * time.Second):
		reached = false
	}
	if reached {
		c.startController()
	}
	ins, err := c.client.Intents(bg)
	if err != nil || len(ins) == 0 {
		t.Fatalf("%s: no intent recorded: %v", point, err)
	}
	var id string
	for _, in := range ins {
		if in.Target == "host1" {
			id = in.ID
		}
	}
	if id == "" {
		t.Fatalf("%s: no intent for host1 in %+v", point, ins)
	}
	in := c.waitIntent(id, 60*time.Second)
	for _, op := range in.Operations {
		t.Logf("%s: %s %-5s %-8s %s → %-6s attempts %d: %s", point, op.VM, op.Kind, op.State, op.Source, op.Dest, op.Attempts, op.Reason)
	}
	if in.State != api.IntentCompleted {
		t.Errorf("%s: intent ended %s (%s); want completed", point, in.State, in.Reason)
	}
	per := map[string]int{}
	var where []string
	for _, vm := range vms {
		var holders []string
		for _, h := range hosts {
			rep, err := hostapi.NewAgent("http://"+c.agentAddrs[h], 5*time.Second).VM(bg, vm.ID)
			if err == nil {
				holders = append(holders, h+":"+rep.State)
			}
		}
		now, _ := c.client.VM(bg, vm.Name)
		per[now.Host]++
		where = append(where, now.Host)
		if len(holders) != 1 || holders[0] != now.Host+":running" || now.State != api.VMRunning || now.Host == "host1" {
			t.Errorf("%s: %s: copies on %v, record says %s on %s; want one running copy off host1 where the record says",
				point, vm.Name, holders, now.State, now.Host)
		}
	}
	hs, _ := c.client.Hosts(bg)
	for _, h := range hs {
		if h.VMs != per[h.Name] {
			t.Errorf("%s: %s counts %d VMs; want %d (a leaked or lost claim)", point, h.Name, h.VMs, per[h.Name])
		}
	}
	retried := 0
	for _, op := range in.Operations {
		if op.Attempts > 1 {
			retried++
		}
	}
	out := fmt.Sprintf("%s, vms on %s", in.State, strings.Join(where, ","))
	if retried > 0 {
		out += fmt.Sprintf(", %d op(s) retried", retried)
	}
	if !reached {
		out = "step not reached; " + out
	}
	return out
}
