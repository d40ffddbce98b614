package controller_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver/fake"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
)

// hostVM is what agent n reports of a VM; ok is false when it has none.
func (tc *testCluster) hostVM(t *testing.T, n int, id string) (hostapi.VMReport, bool) {
	t.Helper()
	rep, err := hostapi.NewAgent(tc.agents[n-1].cfg.Advertise, 5*time.Second).VM(context.Background(), id)
	if errors.Is(err, errs.ErrNotFound) {
		return rep, false
	}
	if err != nil {
		t.Fatalf("ask host%d: %v", n, err)
	}
	return rep, true
}

// twoHostsOneVM is a cluster of two fake hosts with the faults given
// (host1's, host2's) and one VM, web, on the shared pool of host1.
func twoHostsOneVM(t *testing.T, faults ...*fake.Faults) (*testCluster, api.VM) {
	t.Helper()
	c := newTestClusterWith(t, clusterOptions{faults: faults}, 2, 1024, 1024)
	c.importFakeKernel(t, "guest")
	vm, err := c.client.CreateVM(context.Background(), api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}})
	if err != nil {
		t.Fatal(err)
	}
	return c, vm
}

// A live move whose source sent everything but whose destination failed
// to resume the guest ends where the guest can safely run, and the
// record says so: never "rolled back" while the source's copy stays
// paused and nothing was undone.
func TestSwitchOverFailure(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(*fake.Faults)
		// what the move must end as, and where the VM must run
		state        api.MigrationState
		host, reason string
	}{
		{"destination never ran the guest", func(f *fake.Faults) {
			f.Fail("SwitchOver", 1, errors.New("load of migration failed: device state mismatch"))
		}, api.MigRolledBack, "host1", "runs on host1 again"},
		{"destination ran the guest, then failed", func(f *fake.Faults) {
			f.FailAfter("SwitchOver", 1, errors.New("connection reset after the guest resumed"))
		}, api.MigCompleted, "host2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake.Faults{}
			c, vm := twoHostsOneVM(t, nil, f)
			ctx := context.Background()
			before, _ := c.hostVM(t, 1, vm.ID)
			tc.fault(f)
			m, err := c.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive, To: "host2"})
			if err != nil {
				t.Fatal(err)
			}
			m = waitMigration(t, c.client, m.ID)
			if m.State != tc.state || !strings.Contains(m.Reason, tc.reason) {
				t.Errorf("migration ended %s (%s); want %s with a reason containing %q", m.State, m.Reason, tc.state, tc.reason)
			}
			got, _ := c.client.VM(ctx, "web")
			if got.Host != tc.host || got.State != api.VMRunning {
				t.Errorf("vm record: %s on %s; want running on %s", got.State, got.Host, tc.host)
			}
			other := map[string]int{"host1": 2, "host2": 1}[tc.host]
			if rep, has := c.hostVM(t, other, vm.ID); has {
				t.Errorf("host%d still has a copy (%s)", other, rep.State)
			}
			rep, has := c.hostVM(t, map[string]int{"host1": 1, "host2": 2}[tc.host], vm.ID)
			if !has || rep.State != "running" {
				t.Errorf("%s reports the vm %v, %q; want it running", tc.host, has, rep.State)
			}
			if tc.host == "host1" && rep.PID != before.PID {
				t.Errorf("the source's guest has pid %d, was %d: it must be resumed, not booted again", rep.PID, before.PID)
			}
		})
	}
}

// A destination that stays unreachable after the source sent everything
// may have run the guest or not: nothing is touched, and the record asks
// for attention, naming what to check.
func TestSwitchOverDestinationUnreachable(t *testing.T) {
	c := newTestClusterWith(t, clusterOptions{agentOutage: time.Second}, 2, 1024, 1024)
	ctx := context.Background()
	c.importFakeKernel(t, "guest")
	vm, err := c.client.CreateVM(ctx, api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}})
	if err != nil {
		t.Fatal(err)
	}
	// About four seconds of transfer at 32 MB/s: time to stop host2's
	// agent while the source sends (the fake's QEMUs outlive their agent,
	// so the source still completes).
	m, err := c.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive, To: "host2", BandwidthMBPerS: 32, Policy: api.PolicyPreCopy})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cur, err := c.client.Migration(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.State == api.MigTransferring {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("migration %s, not transferring, after 10 s", cur.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.stopAgent(2)
	m = waitMigration(t, c.client, m.ID)
	if m.State != api.MigNeedsAttention {
		t.Fatalf("migration ended %s (%s); want %s", m.State, m.Reason, api.MigNeedsAttention)
	}
	for _, want := range []string{"host2", "paused", "must never be resumed"} {
		if !strings.Contains(m.Reason, want) {
			t.Errorf("reason %q does not say %q", m.Reason, want)
		}
	}
	if got, _ := c.client.VM(ctx, "web"); got.Host != "host1" {
		t.Errorf("vm record names %s; want host1, untouched", got.Host)
	}
	if rep, has := c.hostVM(t, 1, vm.ID); !has || rep.State != "paused" {
		t.Errorf("host1's copy: %v, %q; want it kept paused", has, rep.State)
	}
	c.startAgent(t, 2)
	deadline = time.Now().Add(10 * time.Second)
	for {
		rep, err := hostapi.NewAgent(c.agents[1].cfg.Advertise, time.Second).VM(ctx, vm.ID)
		if err == nil {
			if rep.Incoming != "waiting" {
				t.Errorf("host2's copy reports incoming %q; want waiting", rep.Incoming)
			}
			break
		}
		if errors.Is(err, errs.ErrNotFound) || time.Now().After(deadline) {
			t.Fatalf("host2's copy: %v; want it kept", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An abort that reaches the source while it is already handing the guest
// over is too late for the source: its migration completes, its guest
// paused. The rollback must then resume the guest there (the destination
// never ran it) before it removes the destination's copy — not leave it
// paused, as it did until the load test with controller kills found it.
func TestAbortDuringHandoff(t *testing.T) {
	f := &fake.Faults{}
	c, vm := twoHostsOneVM(t, f, nil)
	ctx := context.Background()
	f.Delay("Handoff", 2*time.Second)
	// At 100 GB/s the one pass takes no time: the source is at once in
	// its handoff, where the delay holds it.
	m, err := c.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive, To: "host2", BandwidthMBPerS: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m, err = c.client.Migration(ctx, m.ID); err != nil || m.State == api.MigTransferring || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(500 * time.Millisecond) // well into the 2 s handoff
	if _, err := c.client.AbortMigration(ctx, m.ID); err != nil {
		t.Fatalf("abort in state %s: %v", m.State, err)
	}
	m = waitMigration(t, c.client, m.ID)
	if m.State != api.MigCancelled {
		t.Errorf("migration ended %s (%s); want cancelled", m.State, m.Reason)
	}
	if got, _ := c.client.VM(ctx, "web"); got.Host != "host1" || got.State != api.VMRunning {
		t.Errorf("vm record: %s on %s; want running on host1", got.State, got.Host)
	}
	if rep, has := c.hostVM(t, 1, vm.ID); !has || rep.State != "running" {
		t.Errorf("host1 reports the vm %v, %q; want it running (resumed after the late cancel)", has, rep.State)
	}
	if rep, has := c.hostVM(t, 2, vm.ID); has {
		t.Errorf("host2 still has a copy (%s)", rep.State)
	}
}
