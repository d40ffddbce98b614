package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/guestlog"
)

func TestTableMarkdown(t *testing.T) {
	tb := newTable("policy", "total", "note").alignRight(1)
	tb.add("auto", "2.31 s", "ok")
	tb.add("post-copy", "12.00 s")
	want := "" +
		"| policy    |   total | note |\n" +
		"| --------- | ------: | ---- |\n" +
		"| auto      |  2.31 s | ok   |\n" +
		"| post-copy | 12.00 s |      |\n"
	if got := tb.markdown(); got != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", got, want)
	}
	// Widths count runes, not bytes.
	tb = newTable("x")
	tb.add("1.30×")
	if got := tb.markdown(); !strings.Contains(got, "| 1.30× |") || !strings.Contains(got, "| x     |") {
		t.Errorf("markdown with a multibyte cell:\n%s", got)
	}
}

func TestBoundAndRatio(t *testing.T) {
	for _, tt := range []struct {
		total, zero int64
		bw          float64
		want        int64
	}{
		{1 << 30, 1<<30 - 275e6, 125e6, 2200}, // the issue's ≈ 2.2 s
		{1 << 30, 0, 125e6, 8590},
		{500e6, 600e6, 125e6, 0}, // more zero than total: nothing to send
		{0, 0, 125e6, 0},
		{1e9, 0, 0, 0},
	} {
		if got := boundMS(tt.total, tt.zero, tt.bw); got != tt.want {
			t.Errorf("boundMS(%d, %d, %g) = %d; want %d", tt.total, tt.zero, tt.bw, got, tt.want)
		}
	}
	if r := ratio(2860, 2200); r < 1.299 || r > 1.301 {
		t.Errorf("ratio = %v; want 1.3", r)
	}
	if ratio(0, 10) != 0 || ratio(10, 0) != 0 {
		t.Error("ratio of an unknown must be 0")
	}
}

func TestRunFromMigration(t *testing.T) {
	m := api.Migration{State: api.MigCompleted, Strategy: "shared-storage/pre-copy",
		Convergence: &api.Convergence{Strategy: "post-copy"},
		Progress: api.MigrationProgress{MemoryTotal: 1000e6, MemoryZero: 750e6, MemoryTransferred: 1500e6,
			DowntimeMS: 12, TotalTimeMS: 2600}}
	var r convRun
	runFromMigration(&r, m, 3*time.Second, 125e6)
	if r.BoundMS != 2000 || r.TotalMS != 2600 || r.E2EMS != 3000 || r.SentRatio != 1.5 || !r.HasDown || r.DowntimeMS != 12 {
		t.Errorf("run = %+v", r)
	}
	if r.Strategy != "shared-storage/pre-copy, then post-copy" {
		t.Errorf("strategy = %q", r.Strategy)
	}
	// Faster than the cap: said so.
	m.Progress.TotalTimeMS = 500
	r = convRun{}
	runFromMigration(&r, m, time.Second, 125e6)
	if r.Outcome != "completed; sent at 3000 MB/s, above the 125 MB/s cap" {
		t.Errorf("outcome = %q", r.Outcome)
	}
	if s := strategyOf(api.Migration{Strategy: "shared-storage/pre-copy+post-copy", Convergence: &api.Convergence{Strategy: "post-copy"}}); s != "shared-storage/pre-copy+post-copy" {
		t.Errorf("strategy = %q", s)
	}
	// Without QEMU's total the end-to-end time stands in; a failure
	// says why and has no downtime.
	m = api.Migration{State: api.MigCancelled, Reason: "aborted", Strategy: "shared-storage/post-copy",
		Convergence: &api.Convergence{Strategy: "post-copy"}}
	r = convRun{}
	runFromMigration(&r, m, 4*time.Second, 125e6)
	if r.TotalMS != 4000 || r.HasDown || r.Outcome != "cancelled: aborted" || r.Strategy != "shared-storage/post-copy" {
		t.Errorf("run = %+v", r)
	}
}

func at(ms int) time.Time { return time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond) }

func beats(ms ...int) []beat {
	var bs []beat
	for i, m := range ms {
		bs = append(bs, beat{At: at(m), Counter: int64(i + 1)})
	}
	return bs
}

func TestWorstGap(t *testing.T) {
	for _, tt := range []struct {
		name     string
		beats    []beat
		from, to int
		want     time.Duration
	}{
		{"steady", beats(0, 20, 40, 60, 80, 100), 10, 100, 20 * time.Millisecond},
		{"stall at the switch-over", beats(0, 20, 40, 300, 320), 10, 320, 260 * time.Millisecond},
		// A gap that straddles the window's start counts in full.
		{"straddles the start", beats(0, 500, 520), 100, 520, 500 * time.Millisecond},
		// Gaps wholly before the window do not count.
		{"before the window", beats(0, 900, 920, 940), 910, 940, 20 * time.Millisecond},
		// No heartbeat since 40: the guest stalls until the window ends.
		{"silent to the end", beats(0, 20, 40), 0, 1040, time.Second},
		{"nothing at all", nil, 0, 700, 700 * time.Millisecond},
		{"only before the window", beats(0, 10), 100, 400, 300 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := worstGap(tt.beats, at(tt.from), at(tt.to)); got != tt.want {
				t.Errorf("worstGap = %v; want %v", got, tt.want)
			}
		})
	}
	// Order of reading (source file, then destination file) does not matter.
	bs := []beat{{At: at(300), Counter: 4}, {At: at(0), Counter: 1}, {At: at(20), Counter: 2}, {At: at(40), Counter: 3}}
	if got := worstGap(bs, at(0), at(300)); got != 260*time.Millisecond {
		t.Errorf("unsorted: %v", got)
	}
}

func TestTailerStampsHeartbeats(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.log"), filepath.Join(dir, "dst.log")
	line := func(n int) string {
		return "godwit-guest hb=" + strconv.Itoa(n) + " up_ms=1 cpus=1 mem_mib=1 disk_mib=0 disk_rec=0 disk_bad=0\n"
	}
	if err := os.WriteFile(src, []byte("boot\n"+line(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	tl := &tailer{}
	tl.follow(src, true) // the old heartbeat is skipped
	tl.follow(dst, true) // does not exist yet: read from its start
	appendTo(t, src, line(2)+"godwit-guest hb=3 up")
	tl.poll()
	appendTo(t, src, "_ms=1 cpus=1 mem_mib=1 disk_mib=0 disk_rec=0 disk_bad=0\n")
	appendTo(t, dst, line(4)+"[ 9.1] BUG: kernel NULL pointer dereference\n")
	tl.poll()
	tl.close()
	bs, text := tl.snapshot()
	var got []int64
	for _, b := range bs {
		got = append(got, b.Counter)
	}
	if len(got) != 3 || got[0] != 2 || got[1] != 3 || got[2] != 4 {
		t.Errorf("heartbeats read = %v; want [2 3 4]", got)
	}
	if got := guestlog.Check([]byte(text)).Trouble; !strings.Contains(got, "BUG:") {
		t.Errorf("trouble = %q in %q", got, text)
	}
	if rebooted(bs) {
		t.Error("no reboot expected")
	}
	if !rebooted([]beat{{Counter: 40}, {Counter: 1}}) {
		t.Error("a counter going back is a reboot")
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestOverheadStats(t *testing.T) {
	runs := []overheadRun{
		{E2E: 2300 * time.Millisecond, QEMU: 2100 * time.Millisecond, State: api.MigCompleted},
		{E2E: 2500 * time.Millisecond, QEMU: 2100 * time.Millisecond, State: api.MigCompleted},
		{E2E: 9 * time.Second, State: api.MigRolledBack},
		{E2E: 2200 * time.Millisecond, QEMU: 2100 * time.Millisecond, State: api.MigCompleted},
		{E2E: 2350 * time.Millisecond, QEMU: 2100 * time.Millisecond, State: api.MigCompleted},
	}
	med, worst, n := overheadStats(runs)
	if n != 4 || med != 225*time.Millisecond || worst != 400*time.Millisecond {
		t.Errorf("stats = %v %v %d; want 225ms 400ms 4", med, worst, n)
	}
}

// The overhead splits into the phases the migration recorded: before
// the transfer, and from the switch-over to completed.
func TestOverheadPhaseSplit(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	m := api.Migration{CreatedAt: t0, State: api.MigCompleted, Phases: []api.Phase{
		{State: api.MigQueued, At: at(0)}, {State: api.MigScheduling, At: at(0)}, {State: api.MigPreparing, At: at(5)},
		{State: api.MigTransferring, At: at(260)}, {State: api.MigSwitchingOver, At: at(1010)},
		{State: api.MigFinishing, At: at(1020)}, {State: api.MigCompleted, At: at(1075)},
	}}
	r := overheadRun{E2E: 1100 * time.Millisecond, QEMU: 740 * time.Millisecond, State: api.MigCompleted}
	r.phaseSplit(m)
	if r.Prepare != 260*time.Millisecond || r.Finish != 65*time.Millisecond {
		t.Errorf("prepare %v, switch-over %v; want 260ms, 65ms", r.Prepare, r.Finish)
	}
	tb := overheadTable([]overheadRun{r}).markdown()
	if !strings.Contains(tb, " 260 ms |") || !strings.Contains(tb, "| 35 ms |") {
		t.Errorf("the table lacks the split (260 ms prepare, 35 ms rest):\n%s", tb)
	}
}

// conv is a convergence run that converged, its client's connection kept
// and its blackout the guest's own gap plus 20 ms.
func conv(rate int, policy api.Policy, totalMS, boundMS, downMS int64, gap time.Duration) convRun {
	return convRun{RateMB: rate, Policy: policy, Converged: true, Outcome: string(api.MigCompleted), TotalMS: totalMS,
		BoundMS: boundMS, DowntimeMS: downMS, HasDown: true, WorstGap: gap,
		Measured: true, TCP: true, Blackout: gap + 20*time.Millisecond}
}

func verdicts(vs []verdict) map[string]string {
	m := map[string]string{}
	for _, v := range vs {
		m[v.Target] = v.Result
	}
	return m
}

func TestEvaluate(t *testing.T) {
	ms := time.Millisecond
	good := results{Accel: "kvm", Ran: []string{scenarioConvergence, scenarioDrain, scenarioOverhead},
		Conv: []convRun{
			conv(0, api.PolicyAuto, 2300, 2200, 10, 40*ms),
			conv(0, api.PolicyPreCopy, 2250, 2200, 200, 250*ms),
			conv(200, api.PolicyAuto, 2800, 2200, 5, 80*ms),
			{RateMB: 200, Policy: api.PolicyPreCopy, Outcome: "aborted", TotalMS: 120000},
			conv(200, api.PolicyPostCopy, 4100, 2200, 2, 90*ms),
		},
		Drain: []drainRun{
			{Name: drainGodwit, State: api.IntentCompleted, Moves: 6, VMs: 6, MakespanMS: 11000, BoundMS: 10000},
			{Name: drainOne, State: api.IntentCompleted, Moves: 6, VMs: 6, MakespanMS: 14000, BoundMS: 10000},
			{Name: drainTwo, State: api.IntentCompleted, Moves: 6, VMs: 6, MakespanMS: 12000, BoundMS: 10000},
		},
		Overhead: []overheadRun{{E2E: 2200 * ms, QEMU: 2000 * ms, State: api.MigCompleted}},
	}
	for target, res := range verdicts(evaluate(good)) {
		if res != verdictPass {
			t.Errorf("good results: %s = %s", target, res)
		}
	}

	bad := good
	bad.Accel = "tcg"
	bad.Conv = []convRun{
		conv(0, api.PolicyAuto, 2300, 2200, 80, 400*ms),   // downtime over 50 ms
		conv(0, api.PolicyPreCopy, 2000, 2200, 200, 0),    // peer 15 % faster
		conv(100, api.PolicyAuto, 3000, 2200, 10, 100*ms), // 1.36× the bound
		{RateMB: 300, Policy: api.PolicyAuto, Outcome: "aborted", TotalMS: 120000},
		{RateMB: 300, Policy: api.PolicyPostCopy, Outcome: "completed", Measured: true, TCP: false, ClientErr: "connection reset",
			WorstGap: 100 * ms, Blackout: 400 * ms}, // the connection broken, a blackout 300 ms over
	}
	bad.Drain = []drainRun{
		{Name: drainGodwit, State: api.IntentCompleted, MakespanMS: 13000, BoundMS: 10000},
		{Name: drainTwo, State: api.IntentCompleted, MakespanMS: 12500, BoundMS: 10000},
	}
	bad.Overhead = []overheadRun{{E2E: 2500 * ms, QEMU: 2000 * ms, State: api.MigCompleted}}
	got := verdicts(evaluate(bad))
	want := map[string]string{
		"godwit converges in 100 % of scenarios":           verdictFail,
		"total ≤ 1.3× bound at every rate":                 verdictFail,
		"never > 10 % slower than the best peer":           verdictFail,
		"downtime ≤ 50 ms everywhere":                      verdictFail,
		stallTargetName:                                    verdictFail, // 400 ms at 0 MB/s under TCG
		"drain makespan ≤ 1.2× bound and below both peers": verdictFail,
		"control-plane overhead median ≤ 0.3 s":            verdictFail,
		tcpTargetName:      verdictFail,
		blackoutTargetName: verdictFail,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("bad results: %s = %s; want %s", k, got[k], v)
		}
	}

	// A stall under the limit but longer than a converging peer's fails.
	worse := good
	worse.Conv = []convRun{conv(200, api.PolicyAuto, 2800, 2200, 5, 150*ms), conv(200, api.PolicyPostCopy, 4100, 2200, 2, 90*ms)}
	if v := verdicts(evaluate(worse))[stallTargetName]; v != verdictFail {
		t.Errorf("auto stalled 150 ms where post-copy stalled 90 ms: %s; want %s", v, verdictFail)
	}

	// A move that beat the bandwidth cap does not pass the bound target
	// by being fast.
	fast := good
	fast.Conv = []convRun{conv(0, api.PolicyAuto, 500, 2200, 2, 40*ms)}
	fast.Conv[0].OverCapBps = 450e6
	if got := verdicts(evaluate(fast))["total ≤ 1.3× bound at every rate"]; got != verdictFail {
		t.Errorf("a move above the cap: bound target %s; want FAIL", got)
	}

	// Scenarios that did not run are said so, not passed.
	none := verdicts(evaluate(results{Accel: "tcg"}))
	if len(none) != 7 {
		t.Errorf("%d verdicts; want 7", len(none))
	}
	for k, v := range none {
		if v != verdictNotRun {
			t.Errorf("nothing ran: %s = %s", k, v)
		}
	}
}

func TestConfig(t *testing.T) {
	cfg := Defaults()
	set := map[string]bool{"limit": true, "overhead-runs": true}
	cfg.Limit, cfg.OverheadRuns = 45*time.Second, 5
	cfg.ApplyQuick(func(f string) bool { return set[f] })
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rates) != 1 || cfg.Limit != 45*time.Second || cfg.ConvMemoryMiB != 512 || cfg.OverheadRuns != 5 {
		t.Errorf("quick config = %+v", cfg)
	}
	for _, bad := range []Config{{Scenarios: []string{"latency"}}, {Policies: []string{"yolo"}}, {Rates: []int{-1}}} {
		if err := bad.validate(); err == nil {
			t.Errorf("validate(%+v) passed", bad)
		}
	}
	if r, err := ParseRates("0, 50,,300"); err != nil || len(r) != 3 || r[2] != 300 {
		t.Errorf("ParseRates = %v, %v", r, err)
	}
	if _, err := ParseRates("fast"); err == nil {
		t.Error("ParseRates(fast) passed")
	}
}

func TestWriteReportKeepsClosingNote(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	note := closingHeading + "\n\nHand-written: post-copy oopsed under TCG.\n"
	if err := os.WriteFile(path, []byte("# Benchmarks\n\nold tables\n\n"+note), 0o644); err != nil {
		t.Fatal(err)
	}
	r := results{Accel: "tcg", Ran: []string{scenarioOverhead},
		Overhead: []overheadRun{{E2E: 2200 * time.Millisecond, QEMU: 2000 * time.Millisecond, State: api.MigCompleted}}}
	cfg := Defaults()
	if err := writeReport(path, machine{CPUModel: "Test CPU", Cores: 2, MemMiB: 4096, QEMU: "QEMU emulator version 7.2", Accel: "tcg"}, cfg, r, evaluate(r)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	s := string(b)
	for _, want := range []string{"## Machine", "Test CPU, 2 cores", "## Control-plane overhead", "| median |", "PASS", note} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "old tables") || strings.Count(s, closingHeading) != 1 {
		t.Errorf("report kept old tables or doubled the note:\n%s", s)
	}
}

func TestWriteTimeline(t *testing.T) {
	start := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	// The guest's clock jumps with the host's: the guest did not run.
	beats := []beat{{At: at(0), Counter: 1, UpMS: 1000}, {At: at(20), Counter: 2, UpMS: 1020}, {At: at(520), Counter: 3, UpMS: 1515}}
	path := filepath.Join(t.TempDir(), "timelines", "vm-auto.txt")
	if err := writeTimeline(path, start, at(600), beats, "godwit-guest hb=3\n"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# move took 600 ms", "\n20 20 2 1020 20\n", "\n520 500 3 1515 495\n", "# console\ngodwit-guest hb=3\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("timeline lacks %q:\n%s", want, b)
		}
	}
}

// The encryption summary compares medians of completed moves of each kind.
func TestEncSummary(t *testing.T) {
	runs := []encRun{
		{Encrypted: false, State: api.MigCompleted, TotalMS: 1000, Bytes: 500e6, CPUSeconds: 1},
		{Encrypted: true, State: api.MigCompleted, TotalMS: 2000, Bytes: 500e6, CPUSeconds: 3},
		{Encrypted: false, State: api.MigCompleted, TotalMS: 1000, Bytes: 500e6, CPUSeconds: 1},
		{Encrypted: true, State: api.MigRolledBack},
	}
	got := encSummary(runs)
	if !strings.Contains(got, "500 MB/s plain, 250 MB/s encrypted (0.50×)") || !strings.Contains(got, "(3.00×)") {
		t.Errorf("summary: %s", got)
	}
	if s := encSummary(runs[:1]); !strings.Contains(s, "not enough") {
		t.Errorf("one kind only: %s", s)
	}
	if _, err := busyCPU(); err != nil {
		t.Error(err)
	}
}
