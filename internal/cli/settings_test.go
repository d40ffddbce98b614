package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// settingsRoutes answers the settings endpoints: one setting set, the
// built-in defaults beside it; a PATCH echoes what it was given.
func settingsRoutes(record func(string, http.HandlerFunc)) {
	defaults := api.ClusterSettings{Policy: api.PolicyAuto, MaxPerSource: 2, MaxTransfersPerSource: 1, MaxPerDestination: 1, MaxPerCluster: 4}
	record("GET /v1/cluster/settings", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.ClusterSettingsReply{Settings: api.ClusterSettings{MaxPerCluster: 8}, Defaults: defaults})
	})
	record("PATCH /v1/cluster/settings", func(w http.ResponseWriter, r *http.Request) {
		var u api.ClusterSettingsUpdate
		json.NewDecoder(r.Body).Decode(&u)
		s := api.ClusterSettings{MaxPerCluster: 8}
		if u.BandwidthMBPerS != nil {
			s.BandwidthMBPerS = *u.BandwidthMBPerS
		}
		if u.Policy != nil {
			s.Policy = *u.Policy
		}
		if u.InsecureMigration != nil {
			s.InsecureMigration = *u.InsecureMigration
		}
		json.NewEncoder(w).Encode(api.ClusterSettingsReply{Settings: s, Defaults: defaults})
	})
}

func TestClusterSettingsCommands(t *testing.T) {
	srv := newFakeController(t)
	out := mustRun(t, srv.Server, "cluster", "settings", "show")
	for _, want := range []string{"max-per-cluster           8 ", "max-per-source            2 (built-in)", "policy                    auto (built-in)",
		"bandwidth                 QEMU's cap (built-in)    MB/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster settings show: no %q in\n%s", want, out)
		}
	}
	var r api.ClusterSettingsReply
	if err := json.Unmarshal([]byte(mustRun(t, srv.Server, "cluster", "settings", "show", "-o", "json")), &r); err != nil || r.Settings.MaxPerCluster != 8 {
		t.Errorf("cluster settings show -o json: %+v, %v", r, err)
	}

	out = mustRun(t, srv.Server, "cluster", "settings", "set", "--bandwidth", "200", "--policy", "")
	if !strings.Contains(out, "bandwidth                 200") {
		t.Errorf("cluster settings set:\n%s", out)
	}
	// Only the flags given are sent: 0 and "" are values, absent is none.
	if got := string(srv.body("PATCH /v1/cluster/settings")); got != `{"bandwidth_mb_per_s":200,"policy":""}` {
		t.Errorf("PATCH body = %s", got)
	}
	out = mustRun(t, srv.Server, "cluster", "settings", "set", "--insecure-migration=true")
	if !strings.Contains(out, "insecure-migration        true") {
		t.Errorf("cluster settings set --insecure-migration=true:\n%s", out)
	}
	if got := string(srv.body("PATCH /v1/cluster/settings")); got != `{"insecure_migration":true}` {
		t.Errorf("PATCH body = %s", got)
	}
	// false is a value too: the setting turned off, not left alone.
	mustRun(t, srv.Server, "cluster", "settings", "set", "--insecure-migration=false")
	if got := string(srv.body("PATCH /v1/cluster/settings")); got != `{"insecure_migration":false}` {
		t.Errorf("PATCH body = %s", got)
	}
	if _, errOut, code := run(t, srv.Server, "cluster", "settings", "set"); code != 2 || !strings.Contains(errOut, "nothing to change") {
		t.Errorf("cluster settings set without flags: exit %d, %q; want 2 and what to do", code, errOut)
	}
}
