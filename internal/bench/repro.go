package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/guestlog"
)

// The repro scenario reproduces the TCG defect of QEMU before 9.0 (it
// loses guest writes in a live migration, upstream 03bfc2188f06;
// docs/migration.md) and shows it gone on a newer QEMU: on one two-host
// TCG cluster per QEMU binary, it live-migrates one guest that keeps
// writing back and forth, in three ways of finishing a migration that
// does not converge, and judges the guest's console after every move.
// It is not among the default scenarios: it takes about an hour and
// measures no target of the report.

// The heavy move: the guest of TestForceCompleteQEMU (internal/e2e),
// writing a 64 MiB set at 60 MB/s, migrated at 20 MB/s, so that pre-copy
// never converges by itself and every mode writes through many passes.
const (
	reproMemoryMiB       = 256
	reproDirtyMiB        = 64
	reproRateMB          = 60
	reproHbHz            = 5 // the guest's default: a gap of seconds is a hang, not jitter
	reproBandwidthMBPerS = 20
)

// Bounds: a move not finished after reproMigrationLimit is aborted, a run
// gets reproRunLimit in all, and after arrival the guest is watched for
// reproObserve (or until it is found hung, reproHangAfter without a new
// heartbeat).
const (
	reproMigrationLimit = 3 * time.Minute
	reproAbortWait      = time.Minute
	reproRunLimit       = 5 * time.Minute
	reproObserve        = 10 * time.Second
	reproHangAfter      = 15 * time.Second
	reproPoll           = 200 * time.Millisecond
	reproConsolePoll    = 500 * time.Millisecond
	// reproBootFailures ends a binary's runs after that many fresh guests
	// in a row did not boot: the cluster itself is broken.
	reproBootFailures = 3
)

// reproMode is one way a heavy migration is made to finish.
type reproMode struct {
	Name   string // as the table shows it
	Policy api.Policy
	// ForceAtPass forces the migration with CompleteMigration (which
	// pauses the guest for the final copy) once QEMU reports this pass;
	// 0 never forces.
	ForceAtPass int
}

// reproModes are cycled through run after run, so that each gets a third
// of the runs and a crash rate cannot hide behind one mode.
var reproModes = []reproMode{
	{Name: "pre-copy, forced at pass 4", Policy: api.PolicyPreCopy, ForceAtPass: 4},
	{Name: "auto-converge", Policy: api.PolicyAutoConverge},
	{Name: "post-copy", Policy: api.PolicyPostCopy},
}

// reproModeOf is the mode of run i (from 0).
func reproModeOf(i int) reproMode { return reproModes[i%len(reproModes)] }

// Verdicts on a run. Only a completed move is judged on the guest's
// health; a refused or failed one says why in its detail.
const (
	reproHealthy    = "healthy"
	reproCrashed    = "crashed"
	reproHung       = "hung"
	reproRestarted  = "restarted"
	reproLostWrites = "lost writes"
	reproLostBeats  = "lost heartbeats"
	reproRefused    = "refused"
	reproFailed     = "failed"
)

// reproBroken says whether a verdict is a guest the move broke.
func reproBroken(v string) bool {
	switch v {
	case reproCrashed, reproHung, reproRestarted, reproLostWrites, reproLostBeats:
		return true
	}
	return false
}

// reproJudge judges a guest from its console on the host it arrived on:
// from is the last heartbeat counter seen before the move (a lower first
// counter here means the guest booted again) and silent how long no new
// heartbeat has appeared. A crash is named by its first trouble line, as
// it is what the docs quote.
func reproJudge(console []byte, from int64, silent time.Duration) (verdict, detail string) {
	h := guestlog.Check(console)
	detail = strings.Join(h.Problems(from), "; ")
	switch {
	case h.Trouble != "":
		return reproCrashed, h.Trouble
	case h.Restarts > 0 || (h.Beats > 0 && h.First.Counter < from):
		return reproRestarted, detail
	case h.MemBad > 0 || h.DiskBad > 0:
		return reproLostWrites, detail
	case h.Beats == 0 || silent >= reproHangAfter:
		why := fmt.Sprintf("no new heartbeat in %s", silent.Round(time.Second))
		if h.Beats > 0 {
			why += fmt.Sprintf(" (last hb=%d)", h.Last.Counter)
		} else {
			why = "no heartbeat since arrival"
		}
		return reproHung, why
	case h.Skips > 0:
		return reproLostBeats, detail
	}
	return reproHealthy, fmt.Sprintf("hb %d→%d, mem_bad=0", h.First.Counter, h.Last.Counter)
}

// reproRun is one heavy migration.
type reproRun struct {
	N          int
	Mode       string
	VM         string
	From, To   string
	State      api.MigrationState // the migration's final state ("" when none ran)
	Forced     bool               // CompleteMigration was called
	Passes     int
	TotalMS    int64 // QEMU's total time, or the end-to-end time without one
	DowntimeMS int64
	HasDown    bool
	Verdict    string
	Detail     string
	// console is what the verdict was read from, kept in the work
	// directory for a broken guest: the table quotes one line of it.
	console []byte
}

// reproSet is the runs on one QEMU binary.
type reproSet struct {
	Binary string
	QEMU   string // the version the agents report
	Runs   []reproRun
	Err    string // why the runs stopped early, if they did
}

func (s reproSet) label() string {
	if s.QEMU != "" {
		return "QEMU " + s.QEMU
	}
	return s.Binary
}

// reproCounts counts a set's runs: completed moves, those that left the
// guest broken, refused and failed runs.
func reproCounts(s reproSet) (moves, broken, refused, failed int) {
	for _, r := range s.Runs {
		switch {
		case r.Verdict == reproRefused:
			refused++
		case r.Verdict == reproFailed:
			failed++
		default:
			moves++
			if reproBroken(r.Verdict) {
				broken++
			}
		}
	}
	return moves, broken, refused, failed
}

// reproSummary is a set's result in one line: "QEMU 7.2.22: 9 of 20
// moves left the guest crashed/hung/lost writes (7 crashed, 2 hung)".
func reproSummary(s reproSet) string {
	moves, broken, refused, failed := reproCounts(s)
	out := fmt.Sprintf("%s: %d of %d moves left the guest crashed/hung/lost writes", s.label(), broken, moves)
	kinds := map[string]int{}
	var order []string
	for _, r := range s.Runs {
		if reproBroken(r.Verdict) {
			if kinds[r.Verdict] == 0 {
				order = append(order, r.Verdict)
			}
			kinds[r.Verdict]++
		}
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%d %s", kinds[k], k))
	}
	if len(parts) > 0 {
		out += " (" + strings.Join(parts, ", ") + ")"
	}
	if refused > 0 {
		out += fmt.Sprintf("; %d run(s) refused", refused)
	}
	if failed > 0 {
		out += fmt.Sprintf("; %d run(s) failed", failed)
	}
	if s.Err != "" {
		out += "; stopped early: " + s.Err
	}
	return out
}

func reproTable(s reproSet) *table {
	t := newTable("run", "mode", "vm", "move", "passes", "total", "downtime", "verdict", "detail").alignRight(0, 4, 5, 6)
	for _, r := range s.Runs {
		move, passes := "–", "–"
		if r.From != "" {
			move = r.From + " → " + r.To
		}
		if r.Passes > 0 {
			passes = fmt.Sprint(r.Passes)
		}
		t.add(fmt.Sprint(r.N), r.Mode, r.VM, move, passes, fmtSeconds(r.TotalMS), fmtMS(r.DowntimeMS, r.HasDown), r.Verdict, r.Detail)
	}
	return t
}

// runRepro runs the repro scenario on every QEMU binary in turn (not at
// once: TCG guests of two clusters would compete for the cores).
func (b *bench) runRepro(ctx context.Context, dir string) ([]reproSet, error) {
	var sets []reproSet
	for i, bin := range b.cfg.QEMU {
		set := b.reproOn(ctx, filepath.Join(dir, fmt.Sprintf("repro-%d", i+1)), bin)
		sets = append(sets, set)
		b.log.Info("repro: done", "qemu", set.label(), "summary", reproSummary(set))
		if err := ctx.Err(); err != nil {
			return sets, err
		}
	}
	return sets, nil
}

// reproOn starts a TCG cluster on one QEMU binary and makes the runs.
// Only a cancelled ctx ends it early, or a cluster that cannot start or
// boot guests (said in the set's Err).
func (b *bench) reproOn(ctx context.Context, dir, bin string) (set reproSet) {
	set = reproSet{Binary: bin}
	b.log.Info("repro: starting a cluster", "qemu", bin, "dir", dir)
	c, err := b.startCluster(ctx, "repro "+bin, gcluster.Options{
		Dir: dir, Hosts: 2,
		// The defect is TCG's: under KVM the kernel keeps the dirty log.
		Accel: "tcg", AccelReason: "godwit-bench repro: the QEMU defect it reproduces is TCG's",
		AgentArgs: []string{"--qemu", bin},
		// The controller refuses live migrations of TCG guests on QEMU
		// before 9.0 otherwise.
		ControllerArgs: []string{"--allow-unsafe-tcg-migration"},
	})
	if err != nil {
		set.Err = "start the cluster: " + err.Error()
		return set
	}
	defer c.stop()
	if hs, err := c.client.Hosts(ctx); err == nil {
		var vs []string
		for _, h := range hs {
			if h.QEMUVersion != "" && !slices.Contains(vs, h.QEMUVersion) {
				vs = append(vs, h.QEMUVersion)
			}
		}
		set.QEMU = strings.Join(vs, ", ")
	}

	spec := vmSpec{memoryMiB: reproMemoryMiB, dirtyMiB: reproDirtyMiB, rateMB: reproRateMB}
	fresh, bootFails := 0, 0
	for i := 0; i < b.cfg.ReproRuns && ctx.Err() == nil; i++ {
		mode := reproModeOf(i)
		run := reproRun{N: i + 1, Mode: mode.Name}
		if spec.name == "" {
			fresh++
			spec.name = fmt.Sprintf("repro-%d", fresh)
			b.log.Info("repro: booting a guest", "vm", spec.name, "qemu", set.label())
			bctx, cancel := context.WithTimeout(ctx, reproRunLimit)
			err := c.createVMs(bctx, gcluster.HostName(1), []vmSpec{spec}, reproHbHz)
			cancel()
			if err != nil {
				run.VM, run.Verdict, run.Detail = spec.name, reproFailed, "a fresh guest did not boot: "+err.Error()
				set.Runs = append(set.Runs, run)
				b.dropReproVM(ctx, c, spec.name)
				spec.name = ""
				if bootFails++; bootFails >= reproBootFailures {
					set.Err = fmt.Sprintf("%d fresh guests in a row did not boot", bootFails)
					return set
				}
				continue
			}
			bootFails = 0
		}
		run.VM = spec.name
		rctx, cancel := context.WithTimeout(ctx, reproRunLimit)
		b.reproMove(rctx, c, mode, &run)
		cancel()
		if ctx.Err() != nil {
			return set // interrupted: the half-made run says nothing
		}
		set.Runs = append(set.Runs, run)
		b.log.Info("repro run", "qemu", set.label(), "run", run.N, "mode", run.Mode, "vm", run.VM, "state", run.State,
			"passes", run.Passes, "total_ms", run.TotalMS, "downtime_ms", run.DowntimeMS, "verdict", run.Verdict, "detail", run.Detail)
		// A broken guest says nothing more about the next move, and one
		// whose move failed may be half-moved: the next run gets a fresh
		// one. A refused move left the guest as it was.
		if run.Verdict != reproHealthy && run.Verdict != reproRefused {
			saveReproConsole(b, dir, run)
			b.dropReproVM(ctx, c, spec.name)
			spec.name = ""
		}
	}
	return set
}

// saveReproConsole keeps a broken guest's console in the work directory
// (kept with -keep): deleting the VM removes the agent's copy.
func saveReproConsole(b *bench, dir string, run reproRun) {
	if len(run.console) == 0 {
		return
	}
	path := filepath.Join(dir, "consoles", fmt.Sprintf("run%02d-%s.log", run.N, run.VM))
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		err = os.WriteFile(path, run.console, 0o644)
	}
	if err != nil {
		b.log.Warn("repro: keep the console", "path", path, "err", err)
	}
}

// dropReproVM deletes a guest, bounded; one that will not go is left for
// the cluster's stop (the next guest has another name).
func (b *bench) dropReproVM(ctx context.Context, c *cluster, name string) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c.abortAll(dctx)
	if err := c.deleteVMs(dctx, []string{name}); err != nil {
		b.log.Warn("repro: delete the guest", "vm", name, "err", err)
	}
}

// reproMove moves the VM to the other host in one mode and judges it
// after arrival, filling run. Everything that goes wrong is the run's
// verdict: the scenario goes on with the next run.
func (b *bench) reproMove(ctx context.Context, c *cluster, mode reproMode, run *reproRun) {
	fail := func(format string, args ...any) {
		run.Verdict, run.Detail = reproFailed, fmt.Sprintf(format, args...)
	}
	vm, err := c.client.VM(ctx, run.VM)
	if err != nil {
		fail("read the vm: %v", err)
		return
	}
	run.From, run.To = vm.Host, otherHost(vm.Host)
	text, err := c.Console(ctx, run.VM, 0)
	if err != nil {
		fail("read the console before the move: %v", err)
		return
	}
	from := guestlog.Check(text).Last.Counter

	req := api.MigrateRequest{Kind: api.KindLive, To: run.To, BandwidthMBPerS: reproBandwidthMBPerS, Policy: mode.Policy,
		MaxDowntimeMS: peerDowntimeLimitMS} // QEMU's default, as the peers whose policies these are run it
	start := time.Now()
	m, err := c.client.Migrate(ctx, run.VM, req)
	var apiErr *api.Error
	if errors.As(err, &apiErr) {
		run.From, run.To = "", ""
		run.Verdict, run.Detail = reproRefused, fmt.Sprintf("(%d) %s", apiErr.Status, apiErr.Message)
		return
	} else if err != nil {
		fail("migrate: %v", err)
		return
	}
	m, aborted, err := b.reproFollow(ctx, c, m, mode, run)
	if err != nil {
		fail("%v", err)
		return
	}
	run.State = m.State
	run.Passes = max(run.Passes, m.Progress.Pass)
	run.TotalMS = m.Progress.TotalTimeMS
	if run.TotalMS <= 0 {
		run.TotalMS = time.Since(start).Milliseconds()
	}
	run.DowntimeMS, run.HasDown = m.Progress.DowntimeMS, m.State == api.MigCompleted

	// A move that did not complete is judged too, on whichever host the
	// guest is now, but counts as failed: it is not a move.
	text, silent, err := b.reproWatch(ctx, c, run.VM, from)
	if err != nil {
		fail("%s; watching the guest after it: %v", reproEnd(m, aborted), err)
		return
	}
	run.console = text
	verdict, detail := reproJudge(text, from, silent)
	switch {
	case m.State != api.MigCompleted:
		fail("%s; the guest then: %s", reproEnd(m, aborted), verdict)
	case mode.ForceAtPass > 0 && !run.Forced:
		run.Verdict, run.Detail = verdict, "converged before it was forced; "+detail
	default:
		run.Verdict, run.Detail = verdict, detail
	}
}

func reproEnd(m api.Migration, aborted bool) string {
	s := string(m.State)
	if m.Reason != "" {
		s += ": " + m.Reason
	}
	if aborted {
		s = fmt.Sprintf("aborted after %s, %s", reproMigrationLimit, s)
	}
	return s
}

// reproFollow polls a migration until it ends: it forces it at the
// mode's pass and aborts it at reproMigrationLimit.
func (b *bench) reproFollow(ctx context.Context, c *cluster, m api.Migration, mode reproMode, run *reproRun) (api.Migration, bool, error) {
	start := time.Now()
	aborted := false
	var abortAt time.Time
	for !m.State.Final() {
		if err := sleep(ctx, reproPoll); err != nil {
			return m, aborted, fmt.Errorf("migration %s still %s after %s", m.ID, m.State, time.Since(start).Round(time.Second))
		}
		got, err := c.client.Migration(ctx, m.ID)
		if err != nil {
			b.log.Warn("poll migration", "id", m.ID, "err", err)
			continue
		}
		m = got
		run.Passes = max(run.Passes, m.Progress.Pass)
		switch {
		case m.State.Final():
		case mode.ForceAtPass > 0 && !run.Forced && !aborted && m.State == api.MigTransferring && m.Progress.Pass >= mode.ForceAtPass:
			run.Forced = true
			b.log.Info("repro: forcing the migration", "id", m.ID, "pass", m.Progress.Pass)
			if _, err := c.client.CompleteMigration(ctx, m.ID); err != nil {
				b.log.Warn("repro: force-complete refused", "id", m.ID, "err", err)
				run.Forced = false // try again at the next poll
			}
		case !aborted && time.Since(start) > reproMigrationLimit:
			aborted, abortAt = true, time.Now()
			b.log.Info("repro: limit reached: aborting the migration", "id", m.ID, "state", m.State)
			if _, err := c.client.AbortMigration(ctx, m.ID); err != nil {
				b.log.Warn("repro: abort refused", "id", m.ID, "err", err)
			}
		case aborted && time.Since(abortAt) > reproAbortWait:
			return m, aborted, fmt.Errorf("migration %s still %s %s after the abort", m.ID, m.State, reproAbortWait)
		}
	}
	return m, aborted, nil
}

// reproWatch reads the guest's console (through the API: the host it
// runs on now) until it has beaten for reproObserve, shown trouble, or
// been silent for reproHangAfter. It returns the console and how long the
// guest had been silent at the end.
func (b *bench) reproWatch(ctx context.Context, c *cluster, name string, from int64) ([]byte, time.Duration, error) {
	start := time.Now()
	lastChange, last, advanced := start, int64(-1), false
	var text []byte
	var readErr error
	for {
		t, err := c.Console(ctx, name, 0)
		now := time.Now()
		switch {
		case err != nil:
			readErr = err // the record may be between hosts: try again
		default:
			text, readErr = t, nil
			h := guestlog.Check(text)
			if h.Beats > 0 && h.Last.Counter != last {
				if last >= 0 || h.Last.Counter > from {
					advanced = true
				}
				last, lastChange = h.Last.Counter, now
			}
			if h.Trouble != "" || h.Restarts > 0 {
				return text, now.Sub(lastChange), nil
			}
		}
		silent := now.Sub(lastChange)
		switch {
		case text != nil && advanced && now.Sub(start) >= reproObserve && silent < 2*time.Second:
			return text, silent, nil
		case silent >= reproHangAfter && text != nil:
			return text, silent, nil
		case silent >= reproHangAfter+15*time.Second:
			return nil, silent, fmt.Errorf("the console cannot be read: %w", readErr)
		}
		if err := sleep(ctx, reproConsolePoll); err != nil {
			return nil, silent, err
		}
	}
}

// reproMarkdown is the scenario's output, Markdown to paste into
// docs/migration.md: how it ran, a table and a summary per QEMU, and the
// summaries in one line.
func reproMarkdown(sets []reproSet, runs int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nRepro: %d heavy TCG live migrations per QEMU build, ping-ponged between two hosts "+
		"(a %d MiB test guest writing a %d MiB set at %d MB/s; shared pool; capped at %d MB/s; modes in turn: %s). "+
		"After each move the guest is watched for %s on its new host; hung is no new heartbeat in %s. "+
		"A guest found broken, or whose move failed, is replaced by a fresh one.\n",
		runs, reproMemoryMiB, reproDirtyMiB, reproRateMB, reproBandwidthMBPerS, reproModeNames(), reproObserve, reproHangAfter)
	var lines []string
	for _, s := range sets {
		fmt.Fprintf(&b, "\n%s (%s)\n\n%s\n%s\n", s.label(), s.Binary, reproTable(s).markdown(), reproSummary(s))
		moves, broken, _, _ := reproCounts(s)
		lines = append(lines, fmt.Sprintf("%s: %d of %d", s.label(), broken, moves))
	}
	fmt.Fprintf(&b, "\nMoves that left the guest crashed/hung/lost writes: %s\n", strings.Join(lines, "; "))
	return b.String()
}

func reproModeNames() string {
	var n []string
	for _, m := range reproModes {
		n = append(n, m.Name)
	}
	return strings.Join(n, ", ")
}
