package controller_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// The cluster's settings: unset until set, with the built-in defaults
// beside them; a bad value refused with what to do; a set value used by
// what leaves it out — a drain's plan and limits, a migration's tuning —
// while a request's own value still wins.
func TestClusterSettings(t *testing.T) {
	tc := newTestClusterSized(t, 4, 8192, 8192)
	ctx := context.Background()
	r, err := tc.client.ClusterSettings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Settings.MaxPerSource != 0 || r.Defaults.MaxPerSource != 2 || r.Defaults.Policy != api.PolicyAuto {
		t.Fatalf("fresh settings = %+v; want none set, built-in max_per_source 2 and policy auto", r)
	}

	for _, tt := range []struct{ body, want string }{
		{`{"max_per_source": -1}`, "max_per_source must be between 1 and 64"},
		{`{"bandwidth_mb_per_s": 1000000}`, "bandwidth_mb_per_s must be between 1 and"},
		{`{"policy": "fast"}`, `policy "fast" is unknown`},
		{`{"max_transfers_per_source": 3}`, "cannot exceed max_per_source (2)"},
		{`{"max_per_sorce": 3}`, "unknown field"},
	} {
		status, e := tc.raw(t, http.MethodPatch, "/v1/cluster/settings", "application/json", tt.body)
		if status != http.StatusBadRequest || !strings.Contains(e.Message, tt.want) {
			t.Errorf("PATCH %s: %d %q; want 400 saying %q", tt.body, status, e.Message, tt.want)
		}
	}

	three, bw, policy := 3, 77, api.PolicyPreCopy
	r, err = tc.client.UpdateClusterSettings(ctx, api.ClusterSettingsUpdate{MaxPerSource: &three, BandwidthMBPerS: &bw, Policy: &policy})
	if err != nil {
		t.Fatal(err)
	}
	if r.Settings.MaxPerSource != 3 || r.Settings.BandwidthMBPerS != 77 || r.Settings.Policy != api.PolicyPreCopy || r.Settings.MaxPerCluster != 0 {
		t.Fatalf("settings after set = %+v", r.Settings)
	}
	if again, _ := tc.client.ClusterSettings(ctx); again.Settings != r.Settings {
		t.Errorf("settings read back = %+v; want %+v", again.Settings, r.Settings)
	}

	tc.importFakeKernel(t, "guest")
	for _, name := range []string{"a", "b"} {
		if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: "guest", Pool: api.PoolShared, Host: "host1",
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256}}); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := tc.client.Drain(ctx, "host1", api.DrainRequest{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(plan.Notes, "\n")
	if !strings.Contains(notes, "at most 3 moves out of host1") || !strings.Contains(notes, "crosses at 77 MB/s") {
		t.Errorf("drain plan notes:\n%s\nwant the cluster's max_per_source 3 and 77 MB/s", notes)
	}
	if plan, err = tc.client.Drain(ctx, "host1", api.DrainRequest{DryRun: true, MaxPerSource: 1}); err != nil ||
		!strings.Contains(strings.Join(plan.Notes, "\n"), "at most 1 moves out of host1") {
		t.Errorf("a drain's own max_per_source 1: notes %v, %v; want it to win", plan.Notes, err)
	}

	m, err := tc.client.Migrate(ctx, "a", api.MigrateRequest{Kind: api.KindLive})
	if err != nil {
		t.Fatal(err)
	}
	if m.BandwidthMBPerS != 77 || m.Policy != api.PolicyPreCopy {
		t.Errorf("migration of a = bandwidth %d, policy %q; want the cluster's 77 and pre-copy", m.BandwidthMBPerS, m.Policy)
	}
	m, err = tc.client.Migrate(ctx, "b", api.MigrateRequest{Kind: api.KindLive, BandwidthMBps: 10, Policy: api.PolicyAuto})
	if err != nil {
		t.Fatal(err)
	}
	if m.BandwidthMBPerS != 10 || m.Policy != api.PolicyAuto {
		t.Errorf("migration of b = bandwidth %d, policy %q; want its own 10 and auto", m.BandwidthMBPerS, m.Policy)
	}

	zero, empty := 0, api.Policy("")
	if r, err = tc.client.UpdateClusterSettings(ctx, api.ClusterSettingsUpdate{BandwidthMBPerS: &zero, Policy: &empty}); err != nil {
		t.Fatal(err)
	}
	if r.Settings.BandwidthMBPerS != 0 || r.Settings.Policy != "" || r.Settings.MaxPerSource != 3 {
		t.Errorf("settings after unsetting two = %+v; want those unset and max_per_source kept", r.Settings)
	}
}
