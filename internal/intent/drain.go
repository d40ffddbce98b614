package intent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/scheduler"
	"github.com/godwit/godwit/internal/service"
	"github.com/godwit/godwit/internal/store"
)

// validateDrain checks a drain request; def is the cluster's effective
// settings, which fill in the limits it leaves out.
func validateDrain(req *api.DrainRequest, def api.ClusterSettings) error {
	if err := req.Normalize(); err != nil {
		return errs.Invalid("%v", err)
	}
	switch {
	case req.OnFailure == "":
		req.OnFailure = api.OnFailureSkip
	case !slices.Contains(api.FailurePolicies, req.OnFailure):
		return errs.Invalid("on_failure %q is unknown; use skip, cold, stop or abort", req.OnFailure)
	}
	for _, l := range []struct {
		name string
		v    int
	}{{"max_per_source", req.MaxPerSource}, {"max_per_destination", req.MaxPerDestination}, {"max_per_cluster", req.MaxPerCluster},
		{"max_transfers_per_source", req.MaxTransfersPerSource}} {
		if l.v < 0 || l.v > service.MaxConcurrencyLimit {
			return errs.Invalid("%s must be between 1 and %d (0 for the cluster's setting)", l.name, service.MaxConcurrencyLimit)
		}
	}
	if perSource := cmp.Or(req.MaxPerSource, def.MaxPerSource); req.MaxTransfersPerSource > perSource {
		return errs.Invalid("max_transfers_per_source (%d) cannot exceed the moves out of the host at once (max_per_source, %d): raise max_per_source or lower max_transfers_per_source",
			req.MaxTransfersPerSource, perSource)
	}
	if req.MaxDowntimeMS < 0 || req.MaxDowntimeMS > service.MaxDowntimeLimitMS {
		return errs.Invalid("max_downtime_ms must be between 1 and %d (0 for the default)", service.MaxDowntimeLimitMS)
	}
	if req.BandwidthMBPerS < 0 || req.BandwidthMBPerS > service.MaxBandwidthMBPerS {
		return errs.Invalid("bandwidth_mb_per_s must be between 1 and %d (0 for the default)", service.MaxBandwidthMBPerS)
	}
	return service.ValidatePolicy(api.KindLive, req.Policy, false, false)
}

// Drain takes a host that is up out of scheduling and moves every VM on
// it away: running VMs live, stopped ones cold, each under the failure
// policy. With DryRun it returns the plan and changes nothing.
func (r *Runner) Drain(ctx context.Context, host string, req api.DrainRequest) (api.Intent, error) {
	def, err := r.svc.EffectiveSettings(ctx)
	if err != nil {
		return api.Intent{}, err
	}
	if err := validateDrain(&req, def); err != nil {
		return api.Intent{}, err
	}
	h, err := r.store.Host(ctx, host)
	if errors.Is(err, errs.ErrNotFound) {
		return api.Intent{}, errs.NotFound("host %q not found; list hosts with: godwit host list", host)
	} else if err != nil {
		return api.Intent{}, err
	}
	if h.State != api.HostUp {
		return api.Intent{}, errs.Conflict("host %s is down: a drain moves VMs off a host that is up; for a host that is down use: godwit evacuate %s", host, host)
	}
	if err := r.noActiveHostIntent(ctx, host); err != nil {
		return api.Intent{}, err
	}
	params := api.IntentParams{OnFailure: req.OnFailure, MaxPerSource: req.MaxPerSource, MaxPerDestination: req.MaxPerDestination,
		MaxPerCluster: req.MaxPerCluster, MaxTransfersPerSource: req.MaxTransfersPerSource,
		BandwidthMBPerS: req.BandwidthMBPerS, MaxDowntimeMS: req.MaxDowntimeMS, Policy: req.Policy}
	in := api.Intent{Kind: api.IntentDrain, Target: host, State: api.IntentPlanned, Params: params}
	if err := r.planDrain(ctx, &in, h); err != nil {
		return api.Intent{}, err
	}
	if req.DryRun {
		return in, nil
	}
	// Out of scheduling first: nothing new lands here while it drains.
	if err := r.store.SetHostEnabled(ctx, host, false); err != nil {
		return api.Intent{}, err
	}
	return r.startIntent(ctx, in)
}

// noActiveHostIntent refuses a second drain or evacuation of one host.
func (r *Runner) noActiveHostIntent(ctx context.Context, host string) error {
	act, err := r.store.Intents(ctx, store.IntentFilter{Target: host, Active: true})
	if err != nil {
		return err
	}
	for _, in := range act {
		if in.Kind == api.IntentDrain || in.Kind == api.IntentEvacuate {
			return errs.Conflict("host %s already has a %s in progress (intent %s); watch it with: godwit intent watch %s", host, in.Kind, in.ID, in.ID)
		}
	}
	return nil
}

// planDrain fills in a drain's operations: one per VM on the host, the
// longest first (with moves in parallel, starting the longest first ends
// the drain soonest), each with the destination the scheduler would pick
// today — claims of the earlier ones counted — and a predicted duration.
func (r *Runner) planDrain(ctx context.Context, in *api.Intent, src api.Host) error {
	hosts, err := r.svc.HostsWithAllocations(ctx)
	if err != nil {
		return err
	}
	def, err := r.svc.EffectiveSettings(ctx)
	if err != nil {
		return err
	}
	bw := cmp.Or(in.Params.BandwidthMBPerS, def.BandwidthMBPerS)
	vms, err := r.store.VMs(ctx, store.VMFilter{Host: src.Name})
	if err != nil {
		return err
	}
	kindOf := func(vm api.VM) api.OperationKind {
		switch vm.State {
		case api.VMRunning:
			return api.OpLive
		case api.VMStopped:
			return api.OpCold
		}
		return api.OpNone
	}
	sort.SliceStable(vms, func(i, j int) bool {
		pi, pj := predictMove(kindOf(vms[i]), vms[i], src, bw), predictMove(kindOf(vms[j]), vms[j], src, bw)
		if pi != pj {
			return pi > pj
		}
		return vms[i].Name < vms[j].Name
	})
	var others []api.Host
	for _, h := range hosts {
		if h.Name != src.Name {
			others = append(others, h)
		}
	}
	for _, vm := range vms {
		op := api.Operation{VM: vm.Name, VMID: vm.ID, Kind: kindOf(vm), State: api.OpPlanned, Source: src.Name}
		if op.Kind == api.OpNone {
			op.Reason = fmt.Sprintf("vm is %s: only running or stopped VMs can be moved; it stays on %s", vm.State, src.Name)
			in.Operations = append(in.Operations, op)
			continue
		}
		p := scheduler.Placement{Flavor: vm.Flavor, Pool: vm.Pool, Live: op.Kind == api.OpLive, Source: src, HotpluggedMiB: scheduler.Hotplugged(vm)}
		// A VM the TCG gate keeps from moving live (refuseUnsafeTCG) is
		// one that cannot move live: the failure policy decides, and the
		// plan says why up front.
		dst, err := r.svc.Pick(others, p)
		if err != nil && op.Kind == api.OpLive && in.Params.OnFailure == api.OnFailureCold {
			p.Live = false
			if d, cerr := scheduler.Pick(others, p); cerr == nil {
				op.Reason = "cannot move live (" + err.Error() + "); cold, by policy"
				op.Kind, dst, err = api.OpCold, d, nil
			}
		}
		if err != nil {
			op.Reason = fmt.Sprintf("%v — on failure %s: %s", err, in.Params.OnFailure, policyEffect(in.Params.OnFailure, src.Name))
			in.Operations = append(in.Operations, op)
			continue
		}
		op.Destination, op.Strategy = dst.Name, moveStrategy(op.Kind, vm)
		op.PredictedMS = predictMove(op.Kind, vm, dst, bw).Milliseconds()
		in.Operations = append(in.Operations, op)
		scheduler.Claim(others, dst.Name, vm.Flavor, vm.Pool) // the plan's own claim
	}
	l := r.limitsFor(*in)
	in.PredictedMS = drainMakespan(in.Operations, l).Milliseconds()
	in.Notes = append(in.Notes,
		fmt.Sprintf("host %s leaves scheduling at once; `godwit host enable %s` returns it", src.Name, src.Name),
		fmt.Sprintf("at most %d moves out of %s at once, %d into each destination, %d in the cluster", l.perSource, src.Name, l.perDest, l.perCluster),
		fmt.Sprintf("at most %d of them send memory at once: they share %s's link; the next prepares its destination meanwhile and waits for the link", l.transfers, src.Name),
		fmt.Sprintf("predictions assume every byte of memory (and local disk) crosses at %s; idle guests move faster, busy ones slower", bandwidthText(bw)))
	if len(vms) == 0 {
		in.Notes = append(in.Notes, "no VMs on "+src.Name+": the drain only takes it out of scheduling")
	}
	return nil
}

func policyEffect(policy api.FailurePolicy, host string) string {
	switch policy {
	case api.OnFailureCold:
		return "no host can take it cold either; it stays on " + host
	case api.OnFailureStop:
		return "it will be stopped on " + host
	case api.OnFailureAbort:
		return "the drain will stop here"
	}
	return "it stays on " + host
}

// bandwidthText is the bandwidth a plan assumes, in MB/s as the cap is
// given: the cap, or else QEMU's default.
func bandwidthText(mbPerS int) string {
	if mbPerS > 0 {
		return fmt.Sprintf("%d MB/s", mbPerS)
	}
	return fmt.Sprintf("%.0f MB/s (QEMU's default cap, %d MiB/s)", float64(predictBandwidthBytesPerS)/api.MB, predictBandwidthBytesPerS>>20)
}

// execMigration runs one live or cold operation of an intent: it starts
// the migration (or finds the one it started before a restart) and
// follows it to its end.
func (r *Runner) execMigration(ctx context.Context, in api.Intent, i int) outcome {
	op := in.Operations[i]
	migID := op.MigrationID
	if migID == "" {
		migID = r.adoptMigration(ctx, in.ID, op)
	}
	if migID == "" {
		vm, err := r.svc.VM(ctx, op.VM)
		switch {
		case errors.Is(err, errs.ErrNotFound):
			return outcome{state: api.OpSkipped, reason: "the vm was deleted"}
		case err != nil:
			return outcome{state: api.OpPending, reason: errOf("read vm", err)}
		case vm.ID != op.VMID:
			return outcome{state: api.OpSkipped, reason: "the vm was deleted (its name now belongs to another VM)"}
		case vm.Host != op.Source:
			return outcome{state: api.OpDone, dest: vm.Host, reason: "already moved to " + vm.Host}
		case r.svc.IsBusy(vm.Name):
			return outcome{state: api.OpPending, reason: "waiting: another operation runs on the vm"}
		}
		kind, _ := op.Kind.Migration()
		if kind == api.KindLive && vm.State == api.VMStopped {
			kind = api.KindCold // stopped since the plan: nothing to move live
		}
		m, out := r.startMove(ctx, in, i, vm, kind)
		if out.state != "" {
			return out
		}
		migID = m.ID
		r.recordMove(ctx, in.ID, i, m, vm)
		if in.Kind == api.IntentDrain {
			failpoint.Hit("drain/move-started") // migration recorded on the operation
		}
	}
	m, err := r.svc.WaitMigration(ctx, migID)
	if err != nil {
		if ctx.Err() != nil {
			return outcome{state: api.OpRunning}
		}
		return outcome{state: api.OpFailed, reason: errOf("follow migration "+migID, err)}
	}
	if m.State == api.MigCompleted {
		return outcome{state: api.OpDone, dest: m.Destination, strategy: m.Strategy}
	}
	if service.RolledBackByRestart(m) && op.Attempts < maxRestartRetries {
		// Not the VM's failure: the controller died under it. Again.
		return outcome{state: api.OpPending, reason: "retrying: migration " + m.ID + " was rolled back after a controller restart", clearMigration: true}
	}
	return outcome{state: api.OpFailed, reason: fmt.Sprintf("%s migration %s: %s", m.Kind, m.State, m.Reason)}
}

// recordMove writes on operation i of an intent the migration it
// started: a restarted runner follows it from there (or, had this write
// not happened, adopts it by its intent id).
func (r *Runner) recordMove(ctx context.Context, id string, i int, m api.Migration, vm api.VM) {
	if err := r.setOp(ctx, id, i, func(o *api.Operation) {
		o.MigrationID, o.Destination, o.Kind, o.Reason = m.ID, m.Destination, m.Kind.Operation(), ""
		o.Strategy = moveStrategy(m.Kind.Operation(), vm)
	}); err != nil {
		r.log.Error("record the operation's migration", "intent", id, "vm", vm.Name, "err", err)
	}
}

// moveRequest is what operation i of an intent asks the service for: a
// drain's move lets the service choose the destination
// under the per-destination limit; a resize's move, and every move of a
// revert, goes where its plan found room; a migrate intent's move is the
// user's request, as a plain migrate runs it.
func (r *Runner) moveRequest(in api.Intent, i int, kind api.MigrationKind) (api.MigrateRequest, service.MoveOptions) {
	l := r.limitsFor(in)
	req := api.MigrateRequest{Kind: kind, BandwidthMBPerS: in.Params.BandwidthMBPerS, MaxDowntimeMS: in.Params.MaxDowntimeMS, Policy: in.Params.Policy}
	o := service.MoveOptions{Intent: in.ID, MaxPerDestination: l.perDest}
	switch {
	case in.Kind == api.IntentResize || in.Reverting(i):
		req.To, o.MaxPerDestination = in.Operations[i].Destination, 0
	case in.Kind == api.IntentMigrate && in.Params.Migrate != nil:
		req, o.MaxPerDestination = *in.Params.Migrate, 0
		req.Kind, req.Hold, req.DryRun = kind, false, false // the hold is the intent's; the service only moves
	}
	if kind == api.KindLive {
		o.Transfers = l.transfers
	} else {
		req = coldOf(req) // what tunes a live move does not apply
	}
	return req, o
}

// startMove starts operation i's migration. The service chooses the
// destination, once, under the per-destination limit and records the
// migration there in one step, so two operations never both take a
// destination's last slot. A non-empty outcome means it did not start.
func (r *Runner) startMove(ctx context.Context, in api.Intent, i int, vm api.VM, kind api.MigrationKind) (api.Migration, outcome) {
	req, o := r.moveRequest(in, i, kind)
	m, err := r.svc.StartMigration(ctx, vm.Name, req, o)
	switch {
	case err == nil:
		return m, outcome{}
	case errors.Is(err, service.ErrDestinationsBusy):
		return api.Migration{}, outcome{state: api.OpPending, reason: "waiting: " + err.Error()}
	case errors.Is(err, errs.ErrConflict) && r.svc.IsBusy(vm.Name):
		return api.Migration{}, outcome{state: api.OpPending, reason: "waiting: another operation runs on the vm"}
	case !refusal(err):
		return api.Migration{}, outcome{state: api.OpPending, reason: "waiting: " + err.Error()}
	}
	return api.Migration{}, outcome{state: api.OpFailed, reason: err.Error()}
}

// refusal reports whether err is the service refusing the request (bad
// input, no room, a conflict, a move it cannot make), as opposed to a
// failure to read or write the store, which may pass.
func refusal(err error) bool {
	for _, s := range []error{errs.ErrInvalid, errs.ErrNotFound, errs.ErrConflict, errs.ErrNoCapacity, errs.ErrNotSupported} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// adoptMigration finds the migration an operation started before the
// controller restarted (between starting it and recording its id).
func (r *Runner) adoptMigration(ctx context.Context, intent string, op api.Operation) string {
	ms, err := r.store.Migrations(ctx, store.MigrationFilter{VM: op.VM})
	if err != nil {
		return ""
	}
	for _, m := range ms { // newest first
		// Started after this attempt began (the runner records the start
		// first, on the same clock): an earlier attempt's is not adopted.
		if m.Intent == intent && !m.CreatedAt.Before(op.StartedAt) {
			return m.ID
		}
	}
	return ""
}

// execStop shuts a VM down where it is (the drain policy "stop").
func (r *Runner) execStop(ctx context.Context, op api.Operation) outcome {
	if r.svc.IsBusy(op.VM) {
		return outcome{state: api.OpPending, reason: "waiting: another operation runs on the vm"}
	}
	if _, err := r.svc.VMAction(ctx, op.VM, "stop", api.VMActionRequest{TimeoutSeconds: 60}); err != nil {
		return outcome{state: api.OpFailed, reason: errOf("stop", err)}
	}
	return outcome{state: api.OpDone, reason: "stopped on " + op.Source + ", by policy (on-failure stop)"}
}
