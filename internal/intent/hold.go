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

// A held intent is Nova's VERIFY_RESIZE: a resize held for confirmation
// (api.ResizeRequest.Hold), or a cold migration held the same way
// (api.MigrateRequest.Hold, as Nova's cold migrate is). Its state
// machine, every step persisted before the next side effect:
//
//	running ──(operations done)──▶ awaiting-confirmation ──confirm──▶ completed
//	                                         │
//	                                       revert
//	                                         ▼
//	                                     reverting ──▶ reverted (or partial)
//
// What the way back needs (Intent.Revert: the old sizes, the old host)
// is written when the intent is planned, in the record created before
// anything moves. The way back runs as operations appended to the same
// intent, not as a new intent linked to it: one record holds the resize
// or migration, the data to undo it and the undo itself, so there is no
// second record to keep consistent with the first and nothing to find
// again after a crash. The revert's operations and the state reverting
// are written in one update before anything runs; a restarted
// controller's resumeIntents finds the intent active and its runner
// picks each operation up where the record left it (the resize is
// idempotent, the move is adopted by its intent id), as for any other
// intent. An intent awaiting confirmation is active too, but its runner
// returns at once: nothing runs while it waits.
//
// A VM with a held intent awaiting confirmation, or reverting, is
// neither resized nor migrated again (noHeld): a second change would
// make the first's revert meaningless.

// ConfirmResize ends a held intent, as Nova's confirmResize does for a
// resize and for a cold migration: a resize keeps its new size, a
// migration leaves the VM on the host it moved to. The intent ends
// completed.
func (r *Runner) ConfirmResize(ctx context.Context, id string) (api.Intent, error) {
	if err := r.heldLocked(ctx, id); err != nil {
		return api.Intent{}, err
	}
	in, err := r.store.UpdateIntent(ctx, id, func(in *api.Intent) error {
		if err := awaitingConfirmation(*in, "confirm"); err != nil {
			return err
		}
		in.State, in.FinishedAt = api.IntentCompleted, time.Now().UTC()
		in.Notes = append(in.Notes, confirmedNote(*in))
		return nil
	})
	if err != nil {
		return api.Intent{}, err
	}
	r.log.Info("held intent confirmed", "intent", id, "kind", in.Kind, "target", in.Target)
	r.metrics().IntentEnded(in)
	return in, nil
}

// confirmedNote is what a confirm kept.
func confirmedNote(in api.Intent) string {
	if in.Kind == api.IntentResize {
		return "confirmed: the new size stays"
	}
	return "confirmed: vm " + in.Target + " stays on " + heldHost(in)
}

// heldHost is where a held intent's operations left the VM: the last
// move's destination, or its source's host when nothing moved it.
func heldHost(in api.Intent) string {
	host := ""
	for _, op := range in.Operations {
		if op.State != api.OpDone {
			continue
		}
		if _, move := op.Kind.Migration(); move || host == "" {
			host = op.Destination
		}
	}
	return host
}

// RevertResize takes a held intent back, as Nova's revertResize does.
// A held resize: a resize to the old sizes in place (online when it
// fits, else a restart in place if the resize was allowed one), then,
// if the resize moved the VM, a cold move back to its old host. A held
// cold migration: a cold move back to its old host. The move back is
// made when the old host still exists and has room for the VM; else it
// stays, and the intent's reason says so. A resize that grew the disk is
// refused: disks never shrink.
func (r *Runner) RevertResize(ctx context.Context, id string) (api.Intent, error) {
	in, err := r.store.Intent(ctx, id)
	if err != nil {
		return api.Intent{}, err
	}
	if err := awaitingConfirmation(in, "revert"); err != nil {
		return api.Intent{}, err
	}
	if err := r.heldLocked(ctx, id); err != nil {
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
	r.log.Info("held intent revert started", "intent", id, "kind", in.Kind, "target", in.Target, "operations", len(ops))
	go r.runIntent(context.WithoutCancel(ctx), id)
	return in, nil
}

// heldLocked refuses a member's confirm or revert of intent id while
// its VM is locked, as Nova's confirmResize and revertResize are
// (lock.go in the service); a VM gone is left to the checks after.
func (r *Runner) heldLocked(ctx context.Context, id string) error {
	in, err := r.store.Intent(ctx, id)
	if err != nil {
		return err
	}
	vm, err := r.svc.VM(ctx, in.Target)
	if err != nil || len(in.Operations) == 0 || vm.ID != in.Operations[0].VMID {
		return nil
	}
	return r.svc.CheckLock(ctx, vm)
}

// awaitingConfirmation refuses to confirm or revert (what) an intent
// that is not a held resize or held cold migration awaiting it.
func awaitingConfirmation(in api.Intent, what string) error {
	switch {
	case (in.Kind != api.IntentResize && in.Kind != api.IntentMigrate) || !in.Params.Hold || in.Revert == nil:
		return errs.Conflict("intent %s is a %s that was not held for confirmation (it is %s); only a resize made with hold (godwit resize VM --hold) or a cold migration made with hold (godwit migrate VM --cold --hold) can be confirmed or reverted", in.ID, in.Kind, in.State)
	case in.State != api.IntentAwaitingConfirm:
		return errs.Conflict("intent %s is %s, not %s; only a held %s whose operations are done can be confirmed or reverted (see it with: godwit intent show %s)", in.ID, in.State, api.IntentAwaitingConfirm, heldWhat(in), in.ID)
	case what == "revert" && in.Kind == api.IntentResize && in.Params.DiskMiB > in.Revert.Flavor.DiskMiB:
		return errs.Conflict("intent %s grew the disk of vm %q from %d to %d MiB and disks never shrink (a shrunk filesystem loses data), so it cannot be reverted; keep it with: godwit intent confirm %s, then resize the vCPUs and memory back if you want them",
			in.ID, in.Target, in.Revert.Flavor.DiskMiB, in.Params.DiskMiB, in.ID)
	}
	return nil
}

// planRevert is a held intent's way back. A resize: a resize to the old
// sizes on the VM's current host, then a cold move to its old host if
// the resize moved it. A cold migration: the cold move to its old host.
// The move is planned only when that host has room for the VM (at its
// old size); else there is none, and the reason says why. A resize's old
// sizes go first so that the move back carries (and asks room for) the
// smaller VM.
func (r *Runner) planRevert(ctx context.Context, in api.Intent) ([]api.Operation, string, error) {
	vmID := in.Operations[0].VMID
	vm, err := r.svc.VM(ctx, in.Target)
	if errors.Is(err, errs.ErrNotFound) || (err == nil && vm.ID != vmID) {
		return nil, "", errs.Conflict("vm %q of intent %s was deleted; there is nothing to revert: close the intent with: godwit intent confirm %s", in.Target, in.ID, in.ID)
	} else if err != nil {
		return nil, "", err
	}
	if vm.State != api.VMRunning && vm.State != api.VMStopped {
		return nil, "", errs.Conflict("vm %q is %s; a held %s is reverted only on a running or stopped VM: retry when it is done (godwit intent revert %s)", vm.Name, vm.State, heldWhat(in), in.ID)
	}
	host, err := r.svc.HostOf(ctx, vm)
	if err != nil {
		return nil, "", err
	}
	var ops []api.Operation
	flavor := vm.Flavor
	if in.Kind == api.IntentResize {
		op, err := revertSize(in, vm, host)
		if err != nil {
			return nil, "", err
		}
		ops, flavor = append(ops, op), in.Revert.Flavor
	}
	back, reason, err := r.planMoveBack(ctx, in, vm, flavor, host)
	if err != nil || back == nil {
		return ops, reason, err
	}
	return append(ops, *back), "", nil
}

// revertSize is a held resize's resize back to its old sizes, on the
// VM's current host.
func revertSize(in api.Intent, vm api.VM, host api.Host) (api.Operation, error) {
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
		return api.Operation{}, errs.NotSupported("vm %q cannot go back to its old size online: %s, and its resize was not allowed to restart it; stop the VM (godwit vm stop %s) and revert again (a stopped VM just gets the old size), or keep the new size: godwit intent confirm %s",
			vm.Name, why, vm.Name, in.ID)
	}
	return op, nil
}

// planMoveBack is the cold move of a held intent's VM, of size flavor,
// from host back to the host it was on (Revert.Host): nil, with the
// reason, when there is nothing to move back or no room to.
func (r *Runner) planMoveBack(ctx context.Context, in api.Intent, vm api.VM, flavor api.Flavor, host api.Host) (*api.Operation, string, error) {
	from := in.Revert.Host
	switch {
	case from == "" && in.Kind == api.IntentResize: // the resize did not move it
		return nil, "", nil
	case from == "" || from == host.Name:
		return nil, "vm " + vm.Name + " is on its old host " + host.Name + " already: nothing to move back", nil
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
		return nil, stay + "its old host " + from + " is gone", nil
	}
	// Cold, as Nova reverts: the move back is part of undoing the resize
	// (which moving with allow_move consented to) or the cold migration.
	p := scheduler.Placement{Flavor: flavor, Pool: vm.Pool, Source: host}
	if _, err := scheduler.Pick(dst, p); err != nil {
		return nil, stay + "its old host " + from + " has no room for it now (" + err.Error() + ")", nil
	}
	moved := vm
	moved.Flavor = flavor
	return &api.Operation{VM: vm.Name, VMID: vm.ID, Kind: api.OpCold, State: api.OpPending, Source: host.Name, Destination: from,
		Strategy: moveStrategy(api.OpCold, moved), PredictedMS: predictMove(api.OpCold, moved, dst[0], 0).Milliseconds(),
		Reason: "back to " + from + ", where it was before the " + heldWhat(in) + " moved it"}, "", nil
}

// heldWhat names what a held intent holds: a resize or a cold migration.
func heldWhat(in api.Intent) string {
	if in.Kind == api.IntentMigrate {
		return "cold migration"
	}
	return string(in.Kind)
}

// noHeld refuses to resize or migrate (what) a VM with a held intent
// awaiting confirmation or reverting: a second change would make the
// first's revert meaningless.
func (r *Runner) noHeld(ctx context.Context, vm api.VM, what string) error {
	in, ok, err := r.HeldIntent(ctx, vm)
	switch {
	case err != nil || !ok:
		return err
	case in.State == api.IntentReverting:
		return errs.Conflict("vm %q has a held %s being reverted (intent %s); %s it when the revert ends (follow it with: godwit intent watch %s)", vm.Name, heldWhat(in), in.ID, what, in.ID)
	}
	return errs.Conflict("vm %q has a %s awaiting confirmation (intent %s); keep it with: godwit intent confirm %s, or undo it with: godwit intent revert %s, then %s it again",
		vm.Name, heldWhat(in), in.ID, in.ID, in.ID, what)
}

// HeldIntent is a VM's held intent — a resize or cold migration made
// with hold — while it awaits confirmation or is being reverted; false
// when it has none. The intent's target is the VM's name and its first
// operation the VM's id (a VM of the same name made since is not it).
func (r *Runner) HeldIntent(ctx context.Context, vm api.VM) (api.Intent, bool, error) {
	ins, err := r.store.Intents(ctx, store.IntentFilter{Target: vm.Name, Active: true})
	if err != nil {
		return api.Intent{}, false, err
	}
	for _, in := range ins {
		if (in.State == api.IntentAwaitingConfirm || in.State == api.IntentReverting) && in.Params.Hold &&
			len(in.Operations) > 0 && in.Operations[0].VMID == vm.ID {
			return in, true, nil
		}
	}
	return api.Intent{}, false, nil
}
