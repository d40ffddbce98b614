package intent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/scheduler"
	"github.com/godwit/godwit/internal/service"
)

// Resize changes a VM's vCPUs, memory or disk in place — never by
// migrating it, unless AllowMove composes a migration first because its
// host lacks room. Online when the VM runs and the change fits its
// hotplug ceilings; otherwise a restart in place, only with AllowRestart.
func (r *Runner) Resize(ctx context.Context, name string, req api.ResizeRequest) (api.Intent, error) {
	if err := r.flavorSizes(ctx, &req); err != nil {
		return api.Intent{}, err
	}
	if req.VCPUs == 0 && req.MemoryMiB == 0 && req.DiskMiB == 0 {
		return api.Intent{}, errs.Invalid("nothing to resize: give vcpus, memory_mib or disk_mib, or a flavor_name")
	}
	switch {
	case req.VCPUs < 0 || req.VCPUs > service.MaxVCPUs:
		return api.Intent{}, errs.Invalid("vcpus must be between 1 and %d, not %d", service.MaxVCPUs, req.VCPUs)
	case req.MemoryMiB < 0 || req.MemoryMiB > service.MaxMemoryMiB || (req.MemoryMiB > 0 && req.MemoryMiB < service.MinMemoryMiB):
		return api.Intent{}, errs.Invalid("memory_mib must be between %d and %d, not %d", service.MinMemoryMiB, service.MaxMemoryMiB, req.MemoryMiB)
	case req.DiskMiB < 0 || req.DiskMiB > service.MaxDiskMiB:
		return api.Intent{}, errs.Invalid("disk_mib must be between 1 and %d, not %d", service.MaxDiskMiB, req.DiskMiB)
	}
	vm, err := r.svc.VM(ctx, name)
	if err != nil {
		return api.Intent{}, err
	}
	if err := r.svc.CheckLock(ctx, vm); err != nil {
		return api.Intent{}, err
	}
	if err := r.noHeld(ctx, vm, "resize"); err != nil {
		return api.Intent{}, err
	}
	want := vm.Flavor
	if req.VCPUs > 0 {
		want.VCPUs = req.VCPUs
	}
	if req.MemoryMiB > 0 {
		want.MemoryMiB = req.MemoryMiB
	}
	if req.DiskMiB > 0 || req.FlavorName != "" {
		want.DiskMiB = req.DiskMiB // a flavor's 0 is no disk, not "unchanged"
	}
	switch {
	case want == vm.Flavor:
		return api.Intent{}, errs.Invalid("vm %q already has %d vCPUs, %d MiB memory and %d MiB disk; nothing to change", name, want.VCPUs, want.MemoryMiB, want.DiskMiB)
	case req.FlavorName != "" && vm.Flavor.DiskMiB > 0 && want.DiskMiB == 0:
		return api.Intent{}, errs.Invalid("flavor %q has no disk and vm %q has one of %d MiB; a disk is never removed: choose a flavor with a disk of at least that", req.FlavorName, name, vm.Flavor.DiskMiB)
	case vm.Flavor.DiskMiB == 0 && want.DiskMiB > 0:
		return api.Intent{}, errs.NotSupported("vm %q has no disk; adding one is not a resize", name)
	case want.DiskMiB < vm.Flavor.DiskMiB:
		return api.Intent{}, errs.Invalid("shrinking a disk is refused (%d MiB to %d MiB): filesystems do not survive it; create a smaller VM and copy the data", vm.Flavor.DiskMiB, want.DiskMiB)
	case vm.State != api.VMRunning && vm.State != api.VMStopped:
		return api.Intent{}, errs.Conflict("vm %q is %s; only a running or stopped VM can be resized", name, vm.State)
	}
	grow := api.Flavor{VCPUs: max(0, want.VCPUs-vm.Flavor.VCPUs), MemoryMiB: max(0, want.MemoryMiB-vm.Flavor.MemoryMiB), DiskMiB: max(0, want.DiskMiB-vm.Flavor.DiskMiB)}
	if err := r.svc.CheckQuota(ctx, vm.Project, grow, 0); err != nil {
		return api.Intent{}, err
	}
	host, err := r.svc.HostOf(ctx, vm)
	if err != nil {
		return api.Intent{}, err
	}
	op := api.Operation{VM: vm.Name, VMID: vm.ID, Kind: api.OpResize, State: api.OpPlanned, Source: host.Name, Destination: host.Name}
	switch why := service.OnlineResizeBlocker(vm, want); {
	case vm.State == api.VMStopped:
		op.Strategy, op.PredictedMS = api.StrategyDefinition, time.Second.Milliseconds()
	case why == "":
		op.Strategy, op.PredictedMS = api.StrategyHotplug, (2 * time.Second).Milliseconds()
	case req.AllowRestart:
		op.Strategy, op.Reason = api.StrategyRestart, "cannot be done online ("+why+"); restarted in place (--allow-restart)"
		op.PredictedMS = (predictStop + bootTime(host)).Milliseconds()
	default:
		return api.Intent{}, errs.NotSupported("vm %q cannot be resized online: %s; add --allow-restart to restart it in place with the new size", name, why)
	}
	in := api.Intent{Kind: api.IntentResize, Target: vm.Name, Project: vm.Project, State: api.IntentPlanned,
		Params: api.IntentParams{VCPUs: req.VCPUs, MemoryMiB: req.MemoryMiB, DiskMiB: req.DiskMiB, AllowRestart: req.AllowRestart, AllowMove: req.AllowMove,
			FlavorName: req.FlavorName, Hold: req.Hold}}
	if req.Hold {
		in.Revert = &api.ResizeRevert{Flavor: vm.Flavor, FlavorName: vm.FlavorName}
	}
	hosts, err := r.svc.HostsWithAllocations(ctx)
	if err != nil {
		return api.Intent{}, err
	}
	if why := scheduler.RoomFor(hosts, host.Name, vm, want); why != "" {
		if !req.AllowMove {
			return api.Intent{}, errs.NoCapacity("host %s has no room to grow vm %q: %s; add --allow-move to move it (live if possible) to a host with room first", host.Name, name, why)
		}
		move, err := planResizeMove(hosts, vm, want, host, r.svc.Config().AllowUnsafeTCGMigration)
		if err != nil {
			return api.Intent{}, err
		}
		in.Operations = append(in.Operations, move)
		if in.Revert != nil {
			in.Revert.Host = host.Name
		}
		op.Source, op.Destination = move.Destination, move.Destination
		op.Reason = strings.TrimPrefix(op.Reason+"; after the move: "+host.Name+" has no room ("+why+")", "; ")
	}
	in.Operations = append(in.Operations, op)
	for _, o := range in.Operations {
		in.PredictedMS += o.PredictedMS
	}
	note := fmt.Sprintf("vm %s: %d→%d vCPUs, %d→%d MiB memory, %d→%d MiB disk", vm.Name,
		vm.Flavor.VCPUs, want.VCPUs, vm.Flavor.MemoryMiB, want.MemoryMiB, vm.Flavor.DiskMiB, want.DiskMiB)
	if req.FlavorName != "" {
		note += " (flavor " + req.FlavorName + ")"
	}
	in.Notes = append(in.Notes, note)
	if want.MemoryMiB < vm.Flavor.MemoryMiB {
		in.Notes = append(in.Notes, "memory shrinks only as far as the guest gives it back; the result says how far it went")
	}
	if req.Hold {
		in.Notes = append(in.Notes, "held: once done it awaits confirmation (godwit intent confirm ID) or revert (godwit intent revert ID)")
	}
	if req.DryRun {
		return in, nil
	}
	return r.startIntent(ctx, in)
}

// flavorSizes puts the sizes of the stored flavor a resize names into its
// request, all three, once at planning: the intent records them (and
// the flavor's name), so a flavor changed or deleted later changes
// nothing of it.
func (r *Runner) flavorSizes(ctx context.Context, req *api.ResizeRequest) error {
	if req.FlavorName == "" {
		return nil
	}
	if req.VCPUs != 0 || req.MemoryMiB != 0 || req.DiskMiB != 0 {
		return errs.Invalid("give either flavor_name or sizes (vcpus, memory_mib, disk_mib), not both")
	}
	f, err := r.svc.Flavor(ctx, req.FlavorName)
	if err != nil {
		return err
	}
	req.VCPUs, req.MemoryMiB, req.DiskMiB, req.FlavorName = f.VCPUs, f.MemoryMiB, f.DiskMiB, f.Name
	return nil
}

// planResizeMove is the migration a resize with --allow-move starts with:
// to a host with room for the new size, live when the VM runs (and the
// TCG gate, unless allowUnsafeTCG, lets it), else cold.
func planResizeMove(hosts []api.Host, vm api.VM, want api.Flavor, src api.Host, allowUnsafeTCG bool) (api.Operation, error) {
	kind := api.OpCold
	if vm.State == api.VMRunning {
		kind = api.OpLive
	}
	var others []api.Host
	for _, h := range hosts {
		if h.Name != src.Name {
			others = append(others, h)
		}
	}
	p := scheduler.Placement{Flavor: want, Pool: vm.Pool, Live: kind == api.OpLive, Source: src, AllowUnsafeTCG: allowUnsafeTCG, HotpluggedMiB: scheduler.Hotplugged(vm)}
	reason := "its host " + src.Name + " has no room for the new size (--allow-move)"
	dst, err := scheduler.Pick(others, p)
	if err != nil && kind == api.OpLive {
		reason += "; cold, as it cannot move live: " + err.Error()
		p.Live, kind = false, api.OpCold
		dst, err = scheduler.Pick(others, p)
	}
	if err != nil {
		return api.Operation{}, errs.NoCapacity("no host has room for vm %q at its new size: %v", vm.Name, err)
	}
	return api.Operation{VM: vm.Name, VMID: vm.ID, Kind: kind, State: api.OpPlanned, Source: src.Name, Destination: dst.Name,
		Strategy: moveStrategy(kind, vm), PredictedMS: predictMove(kind, vm, dst, 0).Milliseconds(), Reason: reason}, nil
}

// execResize resizes a VM in place: the new flavor is recorded (the
// host's claim) before the agent is asked, and set back if it fails.
func (r *Runner) execResize(ctx context.Context, in api.Intent, i int) outcome {
	for _, prev := range in.Operations[:i] {
		if prev.State != api.OpDone {
			return outcome{state: api.OpSkipped, reason: "the move before it did not complete (" + string(prev.State) + ")"}
		}
	}
	op := in.Operations[i]
	unlock, err := r.svc.MarkBusy(op.VM, "resize")
	if err != nil {
		return outcome{state: api.OpPending, reason: "waiting: " + err.Error()}
	}
	defer unlock()
	vm, err := r.svc.VM(ctx, op.VM)
	if err != nil || vm.ID != op.VMID {
		return outcome{state: api.OpSkipped, reason: "the vm was deleted"}
	}
	old, want, flavorName := vm.Flavor, vm.Flavor, in.Params.FlavorName
	if in.Params.VCPUs > 0 {
		want.VCPUs = in.Params.VCPUs
	}
	if in.Params.MemoryMiB > 0 {
		want.MemoryMiB = in.Params.MemoryMiB
	}
	if in.Params.DiskMiB > 0 {
		want.DiskMiB = in.Params.DiskMiB
	}
	if in.Reverting(i) { // a held resize's way back: the sizes it had before
		want, flavorName = in.Revert.Flavor, in.Revert.FlavorName
	}
	if want == old && op.Step == "" {
		if in.Reverting(i) {
			return outcome{state: api.OpDone, reason: "already at its old size"}
		}
		return outcome{state: api.OpDone, reason: "already at the new size"}
	}
	step := func(s string) { r.setOp(ctx, in.ID, i, func(o *api.Operation) { o.Step = s }) }
	msg, err := r.svc.ResizeInPlace(ctx, vm, want, flavorName, in.Params.AllowRestart, step)
	if err != nil {
		return outcome{state: api.OpFailed, reason: err.Error()}
	}
	return outcome{state: api.OpDone, reason: msg}
}

// Rebuild reimages a VM in place: same host, same name and id, a fresh
// disk from the image (its current one unless another is named).
func (r *Runner) Rebuild(ctx context.Context, name string, req api.RebuildRequest) (api.Intent, error) {
	vm, err := r.svc.VM(ctx, name)
	if err != nil {
		return api.Intent{}, err
	}
	if err := r.svc.CheckLock(ctx, vm); err != nil {
		return api.Intent{}, err
	}
	image := req.Image
	if image == "" {
		image = vm.Image
	}
	im, err := r.store.Image(ctx, image)
	if errors.Is(err, errs.ErrNotFound) {
		return api.Intent{}, errs.Invalid("image %q not found; list images with: godwit image list", image)
	} else if err != nil {
		return api.Intent{}, err
	}
	if _, hasDisk := im.File(api.RoleDisk); hasDisk && vm.Flavor.DiskMiB == 0 {
		return api.Intent{}, errs.Invalid("image %q boots from a disk and vm %q has none; choose a kernel image", im.Name, name)
	}
	host, err := r.svc.HostOf(ctx, vm)
	if err != nil {
		return api.Intent{}, err
	}
	if vm.State == api.VMCreating || vm.State == api.VMDeleting {
		return api.Intent{}, errs.Conflict("vm %q is %s; retry when it is done", name, vm.State)
	}
	d := bootTime(host)
	if vm.State == api.VMRunning {
		d += predictStop
	}
	in := api.Intent{Kind: api.IntentRebuild, Target: vm.Name, Project: vm.Project, State: api.IntentPlanned, Params: api.IntentParams{Image: im.Name},
		Operations: []api.Operation{{VM: vm.Name, VMID: vm.ID, Kind: api.OpRebuild, State: api.OpPlanned, Source: host.Name, Destination: host.Name,
			Strategy: api.StrategyInPlace, PredictedMS: d.Milliseconds()}},
		PredictedMS: d.Milliseconds()}
	if vm.Flavor.DiskMiB > 0 {
		in.Notes = append(in.Notes, "the disk of vm "+vm.Name+" is replaced with a fresh one from image "+im.Name+": data on it is lost")
	}
	if req.DryRun {
		return in, nil
	}
	return r.startIntent(ctx, in)
}
