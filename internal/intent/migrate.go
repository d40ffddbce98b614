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
// that fallback; the migration's record says why it went cold.
func (r *Runner) Migrate(ctx context.Context, name string, req api.MigrateRequest) (api.Migration, error) {
	if err := req.Normalize(); err != nil {
		return api.Migration{}, errs.Invalid("%v", err)
	}
	if err := service.ValidateMigrate(req); err != nil {
		return api.Migration{}, err
	}
	if req.Kind != "" {
		return r.svc.StartMigration(ctx, name, req, service.MoveOptions{})
	}
	vm, err := r.svc.VM(ctx, name)
	if err != nil {
		return api.Migration{}, err
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
	if err := req.Normalize(); err != nil {
		return api.Intent{}, errs.Invalid("%v", err)
	}
	if err := service.ValidateMigrate(req); err != nil {
		return api.Intent{}, err
	}
	vm, err := r.svc.VM(ctx, name)
	if err != nil {
		return api.Intent{}, err
	}
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
	if kind == api.KindLive && vm.State != api.VMRunning {
		return api.Intent{}, errs.Conflict("vm %q is %s; a live migration moves a running VM (start it, or migrate it cold)", name, vm.State)
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
	return api.Intent{Kind: api.IntentMigrate, Target: vm.Name, Project: vm.Project, State: api.IntentPlanned, Params: api.IntentParams{Migrate: &req},
		Operations: []api.Operation{op}, PredictedMS: op.PredictedMS, Notes: notes}, nil
}
