package intent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/scheduler"
	"github.com/godwit/godwit/internal/service"
	"github.com/godwit/godwit/internal/store"
)

// Evacuate rebuilds every VM of a host that is down on other hosts. It
// refuses while the host may still be alive: heartbeats must have stopped
// and either fencing evidence or the operator's word (HostIsDown) must
// say the host no longer runs anything. VMs on the shared pool keep their
// disks; VMs with local disks are refused unless AllowDataLoss, then
// rebuilt from their image.
func (r *Runner) Evacuate(ctx context.Context, host string, req api.EvacuateRequest) (api.Intent, error) {
	h, err := r.store.Host(ctx, host)
	if errors.Is(err, errs.ErrNotFound) {
		return api.Intent{}, errs.NotFound("host %q not found; list hosts with: godwit host list", host)
	} else if err != nil {
		return api.Intent{}, err
	}
	// The operator's word: given now, or recorded on the host (Nova's
	// os-services force-down).
	word := req.HostIsDown || h.ForcedDown
	if why := r.svc.NotProvenDown(h, word); why != "" {
		return api.Intent{}, errs.Conflict("%s", why)
	}
	if err := r.noOverlappingEvacuation(ctx, host, req.VMs); err != nil {
		return api.Intent{}, err
	}
	in := api.Intent{Kind: api.IntentEvacuate, Target: host, State: api.IntentPlanned,
		Params: api.IntentParams{HostIsDown: word, AllowDataLoss: req.AllowDataLoss, VMs: req.VMs}}
	switch proof := r.svc.FencingEvidence(h); {
	case proof != "":
		in.Notes = append(in.Notes, "proven down: "+proof)
	case req.HostIsDown:
		in.Notes = append(in.Notes, "proven down: the operator's word (--host-is-down)")
	default:
		in.Notes = append(in.Notes, "proven down: the operator's word (the host was forced down)")
	}
	if err := r.planEvacuate(ctx, &in, h); err != nil {
		return api.Intent{}, err
	}
	if req.DryRun {
		return in, nil
	}
	return r.startIntent(ctx, in)
}

// planEvacuate fills in an evacuation's operations: one rebuild per VM.
func (r *Runner) planEvacuate(ctx context.Context, in *api.Intent, src api.Host) error {
	hosts, err := r.svc.HostsWithAllocations(ctx)
	if err != nil {
		return err
	}
	vms, err := r.store.VMs(ctx, store.VMFilter{Host: src.Name})
	if err != nil {
		return err
	}
	if only := in.Params.VMs; len(only) > 0 {
		vms = slices.DeleteFunc(vms, func(vm api.VM) bool { return !slices.Contains(only, vm.Name) })
		for _, name := range only {
			if !slices.ContainsFunc(vms, func(vm api.VM) bool { return vm.Name == name }) {
				return errs.NotFound("vm %q is not on host %s; list its VMs with: godwit vm list --host %s", name, src.Name, src.Name)
			}
		}
	}
	var others []api.Host
	for _, h := range hosts {
		if h.Name != src.Name {
			others = append(others, h)
		}
	}
	for _, vm := range vms {
		op := api.Operation{VM: vm.Name, VMID: vm.ID, Kind: api.OpRebuild, State: api.OpPlanned, Source: src.Name}
		switch {
		case vm.Flavor.DiskMiB == 0:
			op.Strategy = api.StrategyNoDisk
		case vm.Pool == api.PoolShared:
			op.Strategy = api.StrategyReuseDisk
		case in.Params.AllowDataLoss:
			op.Strategy = api.StrategyReimage
			op.Reason = "its local disk on " + src.Name + " is lost; rebuilt from image " + vm.Image + " (--allow-data-loss)"
		default:
			op.Kind = api.OpNone
			op.Reason = fmt.Sprintf("refused: its disk is local to %s, so rebuilding it elsewhere loses its data; wait for the host, or pass --allow-data-loss to rebuild it from image %s", src.Name, vm.Image)
			in.Operations = append(in.Operations, op)
			continue
		}
		dst, err := scheduler.Pick(others, scheduler.Placement{Flavor: vm.Flavor, Pool: vm.Pool})
		if err != nil {
			op.Reason = joinReasons(op.Reason, err.Error())
			in.Operations = append(in.Operations, op)
			continue
		}
		op.Destination, op.PredictedMS = dst.Name, (predictSetup + bootTime(dst)).Milliseconds()
		scheduler.Claim(others, dst.Name, vm.Flavor, vm.Pool)
		in.Operations = append(in.Operations, op)
	}
	l := r.limitsFor(*in)
	in.PredictedMS = makespan(in.Operations, l.perIntent, l.perCluster).Milliseconds()
	in.Notes = append(in.Notes, "when "+src.Name+" returns, its agent is told to remove its stale copies (shared-pool disks are kept) and never starts them")
	return nil
}

// joinReasons appends reason b to a.
func joinReasons(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// execRebuild rebuilds a VM: elsewhere (evacuate: the op's source is
// down) or in place (rebuild). Steps are persisted before they run and
// are safe to repeat after a restart.
func (r *Runner) execRebuild(ctx context.Context, in api.Intent, i int) outcome {
	op := in.Operations[i]
	unlock, err := r.svc.MarkBusy(op.VM, "rebuild")
	if err != nil {
		return outcome{state: api.OpPending, reason: "waiting: " + err.Error()}
	}
	defer unlock()
	vm, err := r.svc.VM(ctx, op.VM)
	if errors.Is(err, errs.ErrNotFound) || (err == nil && vm.ID != op.VMID) {
		return outcome{state: api.OpSkipped, reason: "the vm was deleted"}
	} else if err != nil {
		return outcome{state: api.OpPending, reason: errOf("read vm", err)}
	}
	image := vm.Image
	if in.Kind == api.IntentRebuild && in.Params.Image != "" {
		image = in.Params.Image
	}
	im, err := r.store.Image(ctx, image)
	if err != nil {
		return outcome{state: api.OpFailed, reason: errOf("image "+image, err)}
	}
	if in.Kind == api.IntentEvacuate {
		dst, err := r.svc.RebuildElsewhere(ctx, vm, im, op.Source, func(dst string) {
			if err := r.setOp(ctx, in.ID, i, func(o *api.Operation) { o.Destination, o.Step = dst, "creating on "+dst }); err != nil {
				r.log.Error("record rebuild step", "err", err)
			}
		})
		if err != nil {
			return outcome{state: api.OpFailed, reason: err.Error()}
		}
		return outcome{state: api.OpDone, dest: dst}
	}
	if err := r.setOp(ctx, in.ID, i, func(o *api.Operation) { o.Step = "recreating from image " + im.Name }); err != nil {
		return outcome{state: api.OpPending, reason: errOf("record step", err)}
	}
	host, err := r.svc.RebuildInPlace(ctx, vm, im)
	switch {
	case service.IsRetryable(err):
		return outcome{state: api.OpPending, reason: err.Error()}
	case err != nil:
		return outcome{state: api.OpFailed, reason: err.Error()}
	}
	return outcome{state: api.OpDone, dest: host}
}

// noOverlappingEvacuation refuses an evacuation while the host is being
// drained or evacuated, unless both name their VMs and none in common:
// Nova's clients evacuate a host server by server (nova host-evacuate).
func (r *Runner) noOverlappingEvacuation(ctx context.Context, host string, vms []string) error {
	if len(vms) == 0 {
		return r.noActiveHostIntent(ctx, host)
	}
	act, err := r.store.Intents(ctx, store.IntentFilter{Target: host, Active: true})
	if err != nil {
		return err
	}
	for _, in := range act {
		if in.Kind != api.IntentDrain && in.Kind != api.IntentEvacuate {
			continue
		}
		overlap := len(in.Params.VMs) == 0 || in.Kind == api.IntentDrain
		for _, name := range vms {
			overlap = overlap || slices.Contains(in.Params.VMs, name)
		}
		if overlap {
			return errs.Conflict("host %s already has a %s of these VMs in progress (intent %s); watch it with: godwit intent watch %s", host, in.Kind, in.ID, in.ID)
		}
	}
	return nil
}
