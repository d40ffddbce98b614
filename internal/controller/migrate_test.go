package controller_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

func waitMigration(t *testing.T, c *api.Client, id string) api.Migration {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := c.Migration(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		switch m.State {
		case api.MigCompleted, api.MigRolledBack, api.MigCancelled, api.MigNeedsAttention:
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("migration %s still %s", id, m.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every bad migrate request gets a clear 4xx and changes nothing.
func TestMigrateBadInput(t *testing.T) {
	tc := newTestClusterSized(t, 2, 1024, 1024, 256)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	mk := func(name, pool, host string, mem int) {
		if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: "guest", Pool: pool, Host: host,
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: mem, DiskMiB: 64}}); err != nil {
			t.Fatal(err)
		}
	}
	mk("web", api.PoolShared, "host1", 512)
	mk("local", api.PoolLocal, "host1", 128)
	mk("stopped", api.PoolShared, "host1", 128)
	if _, err := tc.client.VMAction(ctx, "stopped", "stop", api.VMActionRequest{Force: true}); err != nil {
		t.Fatal(err)
	}
	// A slow migration, to be "already moving" (the fake reads the guest's
	// dirty rate from its command line; this one never converges at 1 MB/s
	// with plain pre-copy).
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "busy", Image: "guest", Pool: api.PoolShared, Host: "host2",
		Cmdline: "dirty_mb=64 dirty_rate_mb=50", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}}); err != nil {
		t.Fatal(err)
	}
	moving, err := tc.client.Migrate(ctx, "busy", api.MigrateRequest{Kind: api.KindLive, To: "host1", BandwidthMBPerS: 1, Policy: api.PolicyPreCopy})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := tc.client.VMs(ctx)

	live := func(extra string) string { return `{"kind":"live"` + extra + `}` }
	for _, tt := range []struct {
		name, vm, body string
		status         int
		code, msg      string
	}{
		{"unknown vm", "nope", live(""), 404, api.CodeNotFound, "godwit vm list"},
		{"unknown host", "web", live(`,"to":"host9"`), 400, api.CodeInvalid, "godwit host list"},
		{"same host", "web", live(`,"to":"host1"`), 400, api.CodeInvalid, "already runs on host1"},
		{"full host", "web", live(`,"to":"host3"`), 409, api.CodeNoCapacity, "MiB memory free"},
		{"stopped vm live", "stopped", live(""), 409, api.CodeConflict, "running VM"},
		{"already moving", "busy", live(`,"to":"host3"`), 409, api.CodeConflict, "migration in progress"},
		{"unknown kind", "web", `{"kind":"teleport"}`, 400, api.CodeInvalid, "live or cold"},
		{"negative downtime", "web", live(`,"max_downtime_ms":-1`), 400, api.CodeInvalid, "max_downtime_ms"},
		{"absurd bandwidth", "web", live(`,"bandwidth_mb_per_s":1000000000`), 400, api.CodeInvalid, "bandwidth_mb_per_s"},
		// The cap's old name is read, as the same cap.
		{"absurd bandwidth, old name", "web", live(`,"bandwidth_mbps":1000000000`), 400, api.CodeInvalid, "bandwidth_mb_per_s must be"},
		{"two bandwidths", "web", live(`,"bandwidth_mbps":10,"bandwidth_mb_per_s":20`), 400, api.CodeInvalid, "send one"},
		{"unknown field", "web", live(`,"speed":"fast"`), 400, api.CodeInvalid, "speed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, e := tc.raw(t, "POST", "/v1/vms/"+tt.vm+"/migrate", "application/json", tt.body)
			if status != tt.status || e.Code != tt.code || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("migrate %s %s = %d %s %q; want %d %s containing %q", tt.vm, tt.body, status, e.Code, e.Message, tt.status, tt.code, tt.msg)
			}
		})
	}
	if status, e := tc.raw(t, "POST", "/v1/migrations/nope/abort", "application/json", "{}"); status != 404 {
		t.Errorf("abort of an unknown migration = %d %+v", status, e)
	}

	after, _ := tc.client.VMs(ctx)
	for i := range before {
		if before[i].Host != after[i].Host || before[i].State != after[i].State {
			t.Errorf("vm %s changed: %s/%s → %s/%s", before[i].Name, before[i].Host, before[i].State, after[i].Host, after[i].State)
		}
	}
	if ms, _ := tc.client.Migrations(ctx, ""); len(ms) != 1 {
		t.Errorf("bad requests left migration records: %d", len(ms))
	}
	// The slow one aborts cleanly: cancelled, the VM where it was.
	if _, err := tc.client.AbortMigration(ctx, moving.ID); err != nil {
		t.Fatal(err)
	}
	if m := waitMigration(t, tc.client, moving.ID); m.State != api.MigCancelled {
		t.Errorf("aborted migration ended %s (%s)", m.State, m.Reason)
	}
	if vm, _ := tc.client.VM(ctx, "busy"); vm.Host != "host2" || vm.State != api.VMRunning {
		t.Errorf("after abort busy is on %s, %s", vm.Host, vm.State)
	}
	if _, err := tc.client.AbortMigration(ctx, moving.ID); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("abort of an ended migration: %v; want 409", err)
	}
}

// 200 simultaneous migrate requests onto a small cluster: every accepted
// one completes, the rest are refused for capacity, and no host ever
// holds more than it offers.
func TestConcurrentMigrationsRespectCapacity(t *testing.T) {
	// host1 holds 200 VMs of 64 MiB; hosts 2–5 offer 1 GiB each: room
	// for 64 of them in all.
	tc := newTestClusterSized(t, 256, 200*64, 1024, 1024, 1024, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	for i := 0; i < 200; i++ {
		if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: fmt.Sprintf("vm-%03d", i), Image: "guest", Pool: api.PoolShared,
			Host: "host1", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var accepted []string
	refused := 0
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m, err := tc.client.Migrate(ctx, fmt.Sprintf("vm-%03d", i), api.MigrateRequest{Kind: api.KindLive})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted = append(accepted, m.ID)
			case api.IsCode(err, api.CodeNoCapacity):
				refused++
			default:
				t.Errorf("migrate vm-%03d: %v", i, err)
			}
		}(i)
	}
	// Sample the hosts while the migrations run: claims must keep every
	// destination within its memory at every moment.
	stop := make(chan struct{})
	sampled := make(chan int)
	go func() {
		n := 0
		defer func() { sampled <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			hs, err := tc.client.Hosts(ctx)
			if err == nil {
				n++
				for _, h := range hs {
					if h.AllocatedMemoryMiB > h.MemoryMiB {
						t.Errorf("%s holds %d MiB of %d", h.Name, h.AllocatedMemoryMiB, h.MemoryMiB)
					}
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	wg.Wait()
	completed := 0
	for _, id := range accepted {
		if m := waitMigration(t, tc.client, id); m.State == api.MigCompleted {
			completed++
		} else {
			t.Errorf("migration %s ended %s: %s", id, m.State, m.Reason)
		}
	}
	close(stop)
	samples := <-sampled
	if len(accepted) != 64 || refused != 136 || completed != 64 {
		t.Errorf("accepted %d, refused %d, completed %d; want 64, 136, 64", len(accepted), refused, completed)
	}
	hs, _ := tc.client.Hosts(ctx)
	for _, h := range hs {
		if h.Name != "host1" && (h.VMs != 16 || h.AllocatedMemoryMiB != 1024) {
			t.Errorf("%s ends with %d VMs, %d MiB; want 16, 1024", h.Name, h.VMs, h.AllocatedMemoryMiB)
		}
	}
	t.Logf("200 requests: %d accepted and completed, %d refused for capacity; %d capacity samples taken during the run", completed, refused, samples)
}

// Cold migrations on the fake driver: shared-pool restart and local-disk
// transfer, each ending with the VM where it should be and the disk's
// content identical.
func TestColdMigration(t *testing.T) {
	tc := newTestCluster(t, 2, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	for _, tt := range []struct {
		vm, pool string
		strategy api.Strategy
	}{
		{"shared-vm", api.PoolShared, "shared-storage/cold-restart"},
		{"local-vm", api.PoolLocal, "local-disk/disk-transfer"},
	} {
		t.Run(tt.pool, func(t *testing.T) {
			vm, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: tt.vm, Image: "guest", Pool: tt.pool, Host: "host1",
				Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 16}})
			if err != nil {
				t.Fatal(err)
			}
			m, err := tc.client.Migrate(ctx, tt.vm, api.MigrateRequest{Kind: api.KindCold})
			if err != nil {
				t.Fatal(err)
			}
			m = waitMigration(t, tc.client, m.ID)
			if m.State != api.MigCompleted || m.Strategy != tt.strategy || m.Destination != "host2" {
				t.Fatalf("migration %s via %q to %s: %s", m.State, m.Strategy, m.Destination, m.Reason)
			}
			got, _ := tc.client.VM(ctx, tt.vm)
			if got.Host != "host2" || got.State != api.VMRunning || got.PID == 0 {
				t.Errorf("after the move: host %s state %s pid %d (was %d)", got.Host, got.State, got.PID, vm.PID)
			}
			if tt.pool == api.PoolLocal && (m.Progress.DiskTotal == 0 || m.Progress.DiskTransferred != m.Progress.DiskTotal) {
				t.Errorf("disk progress %d of %d", m.Progress.DiskTransferred, m.Progress.DiskTotal)
			}
		})
	}
}

// A live migration that cannot converge (the guest dirties faster than the
// bandwidth) finishes when forced, and the record says what was done.
func TestForceComplete(t *testing.T) {
	tc := newTestCluster(t, 2, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "hot", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Cmdline: "dirty_mb=64 dirty_rate_mb=200", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}}); err != nil {
		t.Fatal(err)
	}
	// Plain pre-copy: the engine would make it converge by itself.
	m, err := tc.client.Migrate(ctx, "hot", api.MigrateRequest{Kind: api.KindLive, BandwidthMBPerS: 100, Policy: api.PolicyPreCopy})
	if err != nil {
		t.Fatal(err)
	}
	// (No "complete before the transfer" here: the transfer may already
	// have begun, and a forced completion would then be accepted. The 409
	// for a migration that is not transferring is checked at the end.)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := tc.client.Migration(ctx, m.ID)
		if got.Progress.Pass >= 3 {
			break // several passes and still going: it does not converge
		}
		if got.State != api.MigTransferring && got.State != api.MigPreparing && got.State != api.MigScheduling {
			t.Fatalf("migration %s before it was forced: %s", got.State, got.Reason)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no third pass: %+v", got.Progress)
		}
		time.Sleep(20 * time.Millisecond)
	}
	forced, err := tc.client.CompleteMigration(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(forced.Decisions) != 1 || !strings.Contains(forced.Decisions[0].Action, "paused the guest") {
		t.Errorf("decisions = %+v", forced.Decisions)
	}
	if got := waitMigration(t, tc.client, m.ID); got.State != api.MigCompleted {
		t.Fatalf("forced migration ended %s: %s", got.State, got.Reason)
	}
	if vm, _ := tc.client.VM(ctx, "hot"); vm.Host != "host2" || vm.State != api.VMRunning {
		t.Errorf("after the forced move: %s %s", vm.Host, vm.State)
	}
	if _, err := tc.client.CompleteMigration(ctx, m.ID); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("complete of a finished migration: %v; want 409", err)
	}
}

// The convergence options on the fake's pre-copy physics: auto-converge
// throttles a guest that out-dirties the bandwidth until the migration
// converges by itself; post-copy lets a forced completion switch over at
// once, with the guest running on.
func TestConvergenceOptions(t *testing.T) {
	tc := newTestCluster(t, 2, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	for _, tt := range []struct {
		name     string
		req      api.MigrateRequest
		force    bool
		strategy api.Strategy
		decision string
	}{
		{"auto-converge", api.MigrateRequest{Kind: api.KindLive, BandwidthMBPerS: 100, AutoConverge: true}, false, "shared-storage/pre-copy+auto-converge", ""},
		{"post-copy", api.MigrateRequest{Kind: api.KindLive, BandwidthMBPerS: 100, PostCopy: true, Policy: api.PolicyPreCopy}, true, "shared-storage/pre-copy+post-copy", "switched to post-copy"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: tt.name, Image: "guest", Pool: api.PoolShared, Host: "host1",
				Cmdline: "dirty_mb=64 dirty_rate_mb=200", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}}); err != nil {
				t.Fatal(err)
			}
			m, err := tc.client.Migrate(ctx, tt.name, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if tt.force {
				deadline := time.Now().Add(10 * time.Second)
				for {
					got, _ := tc.client.Migration(ctx, m.ID)
					if got.Progress.Pass >= 3 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("no third pass: %+v", got)
					}
					time.Sleep(20 * time.Millisecond)
				}
				if _, err := tc.client.CompleteMigration(ctx, m.ID); err != nil {
					t.Fatal(err)
				}
			}
			got := waitMigration(t, tc.client, m.ID)
			if got.State != api.MigCompleted || got.Strategy != tt.strategy {
				t.Fatalf("ended %s via %q (%s); want completed via %q", got.State, got.Strategy, got.Reason, tt.strategy)
			}
			if tt.decision != "" && (len(got.Decisions) != 1 || !strings.Contains(got.Decisions[0].Action, tt.decision)) {
				t.Errorf("decisions = %+v", got.Decisions)
			}
			t.Logf("%s: %d passes, downtime %d ms", tt.name, got.Progress.Pass, got.Progress.DowntimeMS)
		})
	}
	if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "local-pc", Image: "guest", Pool: api.PoolLocal, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 16}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.client.Migrate(ctx, "local-pc", api.MigrateRequest{Kind: api.KindLive, PostCopy: true}); !api.IsCode(err, api.CodeNotSupported) {
		t.Errorf("post-copy with a block copy: %v; want 422", err)
	}
	if _, err := tc.client.Migrate(ctx, "local-pc", api.MigrateRequest{Kind: api.KindCold, AutoConverge: true}); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("auto-converge on a cold migration: %v; want 400", err)
	}
}

// A destination whose agent offers a migration target off its
// registered address (here another loopback address: an impostor, or a
// proxy that rewrites the reply) is refused: the move rolls back, the
// source never sends, the VM runs where it ran and the destination keeps
// no copy.
func TestMigrationTargetOffRegisteredAddress(t *testing.T) {
	rewrite := func(agentURL string) http.Handler {
		u, _ := url.Parse(agentURL)
		p := httputil.NewSingleHostReverseProxy(u)
		p.ModifyResponse = func(resp *http.Response) error {
			if !strings.HasSuffix(resp.Request.URL.Path, "/incoming") || resp.StatusCode != http.StatusOK {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			b = bytes.ReplaceAll(b, []byte("tcp:127.0.0.1:"), []byte("tcp:127.0.0.2:"))
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		}
		return p
	}
	tc := newTestClusterWith(t, clusterOptions{fronts: map[int]func(string) http.Handler{2: rewrite}}, 2, 1024, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	vm, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "web", Image: "guest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := tc.client.Migrate(ctx, "web", api.MigrateRequest{Kind: api.KindLive, To: "host2"})
	if err != nil {
		t.Fatal(err)
	}
	m = waitMigration(t, tc.client, m.ID)
	if m.State != api.MigRolledBack || !strings.Contains(m.Reason, "not its registered address") {
		t.Errorf("migration ended %s: %s; want rolled back, saying the target is not host2's registered address", m.State, m.Reason)
	}
	if got, _ := tc.client.VM(ctx, "web"); got.Host != "host1" || got.State != api.VMRunning {
		t.Errorf("web is on %s, %s; want running on host1", got.Host, got.State)
	}
	if rep, ok := tc.hostVM(t, 2, vm.ID); ok {
		t.Errorf("host2 kept a copy of web: %+v", rep)
	}
}
