package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/agent"
	"github.com/godwit/godwit/internal/controller"
	"github.com/godwit/godwit/internal/service"
)

// A controller that sees the shared pool evacuates a dead host without
// the operator's word once the host's lease expired, and not before.
func TestEvacuateWaitsForLease(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	shared := t.TempDir()
	ctrl, err := controller.New(ctx, controller.Config{Config: service.Config{DataDir: t.TempDir(), SharedDir: shared, HostDownAfter: time.Second, Logger: quietLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	done := make(chan struct{})
	go func() { _ = ctrl.Serve(ctx, ln); close(done) }()
	tc := &testCluster{url: "http://" + ln.Addr().String(), ctx: ctx}
	tc.client = api.NewClient(tc.url)
	for i := 1; i <= 2; i++ {
		tc.agents = append(tc.agents, &testAgent{cfg: agent.Config{
			Name: fmt.Sprintf("host%d", i), Controller: tc.url, StateDir: t.TempDir(), SharedDir: shared,
			Driver: "fake", HeartbeatInterval: 100 * time.Millisecond, CPUs: 4, MemoryMiB: 2048, Logger: quietLogger(),
			LeaseRenew: 100 * time.Millisecond, LeaseTTL: time.Second,
		}})
		tc.startAgent(t, i)
	}
	t.Cleanup(func() {
		cancel()
		for _, a := range tc.agents {
			if a.done != nil {
				<-a.done
			}
		}
		<-done
		ctrl.Close()
	})
	waitFor(t, 10*time.Second, "host1's lease renewing", func() error {
		h, err := tc.client.Host(ctx, "host1")
		if err == nil && (h.Lease == nil || h.Lease.State != "renewing") {
			err = fmt.Errorf("lease %+v", h.Lease)
		}
		return err
	})
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "s1", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 64}}); err != nil {
		t.Fatal(err)
	}

	tc.stopAgent(1)
	stopped := time.Now()
	waitFor(t, 10*time.Second, "host1 down", func() error {
		if h, _ := tc.client.Host(ctx, "host1"); h.State != api.HostDown {
			return fmt.Errorf("host1 is %s", h.State)
		}
		return nil
	})
	_, err = tc.client.Evacuate(ctx, "host1", api.EvacuateRequest{})
	wantAPIError(t, err, 409, "retry")
	t.Logf("refused %s after the agent stopped: %v", time.Since(stopped).Round(time.Millisecond), err)

	var in api.Intent
	waitFor(t, 10*time.Second, "evacuate accepted", func() error {
		in, err = tc.client.Evacuate(ctx, "host1", api.EvacuateRequest{})
		return err
	})
	// TTL 1 s plus the 1 s margin, counted from the controller's first
	// read of the last renewal, which came before the stop.
	if took := time.Since(stopped); took < 1500*time.Millisecond {
		t.Errorf("evacuate accepted %s after the last renewal; the lease cannot have expired", took)
	}
	if !strings.Contains(strings.Join(in.Notes, "\n"), "proven down: the lease of host host1") {
		t.Errorf("intent notes %q; want the lease as proof", in.Notes)
	}
	h, _ := tc.client.Host(ctx, "host1")
	if h.Lease == nil || h.Lease.State != "expired" {
		t.Errorf("host1's lease %+v; want expired", h.Lease)
	}
	in = waitIntent(t, tc.client, in.ID, 30*time.Second)
	if vm, _ := tc.client.VM(ctx, "s1"); in.State != api.IntentCompleted || vm.Host != "host2" || vm.State != api.VMRunning {
		t.Fatalf("evacuate %s; s1 %s on %s", in.State, vm.State, vm.Host)
	}
	if _, err := os.Stat(filepath.Join(shared, "leases", "host2.lease")); err != nil {
		t.Error(err)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %v", d, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
