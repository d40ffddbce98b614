package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// Plans, refusals, lists and watches, as the user reads them.
func TestIntentGolden(t *testing.T) {
	srv := newFakeController(t)
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr bool // the golden file holds stderr, not stdout
	}{
		{"drain-plan", []string{"drain", "host1", "--dry-run", "--on-failure", "cold", "--bandwidth", "125"}, 0, false},
		{"evacuate-refused", []string{"evacuate", "host2"}, 1, true},
		{"evacuate-plan", []string{"evacuate", "host2", "--host-is-down", "--dry-run"}, 0, false},
		{"resize-plan", []string{"resize", "web-1", "--vcpus", "4", "--memory", "2G", "--allow-move", "--dry-run"}, 0, false},
		{"rebuild-plan", []string{"rebuild", "web-1", "--image", "debian", "--dry-run"}, 0, false},
		{"migrate-plan", []string{"migrate", "web-1", "--dry-run"}, 0, false},
		{"intent-show", []string{"intent", "show", "in-8"}, 0, false},
		{"intent-show-completed", []string{"intent", "show", "in-6"}, 0, false},
		{"intent-show-missing", []string{"intent", "show", "in-1"}, 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, srv.Server, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			if tt.stderr {
				if out != "" {
					t.Errorf("stdout on failure: %q", out)
				}
				golden(t, tt.name, errOut)
				return
			}
			if errOut != "" {
				t.Errorf("stderr: %q", errOut)
			}
			golden(t, tt.name, out)
		})
	}
}

func TestIntentList(t *testing.T) {
	var out bytes.Buffer
	if err := writeIntents(&out, testIntents(), now); err != nil {
		t.Fatal(err)
	}
	golden(t, "intent-list", out.String())
	out.Reset()
	steps := watchSteps()
	if err := writeIntent(&out, steps[len(steps)-1]); err != nil {
		t.Fatal(err)
	}
	golden(t, "intent-show-partial", out.String())
	srv := newFakeController(t)
	if out := mustRun(t, srv.Server, "intent", "list"); !strings.HasPrefix(out, "ID  ") || strings.Count(out, "\n") != 4 {
		t.Errorf("intent list:\n%s", out)
	}
}

// The drain watch ends partial: the progress lines, the outcome of each
// VM, a non-zero exit and a pointer to the reasons.
func TestIntentWatchPartial(t *testing.T) {
	for _, args := range [][]string{{"intent", "watch", "in-7"}, {"drain", "host1", "--wait"}} {
		srv := newFakeController(t)
		out, errOut, code := run(t, srv.Server, args...)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1", args, code)
		}
		golden(t, "intent-watch-partial", out)
		if want := "godwit: intent in-7 ended partial; see each VM's reason above or with: godwit intent show in-7\n"; errOut != want {
			t.Errorf("%s: stderr %q, want %q", args, errOut, want)
		}
	}
}

// On a terminal the lines redraw in place (the escapes made visible here)
// and give way to the summary.
func TestIntentWatchTerminal(t *testing.T) {
	srv := newFakeController(t)
	out, _, code := runWith(context.Background(), srv.Server, true, "intent", "watch", "in-7")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	golden(t, "intent-watch-tty", strings.ReplaceAll(out, "\033[", "⎋["))
}

// Ctrl-C ends the watching, says the intent carries on and how to stop it.
func TestIntentWatchInterrupted(t *testing.T) {
	srv := newFakeController(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	out, errOut, code := runWith(ctx, srv.Server, false, "intent", "watch", "in-9")
	if code != 1 || !strings.Contains(errOut, "stopped watching; intent in-9 carries on") || !strings.Contains(errOut, "godwit intent cancel in-9") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "Ctrl-C stops watching, not the intent") {
		t.Errorf("stdout does not say what Ctrl-C does:\n%s", out)
	}
}

// Each flag lands in the request body, and nothing else does.
func TestIntentRequests(t *testing.T) {
	srv := newFakeController(t)
	for _, tt := range []struct {
		args  []string
		route string
		want  any
	}{
		{[]string{"drain", "host1", "--on-failure", "abort", "--max-per-source", "3", "--max-per-destination", "2",
			"--max-per-cluster", "5", "--bandwidth", "125", "--max-downtime", "200", "--dry-run"},
			"POST /v1/hosts/{name}/drain", api.DrainRequest{OnFailure: "abort", MaxPerSource: 3, MaxPerDestination: 2,
				MaxPerCluster: 5, BandwidthMBPerS: 125, MaxDowntimeMS: 200, DryRun: true}},
		// The flag's name before it took the API's still works.
		{[]string{"drain", "host1", "--max-parallel", "6"}, "POST /v1/hosts/{name}/drain", api.DrainRequest{MaxPerCluster: 6}},
		{[]string{"drain", "host1"}, "POST /v1/hosts/{name}/drain", api.DrainRequest{}},
		{[]string{"evacuate", "host2", "--host-is-down", "--allow-data-loss", "--dry-run"},
			"POST /v1/hosts/{name}/evacuate", api.EvacuateRequest{HostIsDown: true, AllowDataLoss: true, DryRun: true}},
		{[]string{"resize", "web-1", "--vcpus", "4", "--memory", "2GiB", "--disk", "20G", "--allow-restart", "--allow-move", "--dry-run"},
			"POST /v1/vms/{name}/resize", api.ResizeRequest{VCPUs: 4, MemoryMiB: 2048, DiskMiB: 20480, AllowRestart: true, AllowMove: true, DryRun: true}},
		{[]string{"resize", "web-1", "--memory", "512M"}, "POST /v1/vms/{name}/resize", api.ResizeRequest{MemoryMiB: 512}},
		{[]string{"resize", "web-1", "--vcpus", "4", "--hold"}, "POST /v1/vms/{name}/resize", api.ResizeRequest{VCPUs: 4, Hold: true}},
		{[]string{"intent", "confirm", "in-8"}, "POST /v1/intents/{id}/confirm", struct{}{}},
		{[]string{"intent", "revert", "in-8"}, "POST /v1/intents/{id}/revert", struct{}{}},
		{[]string{"rebuild", "web-1", "--image", "debian", "--dry-run"}, "POST /v1/vms/{name}/rebuild", api.RebuildRequest{Image: "debian", DryRun: true}},
		{[]string{"rebuild", "web-1"}, "POST /v1/vms/{name}/rebuild", api.RebuildRequest{}},
		{[]string{"migrate", "web-1"}, "POST /v1/vms/{name}/migrate", api.MigrateRequest{}},
		{[]string{"migrate", "web-1", "--cold", "--to", "host3", "--max-downtime", "100", "--bandwidth", "50", "--dry-run"},
			"POST /v1/vms/{name}/migrate", api.MigrateRequest{Kind: api.KindCold, To: "host3", MaxDowntimeMS: 100, BandwidthMBPerS: 50, DryRun: true}},
		{[]string{"migrate", "web-1", "--cold", "--hold"}, "POST /v1/vms/{name}/migrate", api.MigrateRequest{Kind: api.KindCold, Hold: true}},
		{[]string{"migrate", "web-1", "--hold"}, "POST /v1/vms/{name}/migrate", api.MigrateRequest{Kind: api.KindCold, Hold: true}},
		{[]string{"migrate", "web-1", "--live", "--post-copy", "--auto-converge"},
			"POST /v1/vms/{name}/migrate", api.MigrateRequest{Kind: api.KindLive, PostCopy: true, AutoConverge: true}},
		{[]string{"intent", "cancel", "in-7", "--abort-running"}, "POST /v1/intents/{id}/cancel", api.CancelIntentRequest{AbortRunning: true}},
		{[]string{"intent", "cancel", "in-7"}, "POST /v1/intents/{id}/cancel", api.CancelIntentRequest{}},
		{[]string{"host", "disable", "host1"}, "POST /v1/hosts/{name}/disable", struct{}{}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			mustRun(t, srv.Server, tt.args...)
			want, _ := json.Marshal(tt.want)
			if got := bytes.TrimSpace(srv.body(tt.route)); string(got) != string(want) {
				t.Errorf("sent %s\nwant %s", got, want)
			}
		})
	}
}

// A flag's former name works, hidden, and warns on stderr only: stdout
// stays the API object for scripts.
func TestRenamedFlag(t *testing.T) {
	srv := newFakeController(t)
	out, errOut, code := run(t, srv.Server, "drain", "host1", "--max-parallel", "6", "-o", "json")
	if code != 0 || !strings.Contains(errOut, "--max-parallel is now --max-per-cluster") || !strings.HasPrefix(out, "{") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	help := mustRun(t, srv.Server, "drain", "--help")
	if strings.Contains(help, "max-parallel") || !strings.Contains(help, "--max-per-cluster int") || !strings.Contains(help, "--bandwidth MB/s") {
		t.Errorf("drain --help:\n%s", help)
	}
}

// What the commands that start something print.
func TestIntentMessages(t *testing.T) {
	srv := newFakeController(t)
	for _, tt := range []struct {
		args   []string
		stdout string
	}{
		{[]string{"drain", "host1"}, "intent in-7 started: drain host1; on failure skip — 2 running, 1 pending, predicted 23s\n" +
			"follow it with: godwit intent watch in-7 (cancel: godwit intent cancel in-7)\n"},
		{[]string{"intent", "cancel", "in-7"}, "intent in-7 (drain host1; on failure skip) is cancelling: no new operations start; " +
			"running migrations finish (follow it: godwit intent watch in-7)\n"},
		{[]string{"intent", "cancel", "in-7", "--abort-running"}, "intent in-7 (drain host1; on failure skip) is cancelling: no new operations start; " +
			"running migrations are aborted and roll back (follow it: godwit intent watch in-7)\n"},
		{[]string{"intent", "confirm", "in-8"}, "intent in-8 (resize web-1 to 4 vCPUs; held for confirmation) is completed: the new size stays\n"},
		{[]string{"intent", "revert", "in-8"}, "intent in-8 (resize web-1 to 4 vCPUs; held for confirmation) is reverting: 1 done, 1 pending (follow it: godwit intent watch in-8)\n"},
		{[]string{"migrate", "web-1"}, "live migration mig-5 of web-1: host1 → host3 (follow it with: godwit migration watch mig-5)\n"},
		{[]string{"migrate", "web-1", "--cold", "--hold"}, "cold migration mig-5 of web-1: host1 → host3 (follow it with: godwit migration watch mig-5)\n" +
			"held: once moved, intent in-10 awaits confirmation; keep vm web-1 on host3: godwit intent confirm in-10; move it back to host1: godwit intent revert in-10\n"},
		{[]string{"host", "enable", "host1"}, "host host1 enabled: the scheduler places VMs on it again\n"},
		{[]string{"host", "disable", "host1"}, "host host1 disabled: the scheduler places nothing new on it; 2 VMs stay where they are (to move them: godwit drain host1)\n"},
	} {
		if out := mustRun(t, srv.Server, tt.args...); out != tt.stdout {
			t.Errorf("godwit %s printed\n%q\nwant\n%q", strings.Join(tt.args, " "), out, tt.stdout)
		}
	}
	_, errOut, _ := run(t, srv.Server, "rebuild", "web-1")
	if !strings.Contains(errOut, "warning: rebuilding web-1 replaces its disk") || !strings.Contains(errOut, "data on it is lost") {
		t.Errorf("rebuild does not warn that the disk is replaced: %q", errOut)
	}
}

// -o json prints the API's objects: a dry run's JSON is the Intent as the
// controller returned it; a watch prints only the final intent.
func TestIntentJSON(t *testing.T) {
	srv := newFakeController(t)
	canonical := func(b []byte) string { // key order and spacing aside
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return err.Error() + ": " + string(b)
		}
		return string(mustMarshal(v))
	}
	same := func(t *testing.T, args []string, want any) {
		t.Helper()
		out, _, _ := run(t, srv.Server, append(args, "-o", "json")...)
		if got, want := canonical([]byte(out)), canonical(mustMarshal(want)); got != want {
			t.Errorf("godwit %s -o json:\n%s\nwant\n%s", strings.Join(args, " "), got, want)
		}
	}
	same(t, []string{"drain", "host1", "--dry-run"}, drainPlan())
	same(t, []string{"resize", "web-1", "--vcpus", "4", "--dry-run"}, resizePlan())
	same(t, []string{"migrate", "web-1", "--dry-run"}, migratePlan())
	same(t, []string{"intent", "list"}, testIntents())
	same(t, []string{"intent", "show", "in-8"}, testIntents()[0])
	same(t, []string{"drain", "host1"}, watchSteps()[0])
	same(t, []string{"host", "enable", "host3"}, func() api.Host { h := testHosts()[0]; h.Name, h.Enabled = "host3", true; return h }())
	steps := watchSteps()
	same(t, []string{"intent", "watch", "in-7"}, steps[len(steps)-1])
	if _, _, code := run(t, srv.Server, "intent", "watch", "in-7", "-o", "json"); code != 1 {
		t.Errorf("intent watch -o json of a partial intent: exit %d, want 1", code)
	}
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestHuman(t *testing.T) {
	for ms, want := range map[int64]string{0: "-", 40: "<0.1s", 400: "0.4s", 4150: "4.2s", 12300: "12s", 83_400: "1m23s", 7_500_000: "2h5m"} {
		if got := human(ms); got != want {
			t.Errorf("human(%d) = %q, want %q", ms, got, want)
		}
	}
}

func TestLiveViewCut(t *testing.T) {
	v := &liveView{width: 10}
	if got := v.cut("web-1  live migration"); got != "web-1  l…" {
		t.Errorf("cut = %q", got)
	}
	if got := v.cut("short"); got != "short" {
		t.Errorf("cut = %q", got)
	}
}

// intent confirm and revert: -o json and -o yaml print the intent as the
// controller returned it; a refusal is the controller's message, exit 1.
func TestIntentConfirmRevert(t *testing.T) {
	srv := newFakeController(t)
	for args, want := range map[string]api.IntentState{"confirm": api.IntentCompleted, "revert": api.IntentReverting} {
		out := mustRun(t, srv.Server, "intent", args, "in-8", "-o", "json")
		var in api.Intent
		if err := json.Unmarshal([]byte(out), &in); err != nil || in.ID != "in-8" || in.State != want || in.Revert == nil {
			t.Errorf("intent %s -o json: %v: %s", args, err, out)
		}
		if out := mustRun(t, srv.Server, "intent", args, "in-8", "-o", "yaml"); !strings.Contains(out, "state: "+string(want)) {
			t.Errorf("intent %s -o yaml:\n%s", args, out)
		}
		_, errOut, code := run(t, srv.Server, "intent", args, "in-7")
		if code != 1 || !strings.Contains(errOut, "is completed, not awaiting-confirmation") {
			t.Errorf("intent %s of an intent not held: exit %d, stderr %q", args, code, errOut)
		}
	}
}
