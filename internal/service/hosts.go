package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/store"
)

// staleCleaned records that a host removed the stale copies it was told
// to remove.
func (c *Service) staleCleaned(ctx context.Context, host string, cleaned []hostapi.StaleVM) {
	for _, s := range cleaned {
		_, err := c.store.UpdateVM(ctx, s.Name, func(v *api.VM) error {
			if v.ID != s.ID {
				return errs.ErrNotFound
			}
			v.StaleCopies = slices.DeleteFunc(v.StaleCopies, func(h string) bool { return h == host })
			return nil
		})
		if err == nil {
			c.log.Info("stale copy removed by its host", "vm", s.Name, "host", host)
		}
	}
}

// reportGrace is how long after the controller itself recorded a VM's
// state a heartbeat may not override it: a heartbeat gathered just before
// an operation finished can arrive just after it, and would undo it.
const reportGrace = 5 * time.Second

// reconcileReports brings the observed state of a host's VMs in line with
// what its agent reports. VMs with an operation in flight, or one that
// just ended, are left alone.
//
// It returns the reported VMs the host must remove: stale copies of VMs
// rebuilt elsewhere while it was down.
func (c *Service) reconcileReports(ctx context.Context, host string, reports []hostapi.VMReport) ([]hostapi.StaleVM, error) {
	recent := time.Now().UTC().Add(-reportGrace)
	byID := make(map[string]hostapi.VMReport, len(reports))
	for _, rep := range reports {
		byID[rep.ID] = rep
	}
	vms, err := c.store.VMs(ctx, store.VMFilter{Host: host})
	if err != nil {
		return nil, err
	}
	known := make(map[string]bool, len(vms))
	for _, vm := range vms {
		known[vm.ID] = true
		rep, reported := byID[vm.ID]
		// A create a controller restart cut off: its host has the VM
		// (recorded below as the host reports it) or never got it.
		interrupted := c.interruptedCreate(ctx, vm, recent)
		if interrupted && !reported {
			c.dropInterruptedCreate(ctx, vm, host)
			continue
		}
		// A guest panic is a fact its host saw, recorded even while an
		// operation is in flight: during a migration is when it matters.
		var pn *hostapi.Panic
		if reported && newPanic(vm.LastPanic, host, rep.LastPanic) {
			pn = rep.LastPanic
		}
		busy := c.isBusy(vm.Name) || (vm.State == api.VMCreating && !interrupted) || vm.State == api.VMDeleting || vm.UpdatedAt.After(recent)
		if busy && pn == nil {
			continue
		}
		state, reason, pid := vm.State, vm.StateReason, vm.PID
		if !busy {
			state, reason, pid = api.VMError, "the host agent does not know this VM", 0
			if reported {
				state, reason, pid = observed(rep)
			}
		}
		if pn == nil && state == vm.State && reason == vm.StateReason && pid == vm.PID {
			continue
		}
		if state != vm.State || reason != vm.StateReason {
			c.log.Info("vm state observed", "vm", vm.Name, "host", host, "from", vm.State, "to", state, "reason", reason)
		}
		var moved time.Time
		if pn != nil && pn.Arrived {
			moved = c.migrationStart(ctx, vm)
		}
		recorded := false
		updated, err := c.store.UpdateVM(ctx, vm.Name, func(v *api.VM) error {
			if pn != nil {
				recorded = recordPanic(v, host, pn, moved) // false: another heartbeat was first
			}
			if !busy {
				v.State, v.StateReason, v.PID = state, reason, pid
			}
			return nil
		})
		if err != nil && !errors.Is(err, errs.ErrNotFound) {
			return nil, err
		}
		if err == nil && recorded {
			c.log.Warn("guest panicked", "vm", vm.Name, "host", host, "reason", pn.Reason, "at", pn.At, "count", updated.LastPanic.Count)
			c.panicOnMigration(ctx, updated, host, pn)
		}
	}
	var remove []hostapi.StaleVM
	for _, rep := range reports {
		if known[rep.ID] {
			continue
		}
		if vm, err := c.store.VM(ctx, rep.Name); err == nil && vm.ID == rep.ID && slices.Contains(vm.StaleCopies, host) {
			c.log.Warn("host holds a stale copy of a vm rebuilt elsewhere; telling it to remove it", "host", host, "vm", rep.Name, "now_on", vm.Host)
			remove = append(remove, hostapi.StaleVM{ID: rep.ID, Name: rep.Name})
			continue
		}
		if c.isBusy(rep.Name) {
			continue // a migration's destination copy, or its source's last moments
		}
		if vm, why := c.orphanCopy(ctx, rep, host, recent); why != "" {
			c.log.Warn("host holds a copy of a vm that runs elsewhere with no operation behind it; telling it to remove it",
				"host", host, "vm", rep.Name, "runs_on", vm.Host, "why", why)
			remove = append(remove, hostapi.StaleVM{ID: rep.ID, Name: rep.Name})
			continue
		}
		c.log.Warn("host runs a vm the controller does not place there", "host", host, "vm", rep.Name, "id", rep.ID)
	}
	return remove, nil
}

// interruptedCreate reports whether vm is a create that a controller
// restart cut off: recorded as creating, before a heartbeat's grace, with
// no create in flight in this process and no intent rebuilding it.
func (c *Service) interruptedCreate(ctx context.Context, vm api.VM, recent time.Time) bool {
	if vm.State != api.VMCreating || vm.UpdatedAt.After(recent) || c.isBusy(vm.Name) {
		return false
	}
	ins, err := c.store.Intents(ctx, store.IntentFilter{Active: true})
	if err != nil {
		return false
	}
	for _, in := range ins {
		for _, op := range in.Operations {
			if op.VM == vm.Name && (op.State == api.OpPending || op.State == api.OpRunning) {
				return false // an evacuation's rebuild: its runner finishes it
			}
		}
	}
	return true
}

// dropInterruptedCreate removes the record of a create its host never
// received. A create is acknowledged only after its host answers, so
// nobody was told this VM exists; its requester saw an error or no answer.
func (c *Service) dropInterruptedCreate(ctx context.Context, vm api.VM, host string) {
	unlock, err := c.lockVM(vm.Name, "recover an interrupted create")
	if err != nil {
		return
	}
	defer unlock()
	cur, err := c.store.VM(ctx, vm.Name)
	if err != nil || cur.ID != vm.ID || cur.State != api.VMCreating {
		return
	}
	if err := c.store.DeleteVM(ctx, vm.Name); err != nil {
		c.log.Error("remove the record of an interrupted create", "vm", vm.Name, "err", err)
		return
	}
	if err := c.releasePorts(ctx, vm.ID); err != nil {
		c.log.Error("free the ports of an interrupted create", "vm", vm.Name, "err", err)
	}
	c.log.Warn("create interrupted before its host had the vm (a controller restart); record removed", "vm", vm.Name, "host", host, "id", vm.ID)
}

// orphanCopy says why a host's copy of a VM recorded on another host is
// surplus, or "" when it may not be removed. Such a copy is what a
// migration left when it ended without its destination answering (a
// half-prepared destination), or a source copy whose release was lost.
// It is surplus only when nothing may still need it: the VM is not busy
// (checked by the caller), its record has not changed for a heartbeat's
// grace, it is running or stopped on its own host, which is up, and its
// last migration did not end asking for attention (where the operator
// decides which copy is the VM). Removal keeps a shared-pool disk, which
// the VM's own copy uses (removeStale, on the agent).
func (c *Service) orphanCopy(ctx context.Context, rep hostapi.VMReport, host string, recent time.Time) (api.VM, string) {
	vm, err := c.store.VM(ctx, rep.Name)
	if err != nil || vm.ID != rep.ID || vm.Host == "" || vm.Host == host || vm.UpdatedAt.After(recent) {
		return vm, ""
	}
	if vm.State != api.VMRunning && vm.State != api.VMStopped {
		return vm, ""
	}
	if h, err := c.store.Host(ctx, vm.Host); err != nil || h.State != api.HostUp {
		return vm, ""
	}
	ms, err := c.store.Migrations(ctx, store.MigrationFilter{VM: vm.Name})
	if err != nil {
		return vm, ""
	}
	for i, m := range ms { // newest first
		if !m.State.Final() || (i == 0 && m.State == api.MigNeedsAttention) {
			return vm, ""
		}
	}
	return vm, fmt.Sprintf("the vm is %s on %s and no operation uses this copy", vm.State, vm.Host)
}

// observed maps a driver state reported by an agent to the API's state.
func observed(rep hostapi.VMReport) (state, reason string, pid int) {
	switch rep.State {
	case "running", "paused":
		return api.VMRunning, "", rep.PID
	case "stopped":
		return api.VMStopped, "", 0
	case "crashed":
		if rep.PID != 0 { // the process lives: the guest is held paused at a panic
			why := rep.Reason
			if why == "" {
				why = "the guest panicked"
			}
			return api.VMCrashed, why + "; held paused by its on-panic policy (pause): read its console, then reboot or stop it", rep.PID
		}
		return api.VMStopped, "the VM's process exited without a stop request (guest crash or kill); see its console", 0
	}
	return api.VMError, "host reports unknown state " + rep.State, rep.PID
}

// monitorHosts marks hosts down when their heartbeats stop, and their VMs
// unknown: nobody can vouch for them until the host is back or fenced.
func (c *Service) monitorHosts(ctx context.Context) {
	tick := time.NewTicker(c.cfg.HostDownAfter / 5)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		down, err := c.store.MarkHostsDown(ctx, time.Now().UTC().Add(-c.cfg.HostDownAfter))
		if err != nil {
			c.log.Error("mark hosts down", "err", err)
			continue
		}
		for _, h := range down {
			c.log.Warn("host is down: no heartbeat", "host", h, "after", c.cfg.HostDownAfter)
			vms, err := c.store.VMs(ctx, store.VMFilter{Host: h})
			if err != nil {
				c.log.Error("list vms of down host", "host", h, "err", err)
				continue
			}
			for _, vm := range vms {
				_, _ = c.store.UpdateVM(ctx, vm.Name, func(v *api.VM) error {
					v.State, v.StateReason = api.VMUnknown, "host "+h+" is down"
					return nil
				})
			}
		}
	}
}

// hostsWithAllocations returns every host with the resources its VMs
// hold filled in.
func (c *Service) hostsWithAllocations(ctx context.Context) ([]api.Host, error) {
	hosts, err := c.store.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	// Migrations are read before VMs, and a migration moves its VM's
	// record to the destination before it ends: so whatever completes in
	// between, a moving VM is counted on its destination at least once
	// (never zero times, which would let its room be booked twice).
	migs, err := c.store.Migrations(ctx, store.MigrationFilter{Active: true})
	if err != nil {
		return nil, err
	}
	vms, err := c.store.VMs(ctx, store.VMFilter{})
	if err != nil {
		return nil, err
	}
	idx := make(map[string]int, len(hosts))
	for i := range hosts {
		idx[hosts[i].Name] = i
	}
	byName := make(map[string]api.VM, len(vms))
	for _, vm := range vms {
		byName[vm.Name] = vm
	}
	// A migration in flight claims its destination until the VM is
	// recorded there (at finishing); counting both would book it twice.
	for _, m := range migs {
		if vm, ok := byName[m.VM]; ok && m.Destination != "" && vm.Host != m.Destination {
			vm.Host = m.Destination
			vms = append(vms, vm)
		}
	}
	for _, vm := range vms {
		i, ok := idx[vm.Host]
		if !ok {
			continue
		}
		h := &hosts[i]
		h.VMs++
		h.AllocatedCPUs += vm.Flavor.VCPUs
		h.AllocatedMemoryMiB += vm.Flavor.MemoryMiB
		if vm.Pool == api.PoolLocal {
			h.AllocatedDiskMiB += vm.Flavor.DiskMiB
		}
	}
	return hosts, nil
}

// Heartbeat records an agent's report: the host's facts and the state of
// its VMs. The controller's clock stamps it, so agents' clocks don't
// matter for down detection. The reply names the stale copies the agent
// must remove.
func (c *Service) Heartbeat(ctx context.Context, hb hostapi.Heartbeat) (hostapi.HeartbeatReply, error) {
	if err := api.ValidateName("host", hb.Host.Name); err != nil {
		return hostapi.HeartbeatReply{}, errs.Invalid("%v", err)
	}
	if hb.Host.Address == "" {
		return hostapi.HeartbeatReply{}, errs.Invalid("heartbeat of host %q has no address", hb.Host.Name)
	}
	if err := c.checkVersion(hb); err != nil {
		return hostapi.HeartbeatReply{}, err
	}
	h := hb.Host
	h.State = api.HostUp
	h.LastHeartbeat = time.Now().UTC()
	created, err := c.store.UpsertHost(ctx, h)
	if err != nil {
		return hostapi.HeartbeatReply{}, err
	}
	if created {
		c.log.Info("host registered", "host", h.Name, "address", h.Address, "accel", h.Accelerator)
	}
	c.staleCleaned(ctx, h.Name, hb.Cleaned)
	remove, err := c.reconcileReports(ctx, h.Name, hb.VMs)
	if err != nil {
		return hostapi.HeartbeatReply{}, err
	}
	return hostapi.HeartbeatReply{Remove: remove}, nil
}

// Hosts lists the hosts with their allocations and, where the controller
// sees the shared pool, their leases.
func (c *Service) Hosts(ctx context.Context) ([]api.Host, error) {
	hosts, err := c.hostsWithAllocations(ctx)
	if err != nil {
		return nil, err
	}
	c.withLeases(hosts)
	return c.withRefused(hosts), nil
}

// Host returns one host as Hosts shows it.
func (c *Service) Host(ctx context.Context, name string) (api.Host, error) {
	hosts, err := c.Hosts(ctx)
	if err != nil {
		return api.Host{}, err
	}
	for _, h := range hosts {
		if h.Name == name {
			return h, nil
		}
	}
	return api.Host{}, errs.NotFound("host %q not found; list hosts with: godwit host list", name)
}

// SetHostEnabled takes a host out of scheduling or puts it back: a
// disabled host keeps its VMs; only new placements avoid it. A host being
// drained cannot be enabled until the drain is cancelled.
func (c *Service) SetHostEnabled(ctx context.Context, name string, enable bool) (api.Host, error) {
	if _, err := c.store.Host(ctx, name); err != nil {
		return api.Host{}, errs.NotFound("host %q not found; list hosts with: godwit host list", name)
	}
	if enable {
		if act, err := c.store.Intents(ctx, store.IntentFilter{Target: name, Active: true}); err == nil {
			for _, in := range act {
				if in.Kind == api.IntentDrain {
					return api.Host{}, errs.Conflict("host %s is being drained (intent %s); cancel it first: godwit intent cancel %s", name, in.ID, in.ID)
				}
			}
		}
	}
	if err := c.store.SetHostEnabled(ctx, name, enable); err != nil {
		return api.Host{}, err
	}
	c.log.Info("host scheduling changed", "host", name, "enabled", enable)
	return c.Host(ctx, name)
}

// HostsWithAllocations lists the hosts with what their VMs and the
// migrations into them claim.
func (c *Service) HostsWithAllocations(ctx context.Context) ([]api.Host, error) {
	return c.hostsWithAllocations(ctx)
}
