package intent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/scheduler"
	"github.com/godwit/godwit/internal/service"
	"github.com/godwit/godwit/internal/store"
)

// A resize held for confirmation (api.ResizeRequest.Hold) is Nova's
// VERIFY_RESIZE. Its state machine, every step persisted before the
// next side effect:
//
//	running ──(operations done)──▶ awaiting-confirmation ──confirm──▶ completed
//	                                         │
//	                                       revert
//	                                         ▼
//	                                     reverting ──▶ reverted (or partial)
//
// The way back runs as operations appended to the same intent, not as a
// new intent linked to it: one record holds the resize, the data to undo
// it (Intent.Revert, written when the resize was planned) and the undo
// itself, so there is no second record to keep consistent with the first
// and nothing to find again after a crash. The revert's operations and
// the state reverting are written in one update before anything runs; a
// restarted controller's resumeIntents finds the intent active and its
// runner picks each operation up where the record left it (the resize
// is idempotent, the move is adopted by its intent id), as for any other
// intent. An intent awaiting confirmation is active too, but its runner
// returns at once: nothing runs while it waits.

// ConfirmResize keeps a held resize's new size: the intent ends
// completed.
func (r *Runner) ConfirmResize(ctx context.Context, id string) (api.Intent, error) {
	in, err := r.store.UpdateIntent(ctx, id, func(in *api.Intent) error {
		if err := awaitingConfirmation(*in, "confirm"); err != nil {
			return err
		}
		in.State, in.FinishedAt = api.IntentCompleted, time.Now().UTC()
		in.Notes = append(in.Notes, "confirmed: the new size stays")
		return nil
	})
	if err != nil {
		return api.Intent{}, err
	}
	r.log.Info("resize confirmed", "intent", id, "target", in.Target)
	r.metrics().IntentEnded(in)
	return in, nil
}

// RevertResize takes a held resize back: a resize to the old sizes in
// place (online when it fits, else a restart in place if the resize was
// allowed one), then, if the resize moved the VM, a cold move back to its
// old host when that has room for it (else it stays, and the intent's
// reason says so). A resize that grew the disk is refused: disks never
// shrink.
func (r *Runner) RevertResize(ctx context.Context, id string) (api.Intent, error) {
	in, err := r.store.Intent(ctx, id)
	if err != nil {
		return api.Intent{}, err
	}
	if err := awaitingConfirmation(in, "revert"); err != nil {
		return api.Intent{}, err
	}
	ops, reason, err := r.planRevert(ctx, in)
	if err != nil {
		return api.Intent{}, err
	}
	in, err = r.store.UpdateIntent(ctx, id, func(in *api.Intent) error {
		if err := awaitingConfirmation(*in, "revert"); err != nil {
			return err // confirmed or reverted meanwhile
		}
		in.Revert.FirstOperation = len(in.Operations)
		in.Operations = append(in.Operations, ops...)
		in.State, in.Reason = api.IntentReverting, reason
		return nil
	})
	if err != nil {
		return api.Intent{}, err
	}
	r.log.Info("resize revert started", "intent", id, "target", in.Target, "operations", len(ops))
	go r.runIntent(context.WithoutCancel(ctx), id)
	return in, nil
}

// awaitingConfirmation refuses to confirm or revert (what) an intent
// that is not a held resize awaiting it.
func awaitingConfirmation(in api.Intent, what string) error {
	switch {
	case in.Kind != api.IntentResize || !in.Params.Hold || in.Revert == nil:
		return errs.Conflict("intent %s is a %s that was not held for confirmation (it is %s); only a resize made with hold (godwit resize --hold) can be confirmed or reverted", in.ID, in.Kind, in.State)
	case in.State != api.IntentAwaitingConfirm:
		return errs.Conflict("intent %s is %s, not %s; only a held resize whose operations are done can be confirmed or reverted (see it with: godwit intent show %s)", in.ID, in.State, api.IntentAwaitingConfirm, in.ID)
	case what == "revert" && in.Params.DiskMiB > in.Revert.Flavor.DiskMiB:
		return errs.Conflict("intent %s grew the disk of vm %q from %d to %d MiB and disks never shrink (a shrunk filesystem loses data), so it cannot be reverted; keep it with: godwit intent confirm %s, then resize the vCPUs and memory back if you want them",
			in.ID, in.Target, in.Revert.Flavor.DiskMiB, in.Params.DiskMiB, in.ID)
	}
	return nil
}

// planRevert is a held resize's way back: a resize to the old sizes on
// the VM's current host, then a cold move to its old host if the resize
// moved it — when that host has room for it at its old size; else no
// move, and the reason says why. The old sizes go first so that the move
// back carries (and asks room for) the smaller VM.
func (r *Runner) planRevert(ctx context.Context, in api.Intent) ([]api.Operation, string, error) {
	vmID := in.Operations[0].VMID
	vm, err := r.svc.VM(ctx, in.Target)
	if errors.Is(err, errs.ErrNotFound) || (err == nil && vm.ID != vmID) {
		return nil, "", errs.Conflict("vm %q of intent %s was deleted; there is nothing to revert: close the intent with: godwit intent confirm %s", in.Target, in.ID, in.ID)
	} else if err != nil {
		return nil, "", err
	}
	if vm.State != api.VMRunning && vm.State != api.VMStopped {
		return nil, "", errs.Conflict("vm %q is %s; a resize is reverted only on a running or stopped VM: retry when it is done", vm.Name, vm.State)
	}
	host, err := r.svc.HostOf(ctx, vm)
	if err != nil {
		return nil, "", err
	}
	old := in.Revert.Flavor
	op := api.Operation{VM: vm.Name, VMID: vm.ID, Kind: api.OpResize, State: api.OpPending, Source: host.Name, Destination: host.Name,
		Reason: fmt.Sprintf("revert to %d vCPUs, %d MiB memory", old.VCPUs, old.MemoryMiB)}
	switch why := service.OnlineResizeBlocker(vm, old); {
	case vm.State == api.VMStopped:
		op.Strategy, op.PredictedMS = api.StrategyDefinition, time.Second.Milliseconds()
	case why == "":
		op.Strategy, op.PredictedMS = api.StrategyHotplug, (2 * time.Second).Milliseconds()
	case in.Params.AllowRestart:
		// The resize was allowed a restart in place; its revert is too.
		op.Strategy, op.PredictedMS = api.StrategyRestart, (predictStop + bootTime(host)).Milliseconds()
		op.Reason += "; cannot be done online (" + why + "): restarted in place, as the resize was allowed to (allow_restart)"
	default:
		return nil, "", errs.NotSupported("vm %q cannot go back to its old size online: %s, and its resize was not allowed to restart it; stop the VM (godwit vm stop %s) and revert again (a stopped VM just gets the old size), or keep the new size: godwit intent confirm %s",
			vm.Name, why, vm.Name, in.ID)
	}
	ops := []api.Operation{op}
	from := in.Revert.Host
	if from == "" || from == host.Name {
		return ops, "", nil
	}
	hosts, err := r.svc.HostsWithAllocations(ctx)
	if err != nil {
		return nil, "", err
	}
	var dst []api.Host
	for _, h := range hosts {
		if h.Name == from {
			dst = append(dst, h)
		}
	}
	stay := "vm " + vm.Name + " stays on " + host.Name + ": "
	if len(dst) == 0 {
		return ops, stay + "its old host " + from + " is gone", nil
	}
	// Cold, as Nova reverts: the move back is part of undoing the resize,
	// which moving with allow_move consented to.
	p := scheduler.Placement{Flavor: old, Pool: vm.Pool, Source: host}
	if _, err := scheduler.Pick(dst, p); err != nil {
		return ops, stay + "its old host " + from + " has no room for it now (" + err.Error() + ")", nil
	}
	moved := vm
	moved.Flavor = old
	ops = append(ops, api.Operation{VM: vm.Name, VMID: vm.ID, Kind: api.OpCold, State: api.OpPending, Source: host.Name, Destination: from,
		Strategy: moveStrategy(api.OpCold, moved), PredictedMS: predictMove(api.OpCold, moved, dst[0], 0).Milliseconds(),
		Reason: "back to " + from + ", where it was before the resize moved it"})
	return ops, "", nil
}

// noHeldResize refuses a resize of a VM whose last resize awaits
// confirmation: a second one would make the first's revert meaningless.
func (r *Runner) noHeldResize(ctx context.Context, vm api.VM) error {
	ins, err := r.store.Intents(ctx, store.IntentFilter{Target: vm.Name, Active: true})
	if err != nil {
		return err
	}
	for _, in := range ins {
		if in.Kind == api.IntentResize && in.State == api.IntentAwaitingConfirm && len(in.Operations) > 0 && in.Operations[0].VMID == vm.ID {
			return errs.Conflict("vm %q has a resize awaiting confirmation (intent %s); keep it with: godwit intent confirm %s, or undo it with: godwit intent revert %s, then resize again", vm.Name, in.ID, in.ID, in.ID)
		}
	}
	return nil
}
