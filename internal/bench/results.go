package bench

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
)

// The benchmark's fixed physics: the convergence runs cap QEMU at 125 MB/s
// (1 Gbit/s), and the drain's links are shaped to 1 Gbit/s.
const (
	convBandwidthMBPerS = 125
	linkRateBps         = 125e6
)

// Targets of issue 5.
const (
	targetBoundRatio = 1.3 // total ≤ 1.3 × bound
	targetPeerSlack  = 1.1 // never > 10 % slower than the best peer
	targetDowntimeMS = 50  // downtime ≤ 50 ms
	// The guest's worst stall (heartbeat gap): 200 ms under KVM (issue 5),
	// 300 ms under TCG, where the guest's own code is emulated (issue 13);
	// and never more than the best converging peer's at that rate.
	targetStallKVM       = 200 * time.Millisecond
	targetStallTCG       = 300 * time.Millisecond
	targetDrainRatio     = 1.2 // makespan ≤ 1.2 × bound
	targetOverheadMedian = 300 * time.Millisecond
	peerDowntimeLimitMS  = 300 // QEMU's default downtime limit, run by the peers
)

// boundMS is the least time a migration can take: the memory that must
// really move (RAM less its zero pages) at the bandwidth, in ms.
func boundMS(memTotal, memZero int64, bandwidthBps float64) int64 {
	if memTotal <= 0 || bandwidthBps <= 0 {
		return 0
	}
	return int64(math.Round(float64(max(memTotal-memZero, 0)) / bandwidthBps * 1000))
}

// ratio is a/b, or 0 when either is unknown.
func ratio(a, b int64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// convRun is one live migration of the convergence scenario.
type convRun struct {
	RateMB    int
	Policy    api.Policy
	Converged bool
	// Outcome is the migration's end state, or why it did not run
	// (refused, aborted at the limit).
	Outcome    string
	TotalMS    int64 // QEMU's total time, or the end-to-end time without one
	E2EMS      int64 // API accepted → completed, seen by polling
	BoundMS    int64
	DowntimeMS int64
	HasDown    bool
	SentRatio  float64 // bytes sent / guest RAM
	WorstGap   time.Duration
	Strategy   string
	Oops       string // the first oops marker on the consoles, or ""
	// OverCapBps is the sending rate of a move that beat the cap (0
	// when it kept to it): its total and bound compare with nothing.
	OverCapBps float64
	// What a client outside every host saw (clientnet.go), when
	// Measured: the longest gap in ping replies (the blackout), the
	// longest gap in the guest's TCP stream, and whether that connection
	// lived through the move (ClientErr says why not).
	Measured  bool
	Blackout  time.Duration
	StreamGap time.Duration
	TCP       bool
	ClientErr string
}

func (r convRun) boundRatio() float64 { return ratio(r.TotalMS, r.BoundMS) }

// runFromMigration fills a run's measurements from the final record.
func runFromMigration(r *convRun, m api.Migration, e2e time.Duration, bandwidthBps float64) {
	r.Outcome = string(m.State)
	if m.State != api.MigCompleted && m.Reason != "" {
		r.Outcome += ": " + m.Reason
	}
	r.E2EMS = e2e.Milliseconds()
	r.TotalMS = m.Progress.TotalTimeMS
	if r.TotalMS <= 0 {
		r.TotalMS = r.E2EMS
	}
	p := m.Progress
	r.BoundMS = boundMS(p.MemoryTotal, p.MemoryZero, bandwidthBps)
	r.DowntimeMS, r.HasDown = p.DowntimeMS, m.State == api.MigCompleted
	if p.MemoryTotal > 0 {
		r.SentRatio = float64(p.MemoryTransferred) / float64(p.MemoryTotal)
	}
	r.Strategy = strategyOf(m)
	if rate := overCap(p, bandwidthBps); rate > 0 {
		r.OverCapBps = rate
		r.Outcome += fmt.Sprintf("; sent at %.0f MB/s, above the %.0f MB/s cap", rate/1e6, bandwidthBps/1e6)
	}
}

// overCap is the migration's average sending rate when it beat the
// bandwidth cap by more than 10 % (else 0): a phase that ignored the cap
// (QEMU's post-copy has its own, max-postcopy-bandwidth, unlimited by
// default) makes the run incomparable with the others and its bound.
func overCap(p api.MigrationProgress, bandwidthBps float64) float64 {
	if p.TotalTimeMS <= 0 || bandwidthBps <= 0 {
		return 0
	}
	rate := float64(p.MemoryTransferred) / (float64(p.TotalTimeMS) / 1000)
	if rate > 1.1*bandwidthBps {
		return rate
	}
	return 0
}

// strategyOf names what ran: the driver strategy recorded on the
// migration, then the engine's last technique when the strategy does not
// list it ("shared-storage/pre-copy, then auto-converge").
func strategyOf(m api.Migration) string {
	s := string(m.Strategy)
	if c := m.Convergence; c != nil && c.Strategy != "" && !m.Strategy.Has(c.Strategy) {
		if s != "" {
			s += ", then " + string(c.Strategy)
		} else {
			s = string(c.Strategy)
		}
	}
	if s == "" {
		return "–"
	}
	return s
}

// convTable is the convergence scenario's table, one row per run.
func convTable(runs []convRun) *table {
	t := newTable("rate MB/s", "policy", "converged", "total", "end to end", "total/bound", "downtime", "sent/RAM", "worst hb gap",
		"client blackout", "TCP", "strategy", "guest oops", "outcome").
		alignRight(0, 3, 4, 5, 6, 7, 8, 9)
	for _, r := range runs {
		oops := r.Oops
		if oops == "" {
			oops = "none"
		}
		total, br := fmtSeconds(r.TotalMS), fmtRatio(r.boundRatio())
		if !r.Converged && r.TotalMS > 0 {
			total, br = "("+total+")", "("+br+")"
		}
		sent := "–"
		if r.SentRatio > 0 {
			sent = fmt.Sprintf("%.2f", r.SentRatio)
		}
		blackout, tcp := "–", "–"
		if r.Measured {
			blackout, tcp = fmtGap(r.Blackout), "kept"
			if !r.TCP {
				tcp = "broken"
			}
		}
		t.add(fmt.Sprint(r.RateMB), string(r.Policy), yesNo(r.Converged), total, fmtSeconds(r.E2EMS), br,
			fmtMS(r.DowntimeMS, r.HasDown), sent, fmtGap(r.WorstGap), blackout, tcp, r.Strategy, oops, r.Outcome)
	}
	return t
}

// drainRun is one drain of the drain scenario.
type drainRun struct {
	Name       string          // godwit, one-at-a-time, two-at-a-time
	Request    string          // what was asked, in words
	State      api.IntentState // the intent's final state
	Moves      int             // live migrations that completed
	VMs        int
	MakespanMS int64
	BoundMS    int64 // sum of non-zero memory at the link rate
	SentBytes  int64 // memory sent, over all moves
	Nonzero    int64 // non-zero memory, over all moves
	MaxDownMS  int64
	Strategies string
	// What the VMs' clients saw over the drain: how many were measured,
	// how many kept their TCP connection, and the worst blackout.
	Measured      int
	TCPKept       int
	WorstBlackout time.Duration
	ClientErrs    []string
}

func drainTable(runs []drainRun) *table {
	t := newTable("drain", "request", "intent", "moved", "makespan", "bound", "makespan/bound", "sent/non-zero", "max downtime",
		"worst client blackout", "TCP kept", "strategies").
		alignRight(3, 4, 5, 6, 7, 8, 9, 10)
	for _, r := range runs {
		blackout, kept := "–", "–"
		if r.Measured > 0 {
			blackout, kept = fmtGap(r.WorstBlackout), fmt.Sprintf("%d/%d", r.TCPKept, r.Measured)
		}
		t.add(r.Name, r.Request, string(r.State), fmt.Sprintf("%d/%d", r.Moves, r.VMs), fmtSeconds(r.MakespanMS), fmtSeconds(r.BoundMS),
			fmtRatio(ratio(r.MakespanMS, r.BoundMS)), fmtRatio(ratio(r.SentBytes, r.Nonzero)), fmtMS(r.MaxDownMS, r.Moves > 0),
			blackout, kept, r.Strategies)
	}
	return t
}

// overheadRun is one idle migration of the overhead scenario.
type overheadRun struct {
	E2E    time.Duration // API accepted → completed
	QEMU   time.Duration // the migration's own total time
	State  api.MigrationState
	Reason string // why it did not complete
	// Where the overhead goes, from the migration's phases: Prepare is
	// from the record's creation to the transfer's start (the
	// destination's QEMU starts in it), Finish from the switch-over to
	// completed (the destination runs, the source's QEMU quits).
	Prepare, Finish time.Duration
}

// phaseSplit fills r's Prepare and Finish from m's phases.
func (r *overheadRun) phaseSplit(m api.Migration) {
	at := map[api.MigrationState]time.Time{}
	for _, p := range m.Phases {
		if _, ok := at[p.State]; !ok {
			at[p.State] = p.At
		}
	}
	if t, ok := at[api.MigTransferring]; ok {
		r.Prepare = t.Sub(m.CreatedAt)
	}
	if s, ok := at[api.MigSwitchingOver]; ok {
		if e, ok := at[api.MigCompleted]; ok {
			r.Finish = e.Sub(s)
		}
	}
}

func (r overheadRun) overhead() time.Duration { return r.E2E - r.QEMU }

// overheadStats are the median and maximum overhead of completed runs.
func overheadStats(runs []overheadRun) (median, worst time.Duration, n int) {
	var ds []time.Duration
	for _, r := range runs {
		if r.State == api.MigCompleted {
			ds = append(ds, r.overhead())
		}
	}
	if len(ds) == 0 {
		return 0, 0, 0
	}
	median = medianOf(ds) // sorts ds
	return median, ds[len(ds)-1], len(ds)
}

func overheadTable(runs []overheadRun) *table {
	t := newTable("run", "state", "end to end", "QEMU total", "overhead", "prepare", "switch-over", "rest").alignRight(0, 2, 3, 4, 5, 6, 7)
	ms := func(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
	for i, r := range runs {
		if r.State != api.MigCompleted {
			t.add(fmt.Sprint(i+1), string(r.State)+": "+r.Reason, fmtSeconds(r.E2E.Milliseconds()), "–", "–", "–", "–", "–")
			continue
		}
		t.add(fmt.Sprint(i+1), string(r.State), fmtSeconds(r.E2E.Milliseconds()), fmtSeconds(r.QEMU.Milliseconds()),
			ms(r.overhead()), ms(r.Prepare), ms(r.Finish), ms(r.overhead()-r.Prepare-r.Finish))
	}
	med, worst, n := overheadStats(runs)
	if n > 0 {
		var prep, fin []time.Duration
		for _, r := range runs {
			if r.State == api.MigCompleted {
				prep, fin = append(prep, r.Prepare), append(fin, r.Finish)
			}
		}
		t.add("median", fmt.Sprintf("%d completed", n), "", "", ms(med), ms(medianOf(prep)), ms(medianOf(fin)), "")
		t.add("max", "", "", "", ms(worst), "", "", "")
	}
	return t
}

// medianOf is the median of ds (which it sorts).
func medianOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	if len(ds)%2 == 0 {
		return (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
	}
	return ds[len(ds)/2]
}

// results is everything one benchmark run measured.
type results struct {
	Accel    string
	Conv     []convRun
	Drain    []drainRun
	Overhead []overheadRun
	// Encryption is the encryption scenario's moves, plain and encrypted
	// alternately; it has no target.
	Encryption []encRun
	// Repro is the repro scenario's runs, one set per QEMU binary; it has
	// no targets and is not in Ran.
	Repro []reproSet
	// Ran names the scenarios that ran; targets of the others are
	// reported as not run.
	Ran []string
}

// Target verdicts.
const (
	verdictPass   = "PASS"
	verdictFail   = "FAIL"
	verdictNotRun = "NOT RUN"
)

type verdict struct {
	Target string
	Result string
	Detail string
}

// evaluate checks every target of issue 5 against the results.
func evaluate(r results) []verdict {
	ran := func(s string) bool { return slices.Contains(r.Ran, s) }
	var out []verdict
	add := func(target, result, detail string) { out = append(out, verdict{target, result, detail}) }
	notRun := func(target, scenario string) { add(target, verdictNotRun, "the "+scenario+" scenario did not run") }

	if !ran(scenarioConvergence) {
		for _, t := range []string{"godwit converges in 100 % of scenarios", "total ≤ 1.3× bound at every rate",
			"never > 10 % slower than the best peer", "downtime ≤ 50 ms everywhere", stallTargetName} {
			notRun(t, scenarioConvergence)
		}
	} else {
		out = append(out, convVerdicts(r)...)
	}

	const drainTarget = "drain makespan ≤ 1.2× bound and below both peers"
	if !ran(scenarioDrain) {
		notRun(drainTarget, scenarioDrain)
	} else {
		res, detail := drainVerdict(r.Drain)
		add(drainTarget, res, detail)
	}

	const ohTarget = "control-plane overhead median ≤ 0.3 s"
	if !ran(scenarioOverhead) {
		notRun(ohTarget, scenarioOverhead)
	} else {
		med, worst, n := overheadStats(r.Overhead)
		switch {
		case n == 0:
			add(ohTarget, verdictFail, "no migration completed")
		default:
			res, detail := verdictPass, fmt.Sprintf("median %d ms, max %d ms over %d runs", med.Milliseconds(), worst.Milliseconds(), n)
			if med > targetOverheadMedian {
				res = verdictFail
			}
			if failed := len(r.Overhead) - n; failed > 0 {
				res = verdictFail
				detail += fmt.Sprintf("; %d of %d migrations did not complete", failed, len(r.Overhead))
			}
			add(ohTarget, res, detail)
		}
	}
	return out
}

// stallTargetName is the stall target as the report names it.
const stallTargetName = "worst guest stall ≤ 200 ms (KVM) or 300 ms (TCG), and ≤ the best peer's"

// The networking targets (issue 15), as the report names them, and the
// blackout's allowance over the guest's own worst heartbeat gap.
const (
	tcpTargetName       = "a client's TCP connection survives 100 % of live moves"
	blackoutTargetName  = "client blackout ≤ the guest's worst heartbeat gap + 50 ms"
	targetBlackoutSlack = 50 * time.Millisecond
)

// convVerdicts checks the convergence targets; only godwit's own runs
// (policy auto) are held to them, the peers are the yardstick.
func convVerdicts(r results) []verdict {
	var auto []convRun
	best := map[int]int64{} // rate → the fastest converged peer's total
	for _, c := range r.Conv {
		if c.Policy == api.PolicyAuto {
			auto = append(auto, c)
			continue
		}
		if c.Converged && (best[c.RateMB] == 0 || c.TotalMS < best[c.RateMB]) {
			best[c.RateMB] = c.TotalMS
		}
	}
	if len(auto) == 0 {
		const why = "policy auto was not among the policies run"
		return []verdict{
			{"godwit converges in 100 % of scenarios", verdictNotRun, why},
			{"total ≤ 1.3× bound at every rate", verdictNotRun, why},
			{"never > 10 % slower than the best peer", verdictNotRun, why},
			{"downtime ≤ 50 ms everywhere", verdictNotRun, why},
			{stallTargetName, verdictNotRun, why},
		}
	}
	sort.Slice(auto, func(i, j int) bool { return auto[i].RateMB < auto[j].RateMB })

	bestGap := map[int]time.Duration{} // rate → the best converging peer's worst gap
	for _, c := range r.Conv {
		if c.Policy != api.PolicyAuto && c.Converged && c.Oops == "" && (bestGap[c.RateMB] == 0 || c.WorstGap < bestGap[c.RateMB]) {
			bestGap[c.RateMB] = c.WorstGap
		}
	}
	stallLimit := targetStallTCG
	if r.Accel == "kvm" {
		stallLimit = targetStallKVM
	}
	var conv, bound, peer, down, stall []string
	converged, boundOK, peerOK, downOK, stallOK := 0, true, true, true, true
	var worst time.Duration
	for _, c := range auto {
		if c.Converged && c.Oops == "" {
			converged++
		} else {
			why := c.Outcome
			if c.Oops != "" {
				why = "guest " + c.Oops
			}
			conv = append(conv, fmt.Sprintf("%d MB/s: %s", c.RateMB, why))
		}
		br := c.boundRatio()
		switch {
		case c.OverCapBps > 0:
			boundOK = false
			bound = append(bound, fmt.Sprintf("%d MB/s: sent at %.0f MB/s, above the cap: no comparison", c.RateMB, c.OverCapBps/1e6))
		case !c.Converged || br == 0 || br > targetBoundRatio:
			boundOK = false
			bound = append(bound, fmt.Sprintf("%d MB/s: %s", c.RateMB, fmtRatio(br)))
		}
		if b := best[c.RateMB]; b > 0 && (!c.Converged || float64(c.TotalMS) > targetPeerSlack*float64(b)) {
			peerOK = false
			peer = append(peer, fmt.Sprintf("%d MB/s: %s vs best peer %s", c.RateMB, fmtSeconds(c.TotalMS), fmtSeconds(b)))
		}
		if !c.HasDown || c.DowntimeMS > targetDowntimeMS {
			downOK = false
			down = append(down, fmt.Sprintf("%d MB/s: %s", c.RateMB, fmtMS(c.DowntimeMS, c.HasDown)))
		}
		worst = max(worst, c.WorstGap)
		switch bg := bestGap[c.RateMB]; {
		case c.WorstGap > stallLimit:
			stallOK = false
			stall = append(stall, fmt.Sprintf("%d MB/s: %s", c.RateMB, fmtGap(c.WorstGap)))
		case bg > 0 && c.WorstGap > bg:
			stallOK = false
			stall = append(stall, fmt.Sprintf("%d MB/s: %s, best peer %s", c.RateMB, fmtGap(c.WorstGap), fmtGap(bg)))
		}
	}
	pf := func(ok bool) string {
		if ok {
			return verdictPass
		}
		return verdictFail
	}
	detail := func(ok bool, good string, bad []string) string {
		if ok {
			return good
		}
		return strings.Join(bad, "; ")
	}
	rates := fmt.Sprintf("%d dirty rates", len(auto))
	out := []verdict{
		{"godwit converges in 100 % of scenarios", pf(converged == len(auto)), detail(converged == len(auto), fmt.Sprintf("%d of %d", converged, len(auto)), conv)},
		{"total ≤ 1.3× bound at every rate", pf(boundOK), detail(boundOK, "at all "+rates, bound)},
		{"never > 10 % slower than the best peer", pf(peerOK), detail(peerOK, "at all "+rates, peer)},
		{"downtime ≤ 50 ms everywhere", pf(downOK), detail(downOK, "at all "+rates, down)},
	}
	out = append(out, verdict{stallTargetName, pf(stallOK), detail(stallOK, fmt.Sprintf("worst %s (limit %s under %s)", fmtGap(worst), fmtGap(stallLimit), r.Accel), stall)})
	return append(out, clientVerdicts(r.Conv, r.Drain)...)
}

// clientVerdicts are the networking targets over every move a client
// measured, whichever the policy: its TCP connection survives, and the
// blackout it sees is at most targetBlackoutSlack above the guest's own
// worst heartbeat gap in the same move (the network adds no more than
// that to what the move costs the guest).
func clientVerdicts(runs []convRun, drains []drainRun) []verdict {
	var measured, kept, timed int
	var broken, slow []string
	var worst time.Duration
	for _, d := range drains { // the TCP target covers the drains' moves too
		measured += d.Measured
		kept += d.TCPKept
		for _, e := range d.ClientErrs {
			broken = append(broken, "drain "+d.Name+" "+e)
		}
	}
	for _, c := range runs {
		if !c.Measured {
			continue
		}
		measured, timed = measured+1, timed+1
		if c.TCP {
			kept++
		} else {
			broken = append(broken, fmt.Sprintf("%d MB/s %s: %s", c.RateMB, c.Policy, cmp.Or(c.ClientErr, "seq broken")))
		}
		worst = max(worst, c.Blackout-c.WorstGap)
		if c.Blackout > c.WorstGap+targetBlackoutSlack {
			slow = append(slow, fmt.Sprintf("%d MB/s %s: %s vs heartbeat gap %s", c.RateMB, c.Policy, fmtGap(c.Blackout), fmtGap(c.WorstGap)))
		}
	}
	const notMeasured = "no move was measured from a client"
	tcp := verdict{tcpTargetName, verdictNotRun, notMeasured}
	if measured > 0 {
		tcp = verdict{tcpTargetName, verdictPass, fmt.Sprintf("%d of %d moves", kept, measured)}
		if kept < measured {
			tcp.Result, tcp.Detail = verdictFail, strings.Join(broken, "; ")
		}
	}
	bo := verdict{blackoutTargetName, verdictNotRun, notMeasured}
	if timed > 0 {
		bo = verdict{blackoutTargetName, verdictPass, fmt.Sprintf("at most %s above the heartbeat gap, %d moves", fmtGap(max(worst, 0)), timed)}
		if len(slow) > 0 {
			bo.Result, bo.Detail = verdictFail, strings.Join(slow, "; ")
		}
	}
	return []verdict{tcp, bo}
}

// drainVerdict checks godwit's drain against its bound and the peers.
func drainVerdict(runs []drainRun) (string, string) {
	var g *drainRun
	var peers []drainRun
	for i := range runs {
		if runs[i].Name == drainGodwit {
			g = &runs[i]
		} else {
			peers = append(peers, runs[i])
		}
	}
	if g == nil {
		return verdictNotRun, "godwit's drain did not run"
	}
	var bad []string
	if g.State != api.IntentCompleted {
		bad = append(bad, "godwit's drain ended "+string(g.State))
	}
	r := ratio(g.MakespanMS, g.BoundMS)
	if r == 0 || r > targetDrainRatio {
		bad = append(bad, "makespan/bound "+fmtRatio(r))
	}
	for _, p := range peers {
		if p.State == api.IntentCompleted && p.MakespanMS <= g.MakespanMS {
			bad = append(bad, fmt.Sprintf("%s took %s, godwit %s", p.Name, fmtSeconds(p.MakespanMS), fmtSeconds(g.MakespanMS)))
		}
	}
	if len(bad) > 0 {
		return verdictFail, strings.Join(bad, "; ")
	}
	return verdictPass, fmt.Sprintf("makespan %s = %s bound, peers %s", fmtSeconds(g.MakespanMS), fmtRatio(r), peerList(peers))
}

func peerList(peers []drainRun) string {
	var s []string
	for _, p := range peers {
		s = append(s, p.Name+" "+fmtSeconds(p.MakespanMS))
	}
	if len(s) == 0 {
		return "not run"
	}
	return strings.Join(s, ", ")
}

func verdictTable(vs []verdict) *table {
	t := newTable("target", "result", "detail")
	for _, v := range vs {
		t.add(v.Target, v.Result, v.Detail)
	}
	return t
}
