package converge

import (
	"fmt"
	"time"

	"github.com/godwit/godwit/api"
)

// The engine runs a policy (api.Policy: auto is the engine itself; the
// others are peers' fixed policies, run for comparison or on request)
// and reports the technique running now (api.Technique, Report.Strategy).

// Defaults of the engine (docs/migration-tuning.md says why).
const (
	// DefaultDowntime is the auto policy's downtime target when the
	// migration sets none; QEMU's own default (300 ms) is what the peer
	// policies keep.
	DefaultDowntime = 50 * time.Millisecond
	// QEMUDowntime is QEMU's default downtime limit.
	QEMUDowntime = 300 * time.Millisecond
	// DefaultTimeoutPerGiB bounds a migration, per GiB of guest RAM, at
	// least minTimeout: the last resort when nothing else converged.
	DefaultTimeoutPerGiB = 60 * time.Second
	minTimeout           = 60 * time.Second

	// preCopyFactor: pre-copy is chosen when it is predicted to converge
	// within this multiple of the bound (memory / bandwidth).
	preCopyFactor = 1.25
	// throttleShare: a throttled guest should dirty at most this share
	// of the bandwidth, so pre-copy converges within ~1.2× the bound.
	throttleShare = 0.15
	// stallShrink: a pass that leaves more than this share of the one
	// before it is not making progress.
	stallShrink = 0.8
	// throttleLag: how long a throttle asked for now takes to slow the
	// guest. QEMU (7.2 to 9.x) applies its auto-converge throttle only
	// when two dirty-bitmap syncs at least a second apart both see
	// pre-copy fall behind. A rest predicted to be sent sooner is not
	// throttled: it gains nothing, and under TCG the throttled moves of
	// the drain benchmark sent memory about 30 % slower.
	throttleLag = 2 * time.Second
)

// Timeout actions.
const (
	TimeoutForce = "force" // post-copy when allowed, else pause the guest
	TimeoutAbort = "abort" // cancel: the VM stays on the source
)

// Config is what a migration permits and asks.
type Config struct {
	Policy api.Policy // api.PolicyAuto when empty
	// BandwidthBytesPerS is the cap the migration may use, in bytes/s.
	BandwidthBytesPerS float64
	MaxDowntime        time.Duration // 0: the policy's default
	RAM                int64         // guest RAM, bytes
	PostCopy           bool          // post-copy permitted (both ends agreed, disks shared)
	// TimeoutPerGiB and TimeoutAction: the last resort (0: the default,
	// force). The peer policies have none unless one is set.
	TimeoutPerGiB time.Duration
	TimeoutAction string
}

// Estimate is what is measured of the guest before the move.
type Estimate struct {
	DirtyRate float64 // bytes/s
	Source    string  // how: page-sampling; empty when there is none
	// Resident is the guest RAM resident on the host, in bytes (0: not
	// known): an upper bound of the non-zero memory a first pass sends,
	// zero pages crossing as markers of a few bytes.
	Resident int64
}

// Sample is a migration's state as the driver reads it.
type Sample struct {
	Elapsed     time.Duration
	Pass        int   // the pass in progress, 1 the first (QEMU's dirty-sync-count)
	Transferred int64 // bytes
	Remaining   int64
	DirtyRate   float64 // bytes/s, from the last pass
	Throughput  float64 // bytes/s
	Throttle    int     // vCPU throttle now, %
}

// Action kinds the driver carries out.
const (
	ActStartPostCopy = "start post-copy"
	ActThrottle      = "throttle" // Action.Throttle: the throttle to reach
	ActPause         = "pause"    // stop the guest for the final copy
	ActAbort         = "abort"    // cancel the migration
)

// Action is one thing the engine wants done now.
type Action struct {
	Kind     string
	Throttle int // for ActThrottle, in %
	Reason   string
}

// Setup is what the driver sets before the migration starts.
type Setup struct {
	MaxDowntime  time.Duration
	PostCopy     bool // the post-copy capability (armed; switching is an action)
	AutoConverge bool // the auto-converge capability
	// Throttle parameters for auto-converge, in %.
	ThrottleInitial, ThrottleIncrement int
	TailSlow                           bool
}

// Decision is one choice or switch, for the migration's record.
type Decision struct {
	At     time.Time
	Action string
	Reason string
}

// Report explains the engine's reasoning (migration show).
type Report struct {
	Policy          api.Policy
	Strategy        api.Technique // running now
	DirtyRate       float64
	DirtyRateSource string
	Bandwidth       float64
	Prediction      string
	Predicted       time.Duration
	PostCopyAllowed bool
	Throttle        int
	Decisions       []Decision
}

// Engine decides for one migration.
type Engine struct {
	cfg   Config
	setup Setup
	rep   Report
	now   func() time.Time

	mem         int64 // what a first pass sends: resident memory when known, else all RAM
	pass        int   // the pass seen last
	passRest    int64 // what the pass in progress started with
	prevRest    int64 // what the pass before it started with
	stalls      int
	switched    bool // to post-copy
	throttleTo  int  // the throttle last asked for
	timedOut    bool
	deadline    time.Duration
	immediatePC bool // switch to post-copy as soon as the migration runs
}

// New plans a migration from its config and the dirty rate measured
// before it. now may be nil (time.Now).
func New(cfg Config, est Estimate, now func() time.Time) *Engine {
	if now == nil {
		now = time.Now
	}
	if cfg.Policy == "" {
		cfg.Policy = api.PolicyAuto
	}
	e := &Engine{cfg: cfg, now: now, mem: cfg.RAM}
	if est.Resident > 0 && est.Resident < cfg.RAM {
		e.mem = est.Resident
	}
	e.rep = Report{Policy: cfg.Policy, DirtyRate: est.DirtyRate, DirtyRateSource: est.Source,
		Bandwidth: cfg.BandwidthBytesPerS, PostCopyAllowed: cfg.PostCopy}
	e.setup = Setup{MaxDowntime: cfg.MaxDowntime, PostCopy: cfg.PostCopy, ThrottleInitial: 20, ThrottleIncrement: 10}
	if e.setup.MaxDowntime == 0 {
		e.setup.MaxDowntime = QEMUDowntime
	}
	per, action := cfg.TimeoutPerGiB, cfg.TimeoutAction
	if per > 0 || cfg.Policy == api.PolicyAuto {
		if per == 0 {
			per = DefaultTimeoutPerGiB
		}
		e.deadline = max(minTimeout, time.Duration(float64(per)*float64(cfg.RAM)/(1<<30)))
	}
	if action == "" {
		e.cfg.TimeoutAction = TimeoutForce
	}
	switch cfg.Policy {
	case api.PolicyPreCopy:
		e.rep.Strategy = api.TechniquePreCopy
	case api.PolicyAutoConverge:
		e.rep.Strategy, e.setup.AutoConverge = api.TechniqueAutoConverge, true
	case api.PolicyPostCopy:
		e.rep.Strategy = api.TechniquePreCopy
		e.decide("plan", "one pre-copy pass, then post-copy")
	default:
		e.plan(est)
	}
	return e
}

// plan is the auto policy's first choice.
func (e *Engine) plan(est Estimate) {
	cfg := &e.cfg
	if cfg.MaxDowntime == 0 {
		e.setup.MaxDowntime = DefaultDowntime
	}
	// Throttling is always armed (it costs nothing unless QEMU sees
	// pre-copy fall behind), tail-slow so it stops rising once enough.
	e.setup.AutoConverge, e.setup.TailSlow = true, true
	e.setup.ThrottleIncrement = 20
	B, D, M := cfg.BandwidthBytesPerS, est.DirtyRate, e.mem
	if est.Source == "" || B <= 0 || cfg.RAM <= 0 {
		e.choose(api.TechniquePreCopy, "no dirty rate measured before the move: start with pre-copy and decide on its pass statistics")
		return
	}
	p := PredictPreCopy(M, 0, D, B, e.setup.MaxDowntime)
	sending := fmt.Sprintf("%d MiB of RAM", cfg.RAM>>20)
	if M < cfg.RAM {
		sending = fmt.Sprintf("%s resident of %s", size(M), sending)
	}
	e.rep.Prediction = fmt.Sprintf("dirty %s against %s, %s: %s", rate(D), rate(B), sending, p.Describe())
	e.setup.ThrottleInitial = throttleFor(D, B, throttleShare)
	e.throttleTo = e.setup.ThrottleInitial // QEMU starts there: nothing to raise yet
	switch {
	case p.Converges && p.Factor <= preCopyFactor:
		e.rep.Predicted = p.Total
		e.choose(api.TechniquePreCopy, e.rep.Prediction)
	case cfg.PostCopy:
		// Post-copy at once sends each page once: the bound itself, and
		// a downtime of the device state only.
		e.rep.Predicted, e.immediatePC = seconds(float64(M)/B), true
		e.choose(api.TechniquePostCopy, e.rep.Prediction+"; post-copy from the start sends each page once")
	default:
		left := D * float64(100-e.setup.ThrottleInitial) / 100
		tp := PredictThrottled(M, 0, D, left, B, e.setup.MaxDowntime, throttleLag)
		e.rep.Predicted = tp.Total
		e.choose(api.TechniqueAutoConverge, fmt.Sprintf("%s; post-copy not allowed: throttle the vCPUs to %d %% (dirty ≈ %s) once QEMU sees pre-copy fall behind (≥ %s in); with it %s",
			e.rep.Prediction, e.setup.ThrottleInitial, rate(left), throttleLag, tp.Describe()))
	}
}

// Setup returns what to set before the migration starts.
func (e *Engine) Setup() Setup { return e.setup }

// Report returns the engine's reasoning so far.
func (e *Engine) Report() Report {
	r := e.rep
	r.Decisions = append([]Decision(nil), e.rep.Decisions...)
	return r
}

func (e *Engine) decide(action, reason string) {
	e.rep.Decisions = append(e.rep.Decisions, Decision{At: e.now().UTC(), Action: action, Reason: reason})
}

// choose plans technique t and records the choice, named after it.
func (e *Engine) choose(t api.Technique, reason string) {
	e.rep.Strategy = t
	e.decide(string(t), reason)
}

// Observe takes a sample of the running migration and returns what to do
// now (usually nothing).
func (e *Engine) Observe(s Sample) []Action {
	e.rep.Throttle = s.Throttle
	if e.switched || e.timedOut {
		return nil
	}
	newPass := s.Pass > e.pass
	if newPass {
		e.prevRest, e.passRest, e.pass = e.passRest, s.Remaining, s.Pass
	}
	if e.deadline > 0 && s.Elapsed >= e.deadline {
		e.timedOut = true
		why := fmt.Sprintf("not converged after %s (the completion timeout for %d MiB of RAM)", s.Elapsed.Round(time.Second), e.cfg.RAM>>20)
		switch {
		case e.cfg.TimeoutAction == TimeoutAbort:
			return e.act(Action{Kind: ActAbort, Reason: why})
		case e.cfg.PostCopy:
			return e.switchPostCopy(why)
		default:
			return e.act(Action{Kind: ActPause, Reason: why + "; post-copy not allowed: pause the guest for the final copy"})
		}
	}
	switch e.cfg.Policy {
	case api.PolicyPostCopy:
		if s.Pass >= 2 {
			return e.switchPostCopy("the first pass is done (Ganeti's rule)")
		}
		return nil
	case api.PolicyAuto:
	default:
		return nil
	}
	if e.immediatePC {
		return e.switchPostCopy(e.rep.Prediction)
	}
	if !newPass || s.Pass < 2 {
		return nil
	}
	if float64(s.Remaining) <= e.cfg.BandwidthBytesPerS*e.setup.MaxDowntime.Seconds() {
		return nil // the rest fits the downtime: QEMU switches over now
	}
	// A pass ended: what the guest dirtied meanwhile is the new pass.
	// The throughput QEMU reports is the last sync period's; a short
	// pass under-reads it, so the move's average so far counts too.
	B, D := s.Throughput, s.DirtyRate
	if s.Elapsed > 0 {
		B = max(B, float64(s.Transferred)/s.Elapsed.Seconds())
	}
	if B <= 0 {
		B = e.cfg.BandwidthBytesPerS
	}
	if e.rep.DirtyRateSource == "" || e.rep.DirtyRateSource == "pass statistics" {
		e.rep.DirtyRate, e.rep.DirtyRateSource = D, "pass statistics"
	}
	p := PredictPreCopy(s.Remaining, e.passRest, D, B, e.setup.MaxDowntime)
	stalled := e.prevRest > 0 && float64(s.Remaining) > stallShrink*float64(e.prevRest)
	if stalled {
		e.stalls++
	} else {
		e.stalls = 0 // two stalls in a row, not two in the whole move
	}
	slow := !p.Converges || p.Total > seconds(float64(e.mem)/B*(preCopyFactor-1))
	if !slow && e.stalls < 2 {
		return nil
	}
	why := fmt.Sprintf("pass %d starts with %s left, dirty %s against %s: %s", s.Pass, size(s.Remaining), rate(D), rate(B), p.Describe())
	if e.cfg.PostCopy {
		return e.switchPostCopy(why)
	}
	if p.Converges && p.Total < throttleLag {
		return nil // done before a throttle could slow the guest
	}
	// Throttle: the rate seen is already throttled by s.Throttle.
	unthrottled := D
	if s.Throttle > 0 && s.Throttle < 100 {
		unthrottled = D * 100 / float64(100-s.Throttle)
	}
	want := throttleFor(unthrottled, B, throttleShare)
	if want <= max(s.Throttle, e.throttleTo) {
		return nil
	}
	e.throttleTo = want
	e.rep.Strategy = api.TechniqueAutoConverge
	return e.act(Action{Kind: ActThrottle, Throttle: want, Reason: why + fmt.Sprintf("; throttle the vCPUs to %d %%", want)})
}

func (e *Engine) switchPostCopy(why string) []Action {
	e.switched, e.rep.Strategy = true, api.TechniquePostCopy
	return e.act(Action{Kind: ActStartPostCopy, Reason: why})
}

func (e *Engine) act(a Action) []Action {
	e.decide(a.Kind, a.Reason)
	return []Action{a}
}

func rate(bps float64) string { return fmt.Sprintf("%.0f MB/s", bps/1e6) }

func size(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }
