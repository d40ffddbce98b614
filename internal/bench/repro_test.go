package bench

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

func TestReproModeCycles(t *testing.T) {
	want := []api.Policy{api.PolicyPreCopy, api.PolicyAutoConverge, api.PolicyPostCopy}
	var got []api.Policy
	for i := 0; i < 7; i++ {
		got = append(got, reproModeOf(i).Policy)
	}
	if !slices.Equal(got[:3], want) || !slices.Equal(got[3:6], want) || got[6] != api.PolicyPreCopy {
		t.Errorf("policies of runs 0–6 = %v; want %v cycled", got, want)
	}
	if m := reproModeOf(0); m.ForceAtPass != 4 {
		t.Errorf("the pre-copy mode forces at pass %d; want 4", m.ForceAtPass)
	}
	if reproModeOf(1).ForceAtPass != 0 || reproModeOf(2).ForceAtPass != 0 {
		t.Error("only the pre-copy mode is forced")
	}
	// 20 runs: every mode gets its third.
	n := map[api.Policy]int{}
	for i := 0; i < 20; i++ {
		n[reproModeOf(i).Policy]++
	}
	if n[api.PolicyPreCopy] != 7 || n[api.PolicyAutoConverge] != 7 || n[api.PolicyPostCopy] != 6 {
		t.Errorf("modes over 20 runs = %v", n)
	}
}

// hbLines prints heartbeats first..last as the test guest does.
func hbLines(first, last int64, memBad int) string {
	var b strings.Builder
	for n := first; n <= last; n++ {
		fmt.Fprintf(&b, "godwit-guest hb=%d up_ms=%d cpus=1 mem_mib=236 disk_mib=64 disk_rec=3 disk_bad=0 mem_bad=%d hot_mib=64\n", n, n*200, memBad)
	}
	return b.String()
}

func TestReproJudge(t *testing.T) {
	for _, tt := range []struct {
		name    string
		console string
		from    int64
		silent  time.Duration
		verdict string
		detail  string
	}{
		{"healthy", hbLines(101, 150, 0), 100, 200 * time.Millisecond, reproHealthy, "hb 101→150, mem_bad=0"},
		{"oops", hbLines(101, 103, 0) + "[  412.1] BUG: unable to handle page fault for address: ffff9a\n" +
			"[  412.1] Oops: 0011 [#1] PREEMPT SMP NOPTI\n", 100, time.Second, reproCrashed, "BUG: unable to handle page fault"},
		{"gpf", hbLines(101, 101, 0) + "[  9.2] general protection fault, probably for non-canonical address 0xdead\n",
			100, 20 * time.Second, reproCrashed, "general protection fault"},
		{"panic then reboot", hbLines(101, 102, 0) + "[  9.9] Kernel panic - not syncing: Fatal exception\n" + hbLines(1, 3, 0),
			100, 0, reproCrashed, "Kernel panic - not syncing"},
		{"reboot, no trouble printed", hbLines(101, 105, 0) + hbLines(1, 4, 0), 100, 0, reproRestarted, "restarted 1 time"},
		{"counter behind the source's", hbLines(1, 30, 0), 100, 0, reproRestarted, "restarted (1 after 100)"},
		{"mem_bad", hbLines(101, 110, 0) + hbLines(111, 120, 37), 100, 0, reproLostWrites, "37 page(s)"},
		{"hung", hbLines(101, 104, 0), 100, 16 * time.Second, reproHung, "no new heartbeat in 16s (last hb=104)"},
		{"silent from arrival", "", 100, 15 * time.Second, reproHung, "no heartbeat since arrival"},
		{"missing heartbeats", hbLines(101, 104, 0) + hbLines(110, 130, 0), 100, 0, reproLostBeats, "5 heartbeat(s) missing"},
		// A short silence below the hang bound is not a hang.
		{"slow but beating", hbLines(101, 120, 0), 100, 3 * time.Second, reproHealthy, "mem_bad=0"},
	} {
		v, d := reproJudge([]byte(tt.console), tt.from, tt.silent)
		if v != tt.verdict || !strings.Contains(d, tt.detail) {
			t.Errorf("%s: verdict %q (%s); want %q with %q", tt.name, v, d, tt.verdict, tt.detail)
		}
		if reproBroken(v) != (tt.verdict != reproHealthy) {
			t.Errorf("%s: reproBroken(%q) = %v", tt.name, v, reproBroken(v))
		}
	}
	if reproBroken(reproRefused) || reproBroken(reproFailed) {
		t.Error("a refused or failed run is not a broken guest: it was not a move")
	}
}

func TestReproSummaryAndTable(t *testing.T) {
	s72 := reproSet{Binary: "/opt/qemu-7.2/qemu-system-x86_64", QEMU: "7.2.22", Runs: []reproRun{
		{N: 1, Mode: reproModes[0].Name, VM: "repro-1", From: "host1", To: "host2", State: api.MigCompleted, Forced: true,
			Passes: 5, TotalMS: 21500, DowntimeMS: 3400, HasDown: true, Verdict: reproCrashed, Detail: "Oops: 0011"},
		{N: 2, Mode: reproModes[1].Name, VM: "repro-2", From: "host1", To: "host2", State: api.MigCompleted,
			Passes: 11, TotalMS: 40000, DowntimeMS: 250, HasDown: true, Verdict: reproHealthy},
		{N: 3, Mode: reproModes[2].Name, VM: "repro-2", Verdict: reproRefused, Detail: "(422) host host2 does not offer post-copy"},
		{N: 4, Mode: reproModes[0].Name, VM: "repro-2", From: "host2", To: "host1", State: api.MigCompleted,
			Passes: 4, TotalMS: 18000, HasDown: true, Verdict: reproHung},
		{N: 5, Mode: reproModes[1].Name, VM: "repro-3", Verdict: reproFailed, Detail: "cancelled"},
		{N: 6, Mode: reproModes[2].Name, VM: "repro-4", From: "host1", To: "host2", State: api.MigCompleted,
			Passes: 1, TotalMS: 9000, HasDown: true, Verdict: reproCrashed},
	}}
	moves, broken, refused, failed := reproCounts(s72)
	if moves != 4 || broken != 3 || refused != 1 || failed != 1 {
		t.Errorf("counts = %d moves, %d broken, %d refused, %d failed", moves, broken, refused, failed)
	}
	want := "QEMU 7.2.22: 3 of 4 moves left the guest crashed/hung/lost writes (2 crashed, 1 hung); 1 run(s) refused; 1 run(s) failed"
	if got := reproSummary(s72); got != want {
		t.Errorf("summary = %q\nwant      %q", got, want)
	}
	s10 := reproSet{Binary: "/usr/bin/qemu-system-x86_64", QEMU: "10.0.2", Runs: []reproRun{
		{N: 1, Mode: reproModes[0].Name, From: "host1", To: "host2", Verdict: reproHealthy},
		{N: 2, Mode: reproModes[1].Name, From: "host2", To: "host1", Verdict: reproHealthy},
	}}
	if got := reproSummary(s10); got != "QEMU 10.0.2: 0 of 2 moves left the guest crashed/hung/lost writes" {
		t.Errorf("summary = %q", got)
	}
	if got := reproSummary(reproSet{Binary: "/x/qemu", Err: "start the cluster: boom"}); !strings.Contains(got, "/x/qemu: 0 of 0") || !strings.Contains(got, "stopped early: start the cluster: boom") {
		t.Errorf("summary of a set that never ran = %q", got)
	}

	tb := reproTable(s72).markdown()
	for _, w := range []string{"| run |", "host1 → host2", "21.50 s", "3400 ms", "| crashed ", "(422) host host2"} {
		if !strings.Contains(tb, w) {
			t.Errorf("table lacks %q:\n%s", w, tb)
		}
	}
	md := reproMarkdown([]reproSet{s10, s72}, 20)
	for _, w := range []string{"20 heavy TCG live migrations", "QEMU 10.0.2 (/usr/bin/qemu-system-x86_64)",
		"Moves that left the guest crashed/hung/lost writes: QEMU 10.0.2: 0 of 2; QEMU 7.2.22: 3 of 4"} {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q:\n%s", w, md)
		}
	}
}

func TestReproIsOptional(t *testing.T) {
	if slices.Contains(Defaults().Scenarios, scenarioRepro) {
		t.Error("repro must not run by default")
	}
	cfg := Config{Scenarios: []string{scenarioRepro}}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.ReproRuns != 20 || !slices.Equal(cfg.QEMU, []string{"qemu-system-x86_64"}) {
		t.Errorf("repro defaults: %d runs on %v", cfg.ReproRuns, cfg.QEMU)
	}
	if got := ParseList("/usr/bin/qemu-system-x86_64, /opt/qemu-7.2/qemu-system-x86_64"); len(got) != 2 || got[1] != "/opt/qemu-7.2/qemu-system-x86_64" {
		t.Errorf("ParseList = %v", got)
	}
}
