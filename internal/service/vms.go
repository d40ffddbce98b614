package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/audit"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/scheduler"
	"github.com/godwit/godwit/internal/store"
)

// Limits on flavors (api's, which agents check too).
const (
	MaxVCPUs     = api.MaxVCPUs
	MinMemoryMiB = api.MinMemoryMiB
	MaxMemoryMiB = api.MaxMemoryMiB
	MaxDiskMiB   = api.MaxDiskMiB
	maxCmdline   = api.MaxCmdline

	// agentCallTimeout bounds a lifecycle call to an agent; create also
	// fetches the image, so it gets longer.
	agentCallTimeout   = 2 * time.Minute
	agentCreateTimeout = 15 * time.Minute
)

func validateCreate(req *api.CreateVMRequest) error {
	if err := api.ValidateName("vm", req.Name); err != nil {
		return errs.Invalid("%v", err)
	}
	if err := api.ValidateDisplayText("display_name", req.DisplayName); err != nil {
		return errs.Invalid("%v", err)
	}
	if err := api.ValidateDisplayText("description", req.Description); err != nil {
		return errs.Invalid("%v", err)
	}
	if err := api.ValidateAccessIP("access_ipv4", req.AccessIPv4, false); err != nil {
		return errs.Invalid("%v", err)
	}
	if err := api.ValidateAccessIP("access_ipv6", req.AccessIPv6, true); err != nil {
		return errs.Invalid("%v", err)
	}
	req.AccessIPv4, req.AccessIPv6 = api.CanonicalAccessIP(req.AccessIPv4), api.CanonicalAccessIP(req.AccessIPv6)
	if req.Project == "" {
		req.Project = "default"
	}
	if err := api.ValidateName("project", req.Project); err != nil {
		return errs.Invalid("%v", err)
	}
	if req.Image == "" {
		return errs.Invalid("image is required; list images with: godwit image list")
	}
	if req.Pool == "" {
		req.Pool = api.PoolLocal
	}
	if req.Pool != api.PoolLocal && req.Pool != api.PoolShared {
		return errs.Invalid("pool %q is unknown; use %q or %q", req.Pool, api.PoolLocal, api.PoolShared)
	}
	if req.OnPanic == "" {
		req.OnPanic = api.OnPanicRestart
	}
	if !slices.Contains(api.OnPanicPolicies, req.OnPanic) {
		return errs.Invalid("on_panic %q is unknown; use %s", req.OnPanic, strings.Join(api.OnPanicPolicies, ", "))
	}
	if err := api.ValidateMetadata(req.Metadata); err != nil {
		return errs.Invalid("%v", err)
	}
	if len(req.Networks) > api.MaxNICs {
		return errs.Invalid("%d networks asked for; a vm has at most %d nics", len(req.Networks), api.MaxNICs)
	}
	asked := map[string]bool{}
	for _, n := range req.Networks {
		if err := api.ValidateName("network", n.Network); err != nil {
			return errs.Invalid("%v", err)
		}
		if n.IP != "" {
			if asked[n.Network+"/"+n.IP] {
				return errs.Invalid("ip %s is asked for twice on network %s", n.IP, n.Network)
			}
			asked[n.Network+"/"+n.IP] = true
		}
	}
	if len(req.UserData) > api.MaxUserDataBytes {
		return errs.Invalid("user-data is %d bytes; at most %d fit in the seed", len(req.UserData), api.MaxUserDataBytes)
	}
	if err := req.Flavor.Validate(); err != nil {
		return errs.Invalid("%v", err)
	}
	f := req.Flavor
	switch {
	case len(req.Cmdline) > maxCmdline:
		return errs.Invalid("cmdline is %d bytes; at most %d", len(req.Cmdline), maxCmdline)
	case req.MaxVCPUs != 0 && (req.MaxVCPUs < f.VCPUs || req.MaxVCPUs > MaxVCPUs):
		return errs.Invalid("max_vcpus must be between vcpus (%d) and %d, not %d", f.VCPUs, MaxVCPUs, req.MaxVCPUs)
	case req.MaxMemoryMiB != 0 && (req.MaxMemoryMiB < f.MemoryMiB || req.MaxMemoryMiB > MaxMemoryMiB):
		return errs.Invalid("max_memory_mib must be between memory_mib (%d) and %d, not %d", f.MemoryMiB, MaxMemoryMiB, req.MaxMemoryMiB)
	}
	// Hotplug ceilings: room to grow online without a restart. Unplugged
	// vCPUs cost nothing; unplugged memory is address space only.
	if req.MaxVCPUs == 0 {
		req.MaxVCPUs = min(max(2*f.VCPUs, 4), MaxVCPUs)
	}
	if req.MaxMemoryMiB == 0 {
		req.MaxMemoryMiB = f.MemoryMiB
	}
	return nil
}

// NewID returns a random (version 4) UUID for a new record.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// CreateVM validates, places, records and then creates a VM on its host,
// with the sizes of the stored flavor it names, if it names one.
// The record is written before the agent is called; if the agent fails,
// both are undone and nothing is left behind.
func (c *Service) CreateVM(ctx context.Context, req api.CreateVMRequest) (api.VM, error) {
	if err := c.flavorSizes(ctx, &req); err != nil {
		return api.VM{}, err
	}
	if err := validateCreate(&req); err != nil {
		return api.VM{}, err
	}
	released := sync.OnceFunc(c.imageUse.RUnlock)
	c.imageUse.RLock()
	defer released()
	im, err := c.store.Image(ctx, req.Image)
	if err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return api.VM{}, errs.Invalid("image %q not found; list images with: godwit image list", req.Image)
		}
		return api.VM{}, err
	}
	if _, hasDisk := im.File(api.RoleDisk); hasDisk && req.Flavor.DiskMiB == 0 {
		return api.VM{}, errs.Invalid("image %q boots from a disk; give the VM a disk size (disk_mib) of at least the image's size", im.Name)
	}
	unlock, err := c.lockVM(req.Name, "create")
	if err != nil {
		return api.VM{}, err
	}
	defer unlock()
	if _, err := c.store.VM(ctx, req.Name); err == nil {
		return api.VM{}, errs.Conflict("vm %q already exists; choose another name or delete it first", req.Name)
	} else if !errors.Is(err, errs.ErrNotFound) {
		return api.VM{}, err
	}

	start := req.Start == nil || *req.Start
	desired := api.VMRunning
	if !start {
		desired = api.VMStopped
	}
	now := time.Now().UTC()
	vm := api.VM{
		ID: NewID(), Name: req.Name, DisplayName: req.DisplayName, Description: req.Description,
		AccessIPv4: req.AccessIPv4, AccessIPv6: req.AccessIPv6,
		Project: req.Project, Image: im.Name, ImageSHA256: diskSHA256(im),
		Flavor: req.Flavor, FlavorName: req.FlavorName, Pool: req.Pool, Cmdline: req.Cmdline, OnPanic: req.OnPanic,
		MaxVCPUs: req.MaxVCPUs, MaxMemoryMiB: req.MaxMemoryMiB, BootMemoryMiB: req.Flavor.MemoryMiB,
		UserData: req.UserData, Metadata: req.Metadata, DesiredState: desired, State: api.VMCreating, CreatedAt: now, UpdatedAt: now,
	}
	if err := c.vmKey(ctx, &vm, req.KeyName); err != nil {
		return api.VM{}, err
	}
	// Ports first: a create that cannot have its addresses fails before
	// anything is placed. Every failure after this frees them again.
	if vm.Ports, err = c.allocatePorts(ctx, vm.ID, req.Networks); err != nil {
		return api.VM{}, err
	}
	host, err := c.place(ctx, &vm, req.Host)
	if err != nil {
		c.undoPorts(ctx, vm)
		return api.VM{}, err
	}
	released() // recorded: the store now refuses to delete the image
	audit.NoteVM(ctx, vm.ID, vm.Project)
	log := c.log.With("vm", vm.Name, "host", host.Name)
	log.Info("creating vm", "id", vm.ID, "image", im.Name, "ports", len(vm.Ports))

	actx, cancel := context.WithTimeout(ctx, agentCreateTimeout)
	defer cancel()
	spec, err := c.agentSpec(ctx, vm, im, start)
	if err == nil {
		var rep hostapi.VMReport
		if rep, err = c.agent(host).CreateVM(actx, spec); err == nil {
			return c.applyReport(ctx, vm.Name, rep)
		}
	}
	log.Error("create failed; undoing", "err", err)
	// Undo on a fresh context: the request's may be what failed.
	uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), agentCallTimeout)
	defer ucancel()
	if derr := c.agent(host).DeleteVM(uctx, vm.ID); derr != nil && !errors.Is(derr, errs.ErrNotFound) {
		log.Error("undo on host failed", "err", derr)
	}
	if derr := c.store.DeleteVM(uctx, vm.Name); derr != nil {
		log.Error("undo of record failed", "err", derr)
	}
	c.undoPorts(uctx, vm)
	return api.VM{}, fmt.Errorf("create vm %q on host %s: %w", vm.Name, host.Name, err)
}

// undoPorts frees the ports of a VM whose create failed.
func (c *Service) undoPorts(ctx context.Context, vm api.VM) {
	if len(vm.Ports) == 0 {
		return
	}
	if err := c.releasePorts(context.WithoutCancel(ctx), vm.ID); err != nil {
		c.log.Error("undo of ports failed", "vm", vm.Name, "err", err)
	}
}

// place chooses a host (or checks the one asked for) and records the VM
// on it, atomically with respect to other placements.
func (c *Service) place(ctx context.Context, vm *api.VM, want string) (api.Host, error) {
	c.schedMu.Lock()
	defer c.schedMu.Unlock()
	hosts, err := c.hostsWithAllocations(ctx)
	if err != nil {
		return api.Host{}, err
	}
	p := scheduler.Placement{Flavor: vm.Flavor, Pool: vm.Pool}
	var host api.Host
	if want != "" {
		found := false
		for _, h := range hosts {
			if h.Name == want {
				host, found = h, true
			}
		}
		if !found {
			return api.Host{}, errs.Invalid("host %q not found; list hosts with: godwit host list", want)
		}
		if why := scheduler.Check(host, p); why != "" {
			return api.Host{}, errs.NoCapacity("host %q cannot take vm %q: %s", want, vm.Name, why)
		}
	} else if host, err = scheduler.Pick(hosts, p); err != nil {
		return api.Host{}, err
	}
	if err := c.CheckQuota(ctx, vm.Project, vm.Flavor, 1); err != nil {
		return api.Host{}, err
	}
	vm.Host = host.Name
	if err := c.store.CreateVM(ctx, *vm); err != nil {
		return api.Host{}, err
	}
	return host, nil
}

// applyReport records what an agent said of a VM after an operation.
func (c *Service) applyReport(ctx context.Context, name string, rep hostapi.VMReport) (api.VM, error) {
	state, reason, pid := observed(rep)
	return c.store.UpdateVM(ctx, name, func(v *api.VM) error {
		v.State, v.StateReason, v.PID = state, reason, pid
		return nil
	})
}

func (c *Service) vmByName(ctx context.Context, name string) (api.VM, error) {
	return c.store.VM(ctx, name)
}

// hostOf returns the up host a VM is on, or a conflict saying why its
// host cannot be asked now.
func (c *Service) hostOf(ctx context.Context, vm api.VM) (api.Host, error) {
	h, err := c.store.Host(ctx, vm.Host)
	if err != nil {
		return api.Host{}, fmt.Errorf("host %q of vm %q: %w", vm.Host, vm.Name, err)
	}
	if h.State != api.HostUp {
		return api.Host{}, errs.Conflict("host %s of vm %q is down; wait for it to return, or evacuate it", h.Name, vm.Name)
	}
	return h, nil
}

// VMAction starts, stops or reboots a VM. The desired state is recorded
// before the agent is asked.
func (c *Service) VMAction(ctx context.Context, name, action string, req api.VMActionRequest) (api.VM, error) {
	if !slices.Contains(api.VMActions, action) {
		return api.VM{}, errs.NotFound("unknown vm action %q; use start, stop or reboot", action)
	}
	if req.TimeoutSeconds < 0 || req.TimeoutSeconds > 3600 {
		return api.VM{}, errs.Invalid("timeout_seconds must be between 0 and 3600, not %d", req.TimeoutSeconds)
	}
	unlock, err := c.lockVM(name, action)
	if err != nil {
		return api.VM{}, err
	}
	defer unlock()
	vm, err := c.vmByName(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	if err := checkLock(ctx, vm); err != nil {
		return api.VM{}, err
	}
	// A crashed VM's guest is held paused at its panic: a reboot resets it.
	if action == "reboot" && vm.State != api.VMRunning && vm.State != api.VMCrashed {
		return api.VM{}, errs.Conflict("vm %q is %s; only a running VM can be rebooted (start it instead)", name, vm.State)
	}
	host, err := c.hostOf(ctx, vm)
	if err != nil {
		return api.VM{}, err
	}
	desired := vm.DesiredState
	switch action {
	case "start", "reboot":
		desired = api.VMRunning
	case "stop":
		desired = api.VMStopped
	}
	if desired != vm.DesiredState {
		if vm, err = c.store.UpdateVM(ctx, name, func(v *api.VM) error { v.DesiredState = desired; return nil }); err != nil {
			return api.VM{}, err
		}
	}
	c.log.Info("vm action", "vm", name, "host", host.Name, "action", action)
	actx, cancel := context.WithTimeout(ctx, agentCallTimeout+time.Duration(req.TimeoutSeconds)*time.Second)
	defer cancel()
	ag := c.agent(host)
	var rep hostapi.VMReport
	if action == "stop" {
		rep, err = ag.Stop(actx, vm.ID, hostapi.StopVM{Force: req.Force, TimeoutSeconds: req.TimeoutSeconds})
	} else {
		rep, err = ag.Action(actx, vm.ID, action)
	}
	if err != nil {
		return api.VM{}, fmt.Errorf("%s vm %q on host %s: %w", action, name, host.Name, err)
	}
	return c.applyReport(ctx, name, rep)
}

// DeleteVM removes a VM from its host (QEMU, disk, state) and then its
// record. If the host fails, the record stays in state error with the
// reason, so nothing is forgotten while something may remain on the host.
func (c *Service) DeleteVM(ctx context.Context, name string) error {
	unlock, err := c.lockVM(name, "delete")
	if err != nil {
		return err
	}
	defer unlock()
	vm, err := c.vmByName(ctx, name)
	if err != nil {
		return err
	}
	if err := checkLock(ctx, vm); err != nil {
		return err
	}
	if vm.Host != "" {
		host, err := c.hostOf(ctx, vm)
		if err != nil {
			return err
		}
		if _, err := c.store.UpdateVM(ctx, name, func(v *api.VM) error { v.State = api.VMDeleting; return nil }); err != nil {
			return err
		}
		actx, cancel := context.WithTimeout(ctx, agentCallTimeout)
		defer cancel()
		// Not found there is done: a delete a killed controller began.
		if err := c.agent(host).DeleteVM(actx, vm.ID); err != nil && !errors.Is(err, errs.ErrNotFound) {
			_, _ = c.store.UpdateVM(context.WithoutCancel(ctx), name, func(v *api.VM) error {
				v.State, v.StateReason = api.VMError, "delete failed: "+err.Error()
				return nil
			})
			return fmt.Errorf("delete vm %q on host %s: %w", name, host.Name, err)
		}
	}
	// The record goes before the ports: a crash between the two leaves
	// ports without a VM, which only hold addresses (freed by
	// releaseOrphanPorts at the next start), never a VM whose addresses
	// someone else was given.
	if err := c.store.DeleteVM(ctx, name); err != nil {
		return err
	}
	c.log.Info("vm deleted", "vm", name, "host", vm.Host)
	return c.releasePorts(ctx, vm.ID)
}

// resumeDeletes finishes the deletes a previous controller began (VMs
// recorded in state deleting): the record must not outlive the VM, nor
// stay deleting with nothing behind it. A host that does not answer is
// asked again until it does.
func (c *Service) resumeDeletes(ctx context.Context) {
	vms, err := c.store.VMs(ctx, store.VMFilter{})
	if err != nil {
		c.log.Error("resume deletes", "err", err)
		return
	}
	for _, vm := range vms {
		if vm.State != api.VMDeleting {
			continue
		}
		go func(name string) {
			for {
				err := c.DeleteVM(ctx, name)
				if err == nil || errors.Is(err, errs.ErrNotFound) {
					c.log.Info("interrupted delete finished", "vm", name)
					return
				}
				c.log.Warn("interrupted delete: retrying", "vm", name, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(recoveryRetry):
				}
			}
		}(vm.Name)
	}
}

// UpdateVM changes what req gives of a VM's record: its display name,
// its description and its access addresses (stored in canonical form;
// "" clears one). It changes nothing on the VM's host (an access
// address is recorded, not configured), so it takes no VM lock and goes
// on beside a running operation; a VM that does not exist is a
// not-found error, as every VM lookup's. A locked VM's metadata is not
// changed for a member (lock.go); the rest is, as in Nova.
func (c *Service) UpdateVM(ctx context.Context, name string, req api.UpdateVMRequest) (api.VM, error) {
	if err := req.Validate(); err != nil {
		return api.VM{}, errs.Invalid("%v", err)
	}
	if req.Empty() {
		return c.vmByName(ctx, name) // nothing to change
	}
	vm, err := c.store.UpdateVM(ctx, name, func(v *api.VM) error {
		if req.Metadata != nil { // locked as Nova's metadata calls; the rest is not
			if err := checkLock(ctx, *v); err != nil {
				return err
			}
		}
		req.Apply(v)
		return nil
	})
	if err != nil {
		return api.VM{}, err
	}
	c.log.Info("vm updated", "vm", name)
	return vm, nil
}

// VMs lists the VMs, on one host or of one project when the filter says.
func (c *Service) VMs(ctx context.Context, f store.VMFilter) ([]api.VM, error) {
	return c.store.VMs(ctx, f)
}

// VM returns one VM, or a not-found error that says how to list them.
func (c *Service) VM(ctx context.Context, name string) (api.VM, error) { return c.vmByName(ctx, name) }

// Console opens a VM's serial console log on its host's agent, from byte
// offset on, following it when follow is set; the caller closes it.
func (c *Service) Console(ctx context.Context, name string, offset int64, follow bool) (io.ReadCloser, error) {
	vm, err := c.vmByName(ctx, name)
	if err != nil {
		return nil, err
	}
	host, err := c.hostOf(ctx, vm)
	if err != nil {
		return nil, err
	}
	return c.agent(host).Console(ctx, vm.ID, offset, follow)
}

// HostOf returns the up host a VM is on, or a conflict saying why its
// host cannot be asked now.
func (c *Service) HostOf(ctx context.Context, vm api.VM) (api.Host, error) { return c.hostOf(ctx, vm) }

// agentSpec is what an agent is asked to create for a VM: by a create, a
// rebuild, and a migration's destination. Its base is the one the VM
// recorded, never just what the image's name holds now (checkBase).
func (c *Service) agentSpec(ctx context.Context, vm api.VM, im api.Image, start bool) (hostapi.CreateVM, error) {
	if err := checkBase(vm, im); err != nil {
		return hostapi.CreateVM{}, err
	}
	nics, err := c.nics(ctx, vm)
	if err != nil {
		return hostapi.CreateVM{}, err
	}
	return hostapi.CreateVM{
		ID: vm.ID, Name: vm.Name, VCPUs: vm.Flavor.VCPUs, MemoryMiB: vm.Flavor.MemoryMiB, DiskMiB: vm.Flavor.DiskMiB,
		MaxVCPUs: vm.MaxVCPUs, MaxMemoryMiB: vm.MaxMemoryMiB, BootMemoryMiB: vm.BootMemoryMiB,
		Pool: vm.Pool, Image: im, BaseSHA256: vm.ImageSHA256, Cmdline: vm.Cmdline, Start: start,
		// Every copy of the VM (a rebuild, a migration's destination)
		// keeps its panic policy, its ports, its user-data and its key.
		OnPanic: vm.OnPanic, NICs: nics, UserData: vm.UserData, PublicKeys: publicKeys(vm),
	}, nil
}

// publicKeys are the keys a VM's seed gives its guest: its key pair's.
func publicKeys(vm api.VM) []string {
	if vm.PublicKey == "" {
		return nil
	}
	return []string{vm.PublicKey}
}
