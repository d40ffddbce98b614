package service

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/scheduler"
)

// ResizeRestartTimeout bounds the graceful stop of an offline resize.
const ResizeRestartTimeout = 60 * time.Second

// Resize is a service operation of its own, never a migration: a VM's
// vCPUs, memory or disk change where it runs — online by hotplug when it
// runs and the change fits its hotplug ceilings, else (allowRestart) by a
// stop, a changed definition and a start; a stopped VM's definition
// changes for its next start. The new flavor is recorded (the host's
// claim) before the agent is asked, and set back if it fails. flavorName
// is the stored flavor want came from ("" for sizes given as such): the
// VM records it when it got all of want, and records none otherwise.
// step, when not nil, is told each step before it runs. It returns what
// the VM is now, in words.
func (c *Service) ResizeInPlace(ctx context.Context, vm api.VM, want api.Flavor, flavorName string, allowRestart bool, step func(string)) (string, error) {
	if step == nil {
		step = func(string) {}
	}
	h, err := c.hostOf(ctx, vm)
	if err != nil {
		return "", err
	}
	old := vm.Flavor
	// Claim the larger of old and new for the duration: a shrink frees
	// room only once the guest has given it back.
	claimed := api.Flavor{VCPUs: max(old.VCPUs, want.VCPUs), MemoryMiB: max(old.MemoryMiB, want.MemoryMiB), DiskMiB: max(old.DiskMiB, want.DiskMiB)}
	if err := c.claimResize(ctx, vm, claimed); err != nil {
		return "", err
	}
	ag := c.agent(h)
	actx, cancel := context.WithTimeout(ctx, agentCallTimeout+ResizeRestartTimeout)
	defer cancel()
	resize := hostapi.ResizeVM{VCPUs: want.VCPUs, MemoryMiB: want.MemoryMiB, DiskMiB: want.DiskMiB}
	var rep hostapi.ResizeReply
	switch {
	case vm.State == api.VMRunning && OnlineResizeBlocker(vm, want) == "":
		step("hotplug")
		rep, err = ag.Resize(actx, vm.ID, resize)
	case vm.State == api.VMRunning && allowRestart:
		resize.MaxVCPUs, resize.MaxMemoryMiB = max(vm.MaxVCPUs, want.VCPUs), max(vm.MaxMemoryMiB, want.MemoryMiB)
		step("stopping")
		if _, err = ag.Stop(actx, vm.ID, hostapi.StopVM{TimeoutSeconds: int(ResizeRestartTimeout.Seconds())}); err == nil {
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
		err = errs.NotSupported("cannot be done online: %s; add --allow-restart", OnlineResizeBlocker(vm, want))
	default:
		resize.MaxVCPUs, resize.MaxMemoryMiB = max(vm.MaxVCPUs, want.VCPUs), max(vm.MaxMemoryMiB, want.MemoryMiB)
		step("changing the definition")
		rep, err = ag.Resize(actx, vm.ID, resize)
	}
	if err != nil {
		c.claimResize(context.WithoutCancel(ctx), vm, old)
		return "", fmt.Errorf("resize on %s: %w", h.Name, err)
	}
	got := api.Flavor{VCPUs: rep.VCPUs, MemoryMiB: rep.MemoryMiB, DiskMiB: rep.DiskMiB}
	state, reason, pid := observed(rep.VM)
	if _, err := c.store.UpdateVM(context.WithoutCancel(ctx), vm.Name, func(v *api.VM) error {
		v.Flavor, v.FlavorName = got, ""
		if got == want {
			v.FlavorName = flavorName
		}
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
	return msg, nil
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
	if why := scheduler.RoomFor(hosts, vm.Host, vm, f); why != "" {
		return errs.NoCapacity("host %s has no room to grow vm %q: %s", vm.Host, vm.Name, why)
	}
	_, err = c.store.UpdateVM(ctx, vm.Name, func(v *api.VM) error { v.Flavor = f; return nil })
	return err
}

// OnlineResizeBlocker says why a running VM cannot get flavor want without
// a restart, or "" when hotplug can do it.
func OnlineResizeBlocker(vm api.VM, want api.Flavor) string {
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
