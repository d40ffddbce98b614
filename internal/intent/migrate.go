package intent

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/scheduler"
	"github.com/godwit/godwit/internal/service"
)

// Migrate is the intent "move this VM": of a kind the user names, or,
// without one, live when the VM runs and can move live, else cold. The
// service level knows only the two kinds (service.StartMigration).

// Migrate starts a migration. An empty kind means live when the VM runs,
// cold when it is stopped, and cold when no host can take it live (no
// room, or only hosts the TCG gate refuses) unless the cluster forbids
// that fallback; the migration's record says why it went cold. With
// Hold the migration is cold and held for confirmation (migrateHeld).
// A VM with a held intent awaiting confirmation is not migrated.
func (r *Runner) Migrate(ctx context.Context, name string, req api.MigrateRequest) (api.Migration, error) {
	if err := checkMigrate(&req); err != nil {
		return api.Migration{}, err
	}
	vm, err := r.svc.VM(ctx, name)
	if err != nil {
		return api.Migration{}, err
	}
	if err := r.noHeld(ctx, vm, "migrate"); err != nil {
		return api.Migration{}, err
	}
	if req.Hold {
		return r.migrateHeld(ctx, vm, req)
	}
	if req.Kind != "" {
		return r.svc.StartMigration(ctx, name, req, service.MoveOptions{})
	}
	if vm.State != api.VMRunning {
		return r.svc.StartMigration(ctx, name, coldOf(req), service.MoveOptions{})
	}
	req.Kind = api.KindLive
	m, err := r.svc.StartMigration(ctx, name, req, service.MoveOptions{})
	if err == nil || r.svc.Config().NoColdFallback || !(errors.Is(err, errs.ErrNoCapacity) || scheduler.IsUnsafeTCG(err)) {
		return m, err
	}
	// No host can take it live, or only live moves that would lose guest
	// writes (the TCG gate): it cannot move live, and a cold move (no
	// memory copied) is safe.
	why := "no host can take it live: " + err.Error()
	if scheduler.IsUnsafeTCG(err) {
		why = err.Error()
	}
	return r.svc.StartMigration(ctx, name, coldOf(req), service.MoveOptions{
		Decisions: []api.Decision{{At: time.Now().UTC(), Action: "cold instead of live", Reason: why}}})
}

// checkMigrate normalizes and checks a migrate request. Hold is for cold
// migrations only (Nova's migrate, the one it holds, is cold): with it
// an empty kind is cold and live is refused.
func checkMigrate(req *api.MigrateRequest) error {
	if err := req.Normalize(); err != nil {
		return errs.Invalid("%v", err)
	}
	if req.Hold {
		switch req.Kind {
		case api.KindLive:
			return errs.Invalid("hold is for cold migrations only: a live migration is not held for confirmation; migrate it without hold, or cold with hold (godwit migrate VM --cold --hold)")
		case "":
			req.Kind = api.KindCold
		}
	}
	return service.ValidateMigrate(*req)
}

// migrateHeld starts a held cold migration (api.MigrateRequest.Hold): an
// intent of kind migrate with one cold move and its way back (the host
// the VM is on now, Intent.Revert), recorded before anything moves. Once
// the move is done the intent awaits confirmation (finishIntent), and
// ConfirmResize or RevertResize end it (hold.go).
//
// The reply to POST /v1/vms/{name}/migrate is a migration, so the
// operation's migration is started here, in the request, the way the
// runner starts one: the intent is recorded with its operation running
// (what stepIntent writes before it launches one), then the migration is
// started (moveRequest, as startMove does) and written on the operation
// (recordMove). A refusal (no room, a busy VM) is then the request's
// error, as for a plain migrate, not a failed operation found later, and
// the reply is the migration record, naming the intent. Waiting for the
// runner to start it instead would tie the reply to the runner's tick
// and to the cluster's migration limits, which a plain migrate does not
// wait for either. From here on the runner owns the intent: it follows
// the migration to its end. A controller that dies between the intent's
// record and the migration's is resumed as any intent is: its operation
// is running without a migration; the runner adopts the migration by its
// intent id, or starts it.
func (r *Runner) migrateHeld(ctx context.Context, vm api.VM, req api.MigrateRequest) (api.Migration, error) {
	in, err := r.planMigrate(ctx, vm, req)
	if err != nil {
		return api.Migration{}, err
	}
	op := &in.Operations[0]
	op.State, op.StartedAt, op.Attempts = api.OpRunning, time.Now().UTC(), 1
	if in, err = r.createIntent(ctx, in); err != nil {
		return api.Migration{}, err
	}
	mreq, o := r.moveRequest(in, 0, api.KindCold)
	m, err := r.svc.StartMigration(ctx, vm.Name, mreq, o)
	if err != nil {
		r.endUnstarted(ctx, in.ID, err)
		return api.Migration{}, err
	}
	r.recordMove(ctx, in.ID, 0, m, vm)
	go r.runIntent(context.WithoutCancel(ctx), in.ID)
	return m, nil
}

// endUnstarted ends a held migration's intent whose migration the
// service refused to start: failed, with the refusal as its reason.
func (r *Runner) endUnstarted(ctx context.Context, id string, cause error) {
	ended, err := r.store.UpdateIntent(context.WithoutCancel(ctx), id, func(in *api.Intent) error {
		o := &in.Operations[0]
		o.State, o.Reason, o.FinishedAt = api.OpFailed, cause.Error(), time.Now().UTC()
		in.Reason = "the migration did not start: " + cause.Error()
		return r.finishIntent(in, api.IntentFailed)
	})
	if err != nil {
		// Left running, a restarted controller would start the move the
		// request was told had failed; say so loudly.
		r.log.Error("record that a held migration did not start", "intent", id, "err", err)
		return
	}
	r.metrics().OperationEnded(api.OpCold, api.OpFailed)
	r.metrics().IntentEnded(ended)
}

// coldOf is a request without a kind made cold: what tunes a live move
// does not apply.
func coldOf(req api.MigrateRequest) api.MigrateRequest {
	req.Kind = api.KindCold
	req.Policy, req.PostCopy, req.NoPostCopy, req.AutoConverge = "", false, false, false
	return req
}

// PlanMigrate is a migrate request's dry run: the migration it would
// start, with its kind (an empty kind resolved as Migrate does), the
// destination the scheduler picks, the expected driver strategy and a
// predicted duration. Nothing changes.
func (r *Runner) PlanMigrate(ctx context.Context, name string, req api.MigrateRequest) (api.Intent, error) {
	if err := checkMigrate(&req); err != nil {
		return api.Intent{}, err
	}
	vm, err := r.svc.VM(ctx, name)
	if err != nil {
		return api.Intent{}, err
	}
	if err := r.noHeld(ctx, vm, "migrate"); err != nil {
		return api.Intent{}, err
	}
	return r.planMigrate(ctx, vm, req)
}

// planMigrate plans a checked migrate request: the intent a held
// migration records, and a dry run's reply. A held one records the VM's
// host now as the way back's destination.
func (r *Runner) planMigrate(ctx context.Context, vm api.VM, req api.MigrateRequest) (api.Intent, error) {
	name := vm.Name
	src, err := r.svc.HostOf(ctx, vm)
	if err != nil {
		return api.Intent{}, err
	}
	hosts, err := r.svc.HostsWithAllocations(ctx)
	if err != nil {
		return api.Intent{}, err
	}
	def, err := r.svc.EffectiveSettings(ctx)
	if err != nil {
		return api.Intent{}, err
	}
	kind, auto := req.Kind, req.Kind == ""
	if auto {
		kind = api.KindCold
		if vm.State == api.VMRunning {
			kind = api.KindLive
		}
	}
	switch {
	case kind == api.KindLive && vm.State != api.VMRunning:
		return api.Intent{}, errs.Conflict("vm %q is %s; a live migration moves a running VM (start it, or migrate it cold)", name, vm.State)
	case vm.State != api.VMRunning && vm.State != api.VMStopped:
		return api.Intent{}, errs.Conflict("vm %q is %s; a cold migration moves a running or stopped VM", name, vm.State)
	}
	pick := func(kind api.MigrationKind) (api.Host, error) {
		p := scheduler.Placement{Flavor: vm.Flavor, Pool: vm.Pool, Live: kind == api.KindLive, Source: src, HotpluggedMiB: scheduler.Hotplugged(vm)}
		var cands []api.Host
		for _, h := range hosts {
			if h.Name != src.Name && (req.To == "" || h.Name == req.To) {
				cands = append(cands, h)
			}
		}
		if req.To != "" && len(cands) == 0 {
			return api.Host{}, errs.Invalid("host %q not found, or it is the vm's own host; list hosts with: godwit host list", req.To)
		}
		return r.svc.Pick(cands, p)
	}
	var notes []string
	dst, err := pick(kind)
	if err != nil && auto && kind == api.KindLive && !r.svc.Config().NoColdFallback {
		notes = append(notes, "cannot move live ("+err.Error()+"): cold instead")
		kind = api.KindCold
		dst, err = pick(kind)
	}
	if err != nil {
		return api.Intent{}, err
	}
	op := api.Operation{VM: vm.Name, VMID: vm.ID, Kind: kind.Operation(), State: api.OpPlanned, Source: src.Name, Destination: dst.Name,
		Strategy: moveStrategy(kind.Operation(), vm), PredictedMS: predictMove(kind.Operation(), vm, dst, cmp.Or(req.BandwidthMBPerS, def.BandwidthMBPerS)).Milliseconds()}
	req.DryRun = false
	in := api.Intent{Kind: api.IntentMigrate, Target: vm.Name, Project: vm.Project, State: api.IntentPlanned, Params: api.IntentParams{Migrate: &req, Hold: req.Hold},
		Operations: []api.Operation{op}, PredictedMS: op.PredictedMS, Notes: notes}
	if req.Hold {
		in.Revert = &api.ResizeRevert{Host: src.Name}
		in.Notes = append(in.Notes, "held: once moved, vm "+vm.Name+" runs on its new host awaiting confirmation (godwit intent confirm ID) or revert, a cold move back to "+src.Name+" (godwit intent revert ID)")
	}
	return in, nil
}
