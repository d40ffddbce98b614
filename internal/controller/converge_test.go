package controller_test

import (
	"context"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// The convergence engine end to end on the fake driver's pre-copy
// physics: a guest dirtying 200 MB/s of a 64 MiB hot set, against a
// 100 MB/s cap, never converges with plain pre-copy (TestForceComplete).
// The auto policy measures it before the move, predicts that, and
// chooses post-copy when the move permits it and throttling when not;
// the record explains the choice.
func TestConvergenceEngine(t *testing.T) {
	tc := newTestCluster(t, 2, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	for _, tt := range []struct {
		name      string
		req       api.MigrateRequest
		strategy  api.Strategy  // the driver's, on the record
		engine    api.Technique // Convergence.Strategy
		decisions []string      // the first decisions, in order
		also      string        // what may follow them
	}{
		{"auto", api.MigrateRequest{Kind: api.KindLive, BandwidthMBPerS: 100},
			"shared-storage/pre-copy+post-copy", "post-copy", []string{"post-copy", "start post-copy"}, ""},
		{"auto-no-post-copy", api.MigrateRequest{Kind: api.KindLive, BandwidthMBPerS: 100, NoPostCopy: true},
			"shared-storage/pre-copy+auto-converge", "auto-converge", []string{"auto-converge"}, "throttle"},
		{"post-copy-policy", api.MigrateRequest{Kind: api.KindLive, BandwidthMBPerS: 100, Policy: api.PolicyPostCopy},
			"shared-storage/pre-copy+post-copy", "post-copy", []string{"plan", "start post-copy"}, ""},
		{"auto-converge-policy", api.MigrateRequest{Kind: api.KindLive, BandwidthMBPerS: 100, Policy: api.PolicyAutoConverge},
			"shared-storage/pre-copy+auto-converge", "auto-converge", nil, ""},
		// An older client names the cap bandwidth_mbps: the same 100 MB/s
		// reaches the driver.
		{"old-bandwidth-name", api.MigrateRequest{Kind: api.KindLive, BandwidthMBps: 100, Policy: api.PolicyAutoConverge},
			"shared-storage/pre-copy+auto-converge", "auto-converge", nil, ""},
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
			got := waitMigration(t, tc.client, m.ID)
			if got.State != api.MigCompleted || got.Strategy != tt.strategy {
				t.Fatalf("ended %s via %q (%s); want completed via %q", got.State, got.Strategy, got.Reason, tt.strategy)
			}
			wantPolicy := tt.req.Policy
			if wantPolicy == "" {
				wantPolicy = api.PolicyAuto
			}
			cv := got.Convergence
			if got.Policy != wantPolicy || cv == nil || cv.Policy != wantPolicy || cv.Strategy != tt.engine {
				t.Fatalf("policy %q, convergence %+v; want policy %q, strategy %q", got.Policy, cv, wantPolicy, tt.engine)
			}
			if got.BandwidthMBPerS != 100 || cv.Bandwidth != 100e6 || cv.PostCopyAllowed != (tt.engine == "post-copy") {
				t.Errorf("cap %d MB/s, convergence %+v: want bandwidth 100 MB/s, post-copy allowed %v", got.BandwidthMBPerS, cv, tt.engine == "post-copy")
			}
			var actions []string
			for i, d := range got.Decisions {
				if i < len(tt.decisions) || d.Action != tt.also {
					actions = append(actions, d.Action)
				}
			}
			if strings.Join(actions, ",") != strings.Join(tt.decisions, ",") {
				t.Errorf("decisions %q; want %q then only %q (%+v)", actions, tt.decisions, tt.also, got.Decisions)
			}
			if wantPolicy == api.PolicyAuto && (cv.DirtyRate <= 0 || !strings.Contains(cv.DirtyRateSource, "page-sampling") || cv.Prediction == "") {
				t.Errorf("the auto policy measured and predicted nothing: %+v", cv)
			}
			t.Logf("%s: %d passes, %d ms, downtime %d ms; %s", tt.name, got.Progress.Pass, got.Progress.TotalTimeMS, got.Progress.DowntimeMS, cv.Prediction)
		})
	}
}

func TestPolicyBadInput(t *testing.T) {
	tc := newTestCluster(t, 2, 1024)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	for _, vm := range []api.CreateVMRequest{
		{Name: "shared", Image: "guest", Pool: api.PoolShared, Host: "host1", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}},
		{Name: "local", Image: "guest", Pool: api.PoolLocal, Host: "host1", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 16}},
	} {
		if _, err := tc.client.CreateVM(ctx, vm); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		vm   string
		req  api.MigrateRequest
		code string
		says string
	}{
		{"shared", api.MigrateRequest{Kind: api.KindLive, Policy: "fast"}, api.CodeInvalid, "auto, pre-copy, auto-converge, post-copy"},
		{"shared", api.MigrateRequest{Kind: api.KindLive, NoPostCopy: true, PostCopy: true}, api.CodeInvalid, "contradicts"},
		{"shared", api.MigrateRequest{Kind: api.KindLive, NoPostCopy: true, Policy: api.PolicyPostCopy}, api.CodeInvalid, "contradicts"},
		{"shared", api.MigrateRequest{Kind: api.KindCold, Policy: api.PolicyAuto}, api.CodeInvalid, "live migrations"},
		{"local", api.MigrateRequest{Kind: api.KindLive, Policy: api.PolicyPostCopy}, api.CodeNotSupported, "block copy"},
	} {
		_, err := tc.client.Migrate(ctx, tt.vm, tt.req)
		if !api.IsCode(err, tt.code) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s %+v: %v; want %s saying %q", tt.vm, tt.req, err, tt.code, tt.says)
		}
	}
	if _, err := tc.client.Drain(ctx, "host1", api.DrainRequest{Policy: "fast"}); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("drain with an unknown policy: %v; want 400", err)
	}
	if ms, _ := tc.client.Migrations(ctx, ""); len(ms) != 0 {
		t.Errorf("bad requests left %d migrations", len(ms))
	}
	// A local-disk VM under the auto policy moves by block copy, without
	// post-copy: permitted only where possible.
	m, err := tc.client.Migrate(ctx, "local", api.MigrateRequest{Kind: api.KindLive})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitMigration(t, tc.client, m.ID); got.State != api.MigCompleted || got.PostCopy {
		t.Errorf("local-disk auto move: %s, post-copy %v", got.State, got.PostCopy)
	}
}
