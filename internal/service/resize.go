package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/scheduler"
)

// Resize strategies, recorded on the operations.
const (
	strategyHotplug    = "online/hotplug"     // vCPU and memory hotplug, block_resize: the guest keeps running
	strategyRestart    = "offline/restart"    // stop, change, start in place (--allow-restart)
	strategyDefinition = "offline/definition" // a stopped VM: its next start has the new size
)

// resizeRestartTimeout bounds the graceful stop of an offline resize.
const resizeRestartTimeout = 60

// Resize changes a VM's vCPUs, memory or disk in place — never by
// migrating it, unless AllowMove composes a migration first because its
// host lacks room. Online when the VM runs and the change fits its
// hotplug ceilings; otherwise a restart in place, only with AllowRestart.
func (c *Service) Resize(ctx context.Context, name string, req api.ResizeRequest) (api.Intent, error) {
	if req.VCPUs == 0 && req.MemoryMiB == 0 && req.DiskMiB == 0 {
		return api.Intent{}, errs.Invalid("nothing to resize: give vcpus, memory_mib or disk_mib")
	}
	switch {
	case req.VCPUs < 0 || req.VCPUs > maxVCPUs:
		return api.Intent{}, errs.Invalid("vcpus must be between 1 and %d, not %d", maxVCPUs, req.VCPUs)
	case req.MemoryMiB < 0 || req.MemoryMiB > maxMemoryMiB || (req.MemoryMiB > 0 && req.MemoryMiB < minMemoryMiB):
		return api.Intent{}, errs.Invalid("memory_mib must be between %d and %d, not %d", minMemoryMiB, maxMemoryMiB, req.MemoryMiB)
	case req.DiskMiB < 0 || req.DiskMiB > maxDiskMiB:
		return api.Intent{}, errs.Invalid("disk_mib must be between 1 and %d, not %d", maxDiskMiB, req.DiskMiB)
	}
	vm, err := c.vmByName(ctx, name)
	if err != nil {
		return api.Intent{}, err
	}
	want := vm.Flavor
	if req.VCPUs > 0 {
		want.VCPUs = req.VCPUs
	}
	if req.MemoryMiB > 0 {
		want.MemoryMiB = req.MemoryMiB
	}
	if req.DiskMiB > 0 {
		want.DiskMiB = req.DiskMiB
	}
	switch {
	case want == vm.Flavor:
		return api.Intent{}, errs.Invalid("vm %q already has %d vCPUs, %d MiB memory and %d MiB disk; nothing to change", name, want.VCPUs, want.MemoryMiB, want.DiskMiB)
	case vm.Flavor.DiskMiB == 0 && want.DiskMiB > 0:
		return api.Intent{}, errs.NotSupported("vm %q has no disk; adding one is not a resize", name)
	case want.DiskMiB < vm.Flavor.DiskMiB:
		return api.Intent{}, errs.Invalid("shrinking a disk is refused (%d MiB to %d MiB): filesystems do not survive it; create a smaller VM and copy the data", vm.Flavor.DiskMiB, want.DiskMiB)
	case vm.State != api.VMRunning && vm.State != api.VMStopped:
		return api.Intent{}, errs.Conflict("vm %q is %s; only a running or stopped VM can be resized", name, vm.State)
	}
	host, err := c.hostOf(ctx, vm)
	if err != nil {
		return api.Intent{}, err
	}
	op := api.Operation{VM: vm.Name, VMID: vm.ID, Kind: api.OpResize, State: api.OpPlanned, Source: host.Name, Dest: host.Name}
	switch why := onlineBlocker(vm, want); {
	case vm.State == api.VMStopped:
		op.Strategy, op.PredictedMS = strategyDefinition, time.Second.Milliseconds()
	case why == "":
		op.Strategy, op.PredictedMS = strategyHotplug, (2 * time.Second).Milliseconds()
	case req.AllowRestart:
		op.Strategy, op.Reason = strategyRestart, "cannot be done online ("+why+"); restarted in place (--allow-restart)"
		op.PredictedMS = (predictStop + bootTime(host)).Milliseconds()
	default:
		return api.Intent{}, errs.NotSupported("vm %q cannot be resized online: %s; add --allow-restart to restart it in place with the new size", name, why)
	}
	in := api.Intent{Kind: api.IntentResize, Target: vm.Name, State: api.IntentPlanned,
		Params: api.IntentParams{VCPUs: req.VCPUs, MemoryMiB: req.MemoryMiB, DiskMiB: req.DiskMiB, AllowRestart: req.AllowRestart, AllowMove: req.AllowMove}}
	hosts, err := c.hostsWithAllocations(ctx)
	if err != nil {
		return api.Intent{}, err
	}
	if why := roomFor(hosts, host.Name, vm, want); why != "" {
		if !req.AllowMove {
			return api.Intent{}, errs.NoCapacity("host %s has no room to grow vm %q: %s; add --allow-move to move it (live if possible) to a host with room first", host.Name, name, why)
		}
		move, err := planResizeMove(hosts, vm, want, host, c.cfg.AllowUnsafeTCGMigration)
		if err != nil {
			return api.Intent{}, err
		}
		in.Operations = append(in.Operations, move)
		op.Source, op.Dest = move.Dest, move.Dest
		op.Reason = strings.TrimPrefix(op.Reason+"; after the move: "+host.Name+" has no room ("+why+")", "; ")
	}
	in.Operations = append(in.Operations, op)
	for _, o := range in.Operations {
		in.PredictedMS += o.PredictedMS
	}
	in.Notes = append(in.Notes, fmt.Sprintf("vm %s: %d→%d vCPUs, %d→%d MiB memory, %d→%d MiB disk", vm.Name,
		vm.Flavor.VCPUs, want.VCPUs, vm.Flavor.MemoryMiB, want.MemoryMiB, vm.Flavor.DiskMiB, want.DiskMiB))
	if want.MemoryMiB < vm.Flavor.MemoryMiB {
		in.Notes = append(in.Notes, "memory shrinks only as far as the guest gives it back; the result says how far it went")
	}
	if req.DryRun {
		return in, nil
	}
	return c.startIntent(ctx, in)
}

// onlineBlocker says why a running VM cannot get flavor want without a
// restart, or "" when hotplug can do it.
func onlineBlocker(vm api.VM, want api.Flavor) string {
	maxCPUs, maxMem, boot := max(vm.MaxVCPUs, vm.Flavor.VCPUs), max(vm.MaxMemoryMiB, vm.Flavor.MemoryMiB), vm.BootMemoryMiB
	if boot == 0 {
		boot = vm.Flavor.MemoryMiB
	}
	switch {
	case want.VCPUs > maxCPUs:
		return fmt.Sprintf("%d vCPUs is above its hotplug ceiling of %d", want.VCPUs, maxCPUs)
	case want.MemoryMiB > maxMem:
		return fmt.Sprintf("%d MiB memory is above its hotplug ceiling of %d MiB", want.MemoryMiB, maxMem)
	case want.MemoryMiB < boot:
		return fmt.Sprintf("%d MiB memory is below the %d MiB it booted with", want.MemoryMiB, boot)
	}
	return ""
}

// roomFor says why host lacks room for vm to grow to want, or "".
func roomFor(hosts []api.Host, host string, vm api.VM, want api.Flavor) string {
	for _, h := range hosts {
		if h.Name != host {
			continue
		}
		switch {
		case want.VCPUs > vm.Flavor.VCPUs && h.CPUs*scheduler.CPUAllocationRatio-h.AllocatedCPUs < want.VCPUs-vm.Flavor.VCPUs:
			return fmt.Sprintf("%d vCPUs free", max(h.CPUs*scheduler.CPUAllocationRatio-h.AllocatedCPUs, 0))
		case want.MemoryMiB > vm.Flavor.MemoryMiB && h.MemoryMiB-h.AllocatedMemoryMiB < want.MemoryMiB-vm.Flavor.MemoryMiB:
			return fmt.Sprintf("%d MiB memory free", max(h.MemoryMiB-h.AllocatedMemoryMiB, 0))
		case vm.Pool == api.PoolLocal && want.DiskMiB > vm.Flavor.DiskMiB && h.DiskMiB-h.AllocatedDiskMiB < want.DiskMiB-vm.Flavor.DiskMiB:
			return fmt.Sprintf("%d MiB local disk free", max(h.DiskMiB-h.AllocatedDiskMiB, 0))
		}
		return ""
	}
	return "host not found"
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
	p := scheduler.Placement{Flavor: want, Pool: vm.Pool, Live: kind == api.OpLive, Source: src, AllowUnsafeTCG: allowUnsafeTCG}
	dst, err := scheduler.Pick(others, p)
	if err != nil && kind == api.OpLive {
		p.Live, kind = false, api.OpCold
		dst, err = scheduler.Pick(others, p)
	}
	if err != nil {
		return api.Operation{}, errs.NoCapacity("no host has room for vm %q at its new size: %v", vm.Name, err)
	}
	return api.Operation{VM: vm.Name, VMID: vm.ID, Kind: kind, State: api.OpPlanned, Source: src.Name, Dest: dst.Name,
		Strategy: moveStrategy(kind, vm), PredictedMS: predictMove(kind, vm, dst, 0).Milliseconds(),
		Reason: "its host " + src.Name + " has no room for the new size (--allow-move)"}, nil
}

// execResize resizes a VM in place: the new flavor is recorded (the
// host's claim) before the agent is asked, and set back if it fails.
func (c *Service) execResize(ctx context.Context, in api.Intent, i int) outcome {
	for _, prev := range in.Operations[:i] {
		if prev.State != api.OpDone {
			return outcome{state: api.OpSkipped, reason: "the move before it did not complete (" + prev.State + ")"}
		}
	}
	op := in.Operations[i]
	unlock, err := c.lockVM(op.VM, "resize")
	if err != nil {
		return outcome{state: api.OpPending, reason: "waiting: " + err.Error()}
	}
	defer unlock()
	vm, err := c.vmByName(ctx, op.VM)
	if err != nil || vm.ID != op.VMID {
		return outcome{state: api.OpSkipped, reason: "the vm was deleted"}
	}
	h, err := c.hostOf(ctx, vm)
	if err != nil {
		return outcome{state: api.OpFailed, reason: err.Error()}
	}
	old, want := vm.Flavor, vm.Flavor
	if in.Params.VCPUs > 0 {
		want.VCPUs = in.Params.VCPUs
	}
	if in.Params.MemoryMiB > 0 {
		want.MemoryMiB = in.Params.MemoryMiB
	}
	if in.Params.DiskMiB > 0 {
		want.DiskMiB = in.Params.DiskMiB
	}
	if want == old && op.Step == "" {
		return outcome{state: api.OpDone, reason: "already at the new size"}
	}
	// Claim the larger of old and new for the duration: a shrink frees
	// room only once the guest has given it back.
	claimed := api.Flavor{VCPUs: max(old.VCPUs, want.VCPUs), MemoryMiB: max(old.MemoryMiB, want.MemoryMiB), DiskMiB: max(old.DiskMiB, want.DiskMiB)}
	if err := c.claimResize(ctx, vm, claimed); err != nil {
		return outcome{state: api.OpFailed, reason: err.Error()}
	}
	ag := c.agent(h.Address)
	actx, cancel := context.WithTimeout(ctx, agentCallTimeout+resizeRestartTimeout*time.Second)
	defer cancel()
	resize := hostapi.ResizeVM{VCPUs: want.VCPUs, MemoryMiB: want.MemoryMiB, DiskMiB: want.DiskMiB}
	var rep hostapi.ResizeReply
	step := func(s string) { c.setOp(ctx, in.ID, i, func(o *api.Operation) { o.Step = s }) }
	switch {
	case vm.State == api.VMRunning && onlineBlocker(vm, want) == "":
		step("hotplug")
		rep, err = ag.Resize(actx, vm.ID, resize)
	case vm.State == api.VMRunning && in.Params.AllowRestart:
		resize.MaxVCPUs, resize.MaxMemoryMiB = max(vm.MaxVCPUs, want.VCPUs), max(vm.MaxMemoryMiB, want.MemoryMiB)
		step("stopping")
		if _, err = ag.Stop(actx, vm.ID, hostapi.StopVM{TimeoutSeconds: resizeRestartTimeout}); err == nil {
			failpoint.Hit("resize/after-stop") // stopped, the definition unchanged
			step("changing the definition")
			if rep, err = ag.Resize(actx, vm.ID, resize); err == nil {
				step("starting")
				var vr hostapi.VMReport
				vr, err = ag.Action(actx, vm.ID, "start")
				rep.VM, rep.Online = vr, false
			} else if _, serr := ag.Action(actx, vm.ID, "start"); serr != nil {
				err = fmt.Errorf("%w; restarting it at the old size failed too: %v", err, serr)
			}
		}
	case vm.State == api.VMRunning:
		err = errs.NotSupported("cannot be done online: %s; add --allow-restart", onlineBlocker(vm, want))
	default:
		resize.MaxVCPUs, resize.MaxMemoryMiB = max(vm.MaxVCPUs, want.VCPUs), max(vm.MaxMemoryMiB, want.MemoryMiB)
		step("changing the definition")
		rep, err = ag.Resize(actx, vm.ID, resize)
	}
	if err != nil {
		c.claimResize(context.WithoutCancel(ctx), vm, old)
		return outcome{state: api.OpFailed, reason: errOf("resize on "+h.Name, err)}
	}
	got := api.Flavor{VCPUs: rep.VCPUs, MemoryMiB: rep.MemoryMiB, DiskMiB: rep.DiskMiB}
	state, reason, pid := observed(rep.VM)
	if _, err := c.store.UpdateVM(context.WithoutCancel(ctx), vm.Name, func(v *api.VM) error {
		v.Flavor = got
		v.MaxVCPUs, v.MaxMemoryMiB, v.BootMemoryMiB = rep.MaxVCPUs, rep.MaxMemoryMiB, rep.BootMemoryMiB
		v.State, v.StateReason, v.PID = state, reason, pid
		return nil
	}); err != nil {
		c.log.Error("record resized vm", "vm", vm.Name, "err", err)
	}
	msg := fmt.Sprintf("now %d vCPUs, %d MiB memory, %d MiB disk", got.VCPUs, got.MemoryMiB, got.DiskMiB)
	if rep.Online {
		msg += ", online (pid " + fmt.Sprint(rep.VM.PID) + " unchanged)"
	}
	if len(rep.Notes) > 0 {
		msg += "; " + strings.Join(rep.Notes, "; ")
	}
	c.log.Info("vm resized", "vm", vm.Name, "host", h.Name, "result", msg)
	return outcome{state: api.OpDone, reason: msg}
}

// claimResize records a VM's flavor if its host has room for it, with
// every other placement held off meanwhile.
func (c *Service) claimResize(ctx context.Context, vm api.VM, f api.Flavor) error {
	c.schedMu.Lock()
	defer c.schedMu.Unlock()
	hosts, err := c.hostsWithAllocations(ctx)
	if err != nil {
		return err
	}
	if why := roomFor(hosts, vm.Host, vm, f); why != "" {
		return errs.NoCapacity("host %s has no room to grow vm %q: %s", vm.Host, vm.Name, why)
	}
	_, err = c.store.UpdateVM(ctx, vm.Name, func(v *api.VM) error { v.Flavor = f; return nil })
	return err
}

// Rebuild reimages a VM in place: same host, same name and id, a fresh
// disk from the image (its current one unless another is named).
func (c *Service) Rebuild(ctx context.Context, name string, req api.RebuildRequest) (api.Intent, error) {
	vm, err := c.vmByName(ctx, name)
	if err != nil {
		return api.Intent{}, err
	}
	image := req.Image
	if image == "" {
		image = vm.Image
	}
	im, err := c.store.Image(ctx, image)
	if errors.Is(err, errs.ErrNotFound) {
		return api.Intent{}, errs.Invalid("image %q not found; list images with: godwit image list", image)
	} else if err != nil {
		return api.Intent{}, err
	}
	if _, hasDisk := im.File(api.RoleDisk); hasDisk && vm.Flavor.DiskMiB == 0 {
		return api.Intent{}, errs.Invalid("image %q boots from a disk and vm %q has none; choose a kernel image", im.Name, name)
	}
	host, err := c.hostOf(ctx, vm)
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
	in := api.Intent{Kind: api.IntentRebuild, Target: vm.Name, State: api.IntentPlanned, Params: api.IntentParams{Image: im.Name},
		Operations: []api.Operation{{VM: vm.Name, VMID: vm.ID, Kind: api.OpRebuild, State: api.OpPlanned, Source: host.Name, Dest: host.Name,
			Strategy: strategyInPlace, PredictedMS: d.Milliseconds()}},
		PredictedMS: d.Milliseconds()}
	if vm.Flavor.DiskMiB > 0 {
		in.Notes = append(in.Notes, "the disk of vm "+vm.Name+" is replaced with a fresh one from image "+im.Name+": data on it is lost")
	}
	if req.DryRun {
		return in, nil
	}
	return c.startIntent(ctx, in)
}
