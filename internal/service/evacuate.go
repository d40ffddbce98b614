package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/scheduler"
	"github.com/godwit/godwit/internal/store"
)

// Rebuild strategies, recorded on the operations.
const (
	strategyReuseDisk = "shared-storage/reuse-disk" // evacuate: same disk, new host
	strategyReimage   = "local-disk/reimage"        // evacuate with --allow-data-loss: fresh disk from the image
	strategyNoDisk    = "no-disk/restart"           // evacuate: a VM without a disk starts again elsewhere
	strategyInPlace   = "in-place/reimage"          // rebuild: fresh disk from the image, same host
)

// Evacuate rebuilds every VM of a host that is down on other hosts. It
// refuses while the host may still be alive: heartbeats must have stopped
// and either fencing evidence or the operator's word (HostIsDown) must
// say the host no longer runs anything. VMs on the shared pool keep their
// disks; VMs with local disks are refused unless AllowDataLoss, then
// rebuilt from their image.
func (c *Service) Evacuate(ctx context.Context, host string, req api.EvacuateRequest) (api.Intent, error) {
	h, err := c.store.Host(ctx, host)
	if errors.Is(err, errs.ErrNotFound) {
		return api.Intent{}, errs.NotFound("host %q not found; list hosts with: godwit host list", host)
	} else if err != nil {
		return api.Intent{}, err
	}
	if why := c.notProvenDown(h, req.HostIsDown); why != "" {
		return api.Intent{}, errs.Conflict("%s", why)
	}
	if err := c.noActiveHostIntent(ctx, host); err != nil {
		return api.Intent{}, err
	}
	in := api.Intent{Kind: api.IntentEvacuate, Target: host, State: api.IntentPlanned,
		Params: api.IntentParams{HostIsDown: req.HostIsDown, AllowDataLoss: req.AllowDataLoss}}
	if proof := c.fencingEvidence(h); proof != "" {
		in.Notes = append(in.Notes, "proven down: "+proof)
	} else {
		in.Notes = append(in.Notes, "proven down: the operator's word (--host-is-down)")
	}
	if err := c.planEvacuate(ctx, &in, h); err != nil {
		return api.Intent{}, err
	}
	if req.DryRun {
		return in, nil
	}
	return c.startIntent(ctx, in)
}

// notProvenDown says why a host cannot be treated as dead, or "" when it
// can. Heartbeats stopping is not enough: a host cut off from the
// controller may still run its VMs and write their disks. Proof is its
// lease on the shared pool expiring (fencingEvidence) or the operator's
// word; a lease still being renewed overrules the operator.
func (c *Service) notProvenDown(h api.Host, confirmed bool) string {
	if h.State == api.HostUp {
		return fmt.Sprintf("host %s is up (last heartbeat %s ago): evacuate rebuilds the VMs of a dead host; to move VMs off a running host use: godwit drain %s",
			h.Name, time.Since(h.LastHeartbeat).Round(time.Second), h.Name)
	}
	if why, judged := c.leaseRefusal(h, confirmed); judged {
		return why
	}
	if !confirmed {
		return fmt.Sprintf("host %s stopped sending heartbeats %s ago, but nothing proves it is dead: it may still run its VMs behind a network split. Make sure it is powered off or fenced, then confirm with --host-is-down",
			h.Name, time.Since(h.LastHeartbeat).Round(time.Second))
	}
	return ""
}

// planEvacuate fills in an evacuation's operations: one rebuild per VM.
func (c *Service) planEvacuate(ctx context.Context, in *api.Intent, src api.Host) error {
	hosts, err := c.hostsWithAllocations(ctx)
	if err != nil {
		return err
	}
	vms, err := c.store.VMs(ctx, store.VMFilter{Host: src.Name})
	if err != nil {
		return err
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
			op.Strategy = strategyNoDisk
		case vm.Pool == api.PoolShared:
			op.Strategy = strategyReuseDisk
		case in.Params.AllowDataLoss:
			op.Strategy = strategyReimage
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
		op.Dest, op.PredictedMS = dst.Name, (predictSetup + bootTime(dst)).Milliseconds()
		scheduler.Claim(others, dst.Name, vm.Flavor, vm.Pool)
		in.Operations = append(in.Operations, op)
	}
	l := c.limitsFor(*in)
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
func (c *Service) execRebuild(ctx context.Context, in api.Intent, i int) outcome {
	op := in.Operations[i]
	unlock, err := c.lockVM(op.VM, "rebuild")
	if err != nil {
		return outcome{state: api.OpPending, reason: "waiting: " + err.Error()}
	}
	defer unlock()
	vm, err := c.vmByName(ctx, op.VM)
	if errors.Is(err, errs.ErrNotFound) || (err == nil && vm.ID != op.VMID) {
		return outcome{state: api.OpSkipped, reason: "the vm was deleted"}
	} else if err != nil {
		return outcome{state: api.OpPending, reason: errOf("read vm", err)}
	}
	image := vm.Image
	if in.Kind == api.IntentRebuild && in.Params.Image != "" {
		image = in.Params.Image
	}
	im, err := c.store.Image(ctx, image)
	if err != nil {
		return outcome{state: api.OpFailed, reason: errOf("image "+image, err)}
	}
	if in.Kind == api.IntentEvacuate {
		return c.rebuildElsewhere(ctx, in, i, vm, im)
	}
	return c.rebuildInPlace(ctx, in, i, vm, im)
}

// rebuildElsewhere is one VM of an evacuation: claim a destination by
// recording the VM there (marking the dead host's copy stale), then
// create it there — on its own shared disk, or from its image.
func (c *Service) rebuildElsewhere(ctx context.Context, in api.Intent, i int, vm api.VM, im api.Image) outcome {
	op := in.Operations[i]
	if vm.Host == op.Source {
		dst, err := c.claimElsewhere(ctx, vm, op.Source)
		if err != nil {
			return outcome{state: api.OpFailed, reason: err.Error()}
		}
		vm.Host = dst
		if err := c.setOp(ctx, in.ID, i, func(o *api.Operation) { o.Dest, o.Step = dst, "creating on "+dst }); err != nil {
			c.log.Error("record rebuild step", "err", err)
		}
		failpoint.Hit("evacuate/before-rebuild") // the record on dst, the agent not asked yet
	}
	h, err := c.store.Host(ctx, vm.Host)
	if err != nil {
		return outcome{state: api.OpFailed, reason: errOf("host "+vm.Host, err)}
	}
	log := c.log.With("vm", vm.Name, "intent", in.ID, "from", op.Source, "to", h.Name)
	log.Info("rebuilding vm on another host")
	actx, cancel := context.WithTimeout(ctx, agentCreateTimeout)
	defer cancel()
	ag := c.agent(h.Address)
	rep, err := ag.CreateVM(actx, agentSpec(vm, im, vm.DesiredState == api.VMRunning))
	if err != nil {
		// Undo on the destination (never deleting a shared disk) and put
		// the record back on the dead host, where an operator finds it.
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), agentCallTimeout)
		defer ucancel()
		undo := ag.Release
		if vm.Pool == api.PoolLocal {
			undo = ag.DeleteVM
		}
		if uerr := undo(uctx, vm.ID); uerr != nil {
			log.Error("undo rebuild on destination", "err", uerr)
		}
		c.store.UpdateVM(uctx, vm.Name, func(v *api.VM) error {
			v.Host, v.State, v.StateReason = op.Source, api.VMUnknown, "host "+op.Source+" is down; rebuilding elsewhere failed: "+err.Error()
			v.StaleCopies = slices.DeleteFunc(v.StaleCopies, func(s string) bool { return s == op.Source })
			return nil
		})
		return outcome{state: api.OpFailed, reason: errOf("create on "+h.Name, err)}
	}
	failpoint.Hit("evacuate/after-rebuild") // created on dst, the record not running yet
	if _, err := c.applyReport(ctx, vm.Name, rep); err != nil {
		log.Error("record rebuilt vm", "err", err)
	}
	log.Info("vm rebuilt", "pid", rep.PID)
	return outcome{state: api.OpDone, dest: h.Name}
}

// claimElsewhere records a VM of a dead host on another host chosen by
// the scheduler, atomically with other placements, and notes the dead
// host's copy as stale.
func (c *Service) claimElsewhere(ctx context.Context, vm api.VM, dead string) (string, error) {
	c.schedMu.Lock()
	defer c.schedMu.Unlock()
	hosts, err := c.hostsWithAllocations(ctx)
	if err != nil {
		return "", err
	}
	var others []api.Host
	for _, h := range hosts {
		if h.Name != dead {
			others = append(others, h)
		}
	}
	dst, err := scheduler.Pick(others, scheduler.Placement{Flavor: vm.Flavor, Pool: vm.Pool})
	if err != nil {
		return "", err
	}
	_, err = c.store.UpdateVM(ctx, vm.Name, func(v *api.VM) error {
		v.Host, v.State, v.StateReason, v.PID = dst.Name, api.VMCreating, "rebuilding after host "+dead+" went down", 0
		if !slices.Contains(v.StaleCopies, dead) {
			v.StaleCopies = append(v.StaleCopies, dead)
		}
		return nil
	})
	return dst.Name, err
}

// rebuildInPlace reimages a VM on its host: its disk is replaced by a
// fresh one from the image.
func (c *Service) rebuildInPlace(ctx context.Context, in api.Intent, i int, vm api.VM, im api.Image) outcome {
	h, err := c.hostOf(ctx, vm)
	if err != nil {
		return outcome{state: api.OpFailed, reason: err.Error()}
	}
	if err := c.setOp(ctx, in.ID, i, func(o *api.Operation) { o.Step = "recreating from image " + im.Name }); err != nil {
		return outcome{state: api.OpPending, reason: errOf("record step", err)}
	}
	if vm, err = c.store.UpdateVM(ctx, vm.Name, func(v *api.VM) error {
		v.Image, v.State, v.StateReason = im.Name, api.VMCreating, "rebuilding from image "+im.Name
		return nil
	}); err != nil {
		return outcome{state: api.OpPending, reason: errOf("record vm", err)}
	}
	ag := c.agent(h.Address)
	actx, cancel := context.WithTimeout(ctx, agentCreateTimeout)
	defer cancel()
	if err := ag.DeleteVM(actx, vm.ID); err != nil && !errors.Is(err, errs.ErrNotFound) {
		return c.rebuildFailed(ctx, vm, errOf("remove the old disk on "+h.Name, err))
	}
	failpoint.Hit("rebuild/after-delete") // the old VM and disk gone, the new not created
	rep, err := ag.CreateVM(actx, agentSpec(vm, im, vm.DesiredState == api.VMRunning))
	if err != nil {
		return c.rebuildFailed(ctx, vm, errOf("create on "+h.Name, err))
	}
	if _, err := c.applyReport(ctx, vm.Name, rep); err != nil {
		c.log.Error("record rebuilt vm", "vm", vm.Name, "err", err)
	}
	c.log.Info("vm rebuilt in place", "vm", vm.Name, "host", h.Name, "image", im.Name)
	return outcome{state: api.OpDone, dest: h.Name}
}

func (c *Service) rebuildFailed(ctx context.Context, vm api.VM, reason string) outcome {
	c.store.UpdateVM(context.WithoutCancel(ctx), vm.Name, func(v *api.VM) error {
		v.State, v.StateReason = api.VMError, "rebuild failed: "+reason+"; retry with: godwit rebuild "+vm.Name
		return nil
	})
	return outcome{state: api.OpFailed, reason: reason}
}

// agentSpec is what an agent is asked to create for a VM.
func agentSpec(vm api.VM, im api.Image, start bool) hostapi.CreateVM {
	return hostapi.CreateVM{
		ID: vm.ID, Name: vm.Name, VCPUs: vm.Flavor.VCPUs, MemoryMiB: vm.Flavor.MemoryMiB, DiskMiB: vm.Flavor.DiskMiB,
		MaxVCPUs: vm.MaxVCPUs, MaxMemoryMiB: vm.MaxMemoryMiB, BootMemoryMiB: vm.BootMemoryMiB,
		Pool: vm.Pool, Image: im, Cmdline: vm.Cmdline, Start: start,
		// Every copy of the VM (a rebuild, a migration's destination)
		// keeps its panic policy.
		OnPanic: vm.OnPanic,
	}
}
