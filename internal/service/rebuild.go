package service

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/scheduler"
)

// Rebuild is a service operation of its own, never a migration: the VM is
// created anew from its disk or its image, on another host when its own
// is dead (an evacuation) or on its own host (a rebuild). Each step is
// safe to repeat: the intent runner calls these again after a restart.

// RebuildElsewhere is one VM of an evacuation: claim a destination by
// recording the VM there (marking the dead host's copy stale), then
// create it there — on its own shared disk, or from its image. claimed,
// when not nil, is told the destination once it is recorded and before
// the agent is asked. A VM already recorded on another host (a repeated
// step) is created there. It returns the host the VM now runs on.
func (c *Service) RebuildElsewhere(ctx context.Context, vm api.VM, im api.Image, dead string, claimed func(dst string)) (string, error) {
	if vm.Host == dead {
		dst, err := c.claimElsewhere(ctx, vm, dead)
		if err != nil {
			return "", err
		}
		vm.Host = dst
		if claimed != nil {
			claimed(dst)
		}
		failpoint.Hit("evacuate/before-rebuild") // the record on dst, the agent not asked yet
	}
	h, err := c.store.Host(ctx, vm.Host)
	if err != nil {
		return "", fmt.Errorf("host %s: %w", vm.Host, err)
	}
	log := c.log.With("vm", vm.Name, "from", dead, "to", h.Name)
	log.Info("rebuilding vm on another host")
	actx, cancel := context.WithTimeout(ctx, agentCreateTimeout)
	defer cancel()
	ag := c.agent(h)
	spec, err := c.agentSpec(ctx, vm, im, vm.DesiredState == api.VMRunning)
	if err != nil {
		return "", err
	}
	rep, err := ag.CreateVM(actx, spec)
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
			v.Host, v.State, v.StateReason = dead, api.VMUnknown, "host "+dead+" is down; rebuilding elsewhere failed: "+err.Error()
			v.StaleCopies = slices.DeleteFunc(v.StaleCopies, func(s string) bool { return s == dead })
			return nil
		})
		return "", fmt.Errorf("create on %s: %w", h.Name, err)
	}
	failpoint.Hit("evacuate/after-rebuild") // created on dst, the record not running yet
	if _, err := c.applyReport(ctx, vm.Name, rep); err != nil {
		log.Error("record rebuilt vm", "err", err)
	}
	log.Info("vm rebuilt", "pid", rep.PID)
	return h.Name, nil
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
	dst, err := scheduler.Pick(scheduler.Without(hosts, dead), scheduler.Placement{Flavor: vm.Flavor, Pool: vm.Pool})
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

// RebuildInPlace reimages a VM on its host: its disk is replaced by a
// fresh one from the image. A failure after the old disk is gone leaves
// the VM in state error, saying how to retry.
func (c *Service) RebuildInPlace(ctx context.Context, vm api.VM, im api.Image) (string, error) {
	h, err := c.hostOf(ctx, vm)
	if err != nil {
		return "", err
	}
	// The image as it is now, read and recorded as the VM's base under
	// imageUse, so that it cannot be deleted in between (a fresh disk is
	// made from it: its current content is the one wanted).
	name := im.Name
	c.imageUse.RLock()
	if im, err = c.store.Image(ctx, name); err != nil {
		c.imageUse.RUnlock()
		if errors.Is(err, errs.ErrNotFound) {
			return "", errs.Invalid("image %q is gone; rebuild from another: godwit rebuild %s --image IMAGE", name, vm.Name)
		}
		return "", Retry(fmt.Errorf("read image %s: %w", name, err))
	}
	vm, err = c.store.UpdateVM(ctx, vm.Name, func(v *api.VM) error {
		v.Image, v.ImageSHA256 = im.Name, diskSHA256(im)
		v.State, v.StateReason = api.VMCreating, "rebuilding from image "+im.Name
		return nil
	})
	c.imageUse.RUnlock()
	if err != nil {
		return "", Retry(fmt.Errorf("record vm: %w", err))
	}
	ag := c.agent(h)
	actx, cancel := context.WithTimeout(ctx, agentCreateTimeout)
	defer cancel()
	if err := ag.DeleteVM(actx, vm.ID); err != nil && !errors.Is(err, errs.ErrNotFound) {
		return "", c.rebuildFailed(ctx, vm, fmt.Errorf("remove the old disk on %s: %w", h.Name, err))
	}
	failpoint.Hit("rebuild/after-delete") // the old VM and disk gone, the new not created
	spec, err := c.agentSpec(ctx, vm, im, vm.DesiredState == api.VMRunning)
	if err != nil {
		return "", c.rebuildFailed(ctx, vm, err)
	}
	rep, err := ag.CreateVM(actx, spec)
	if err != nil {
		return "", c.rebuildFailed(ctx, vm, fmt.Errorf("create on %s: %w", h.Name, err))
	}
	if _, err := c.applyReport(ctx, vm.Name, rep); err != nil {
		c.log.Error("record rebuilt vm", "vm", vm.Name, "err", err)
	}
	c.log.Info("vm rebuilt in place", "vm", vm.Name, "host", h.Name, "image", im.Name)
	return h.Name, nil
}

func (c *Service) rebuildFailed(ctx context.Context, vm api.VM, err error) error {
	c.store.UpdateVM(context.WithoutCancel(ctx), vm.Name, func(v *api.VM) error {
		v.State, v.StateReason = api.VMError, "rebuild failed: "+err.Error()+"; retry with: godwit rebuild "+vm.Name
		return nil
	})
	return err
}

// retryable marks an error after which an operation may simply be tried
// again: nothing was changed yet.
type retryable struct{ err error }

func (e retryable) Error() string { return e.err.Error() }
func (e retryable) Unwrap() error { return e.err }

// Retry marks err as one after which the operation may be tried again.
func Retry(err error) error { return retryable{err} }

// IsRetryable reports whether err leaves the operation to be tried again.
func IsRetryable(err error) bool {
	var r retryable
	return errors.As(err, &r)
}
