// Package scheduler chooses hosts: the filters a host must pass to take a
// VM (state, pool, capacity, and for a live move the same hypervisor,
// accelerator and CPU as the source, and the TCG gate), the weighing
// among those that pass (most free memory), and the bookkeeping of a
// plan's own claims. It is pure: it reads the hosts it is given, with
// their allocations, and never a store, so the service level and the
// intent level's plans choose the same way and tests need no cluster.
package scheduler

import (
	"fmt"
	"sort"
	"strings"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
)

// CPUAllocationRatio is how many vCPUs the scheduler places per host CPU.
// Memory and disk are never overcommitted.
const CPUAllocationRatio = 4

// Placement is what the scheduler needs to know of the VM to place.
type Placement struct {
	Flavor api.Flavor
	Pool   string
	// Live is set for a live migration's destination, which must run the
	// same hypervisor and accelerator as Source (a guest's CPU and
	// devices cannot change under it).
	Live   bool
	Source api.Host
	// AllowUnsafeTCG lets a live move leave or reach a TCG host on a QEMU
	// that loses guest writes (the cluster's --allow-unsafe-tcg-migration;
	// UnsafeTCG).
	AllowUnsafeTCG bool
	// HotpluggedMiB is the memory the VM has hot-plugged (virtio-mem):
	// under TCG it cannot move live at all (RefuseLive).
	HotpluggedMiB int
}

// Hotplugged is the memory a VM has hot-plugged beyond its boot memory.
func Hotplugged(vm api.VM) int {
	if vm.BootMemoryMiB == 0 {
		return 0
	}
	return max(vm.Flavor.MemoryMiB-vm.BootMemoryMiB, 0)
}

// filter rejects a host, saying why, or accepts it ("").
type filter func(h api.Host, p Placement) string

var filters = []filter{
	func(h api.Host, _ Placement) string {
		if h.State != api.HostUp {
			return "down"
		}
		return ""
	},
	func(h api.Host, _ Placement) string {
		if !h.Enabled {
			return "disabled"
		}
		return ""
	},
	func(h api.Host, p Placement) string {
		for _, pl := range h.Pools {
			if pl.Name == p.Pool {
				return ""
			}
		}
		return "no " + p.Pool + " pool"
	},
	func(h api.Host, p Placement) string {
		if !p.Live {
			return ""
		}
		if h.Hypervisor != p.Source.Hypervisor || h.Accelerator != p.Source.Accelerator {
			return fmt.Sprintf("runs %s/%s, the source %s/%s", h.Hypervisor, h.Accelerator, p.Source.Hypervisor, p.Source.Accelerator)
		}
		// Under KVM a VM sees the host's CPU: it may move live only to a
		// host with the same model and at least its features. (Under TCG
		// the CPU is emulated, the same on every host of one QEMU.)
		if h.Accelerator == "kvm" && (h.CPUModel != p.Source.CPUModel || !hasAll(h.CPUFlags, p.Source.CPUFlags)) {
			return fmt.Sprintf("CPU %q differs from the source's %q", h.CPUModel, p.Source.CPUModel)
		}
		if p.AllowUnsafeTCG {
			return ""
		}
		why := UnsafeTCG(h)
		if src := UnsafeTCG(p.Source); src != "" {
			why = "the source " + src
		}
		if why != "" {
			why += ", which loses guest writes in a live migration before QEMU " + driver.TCGMigrationSafeQEMU
		}
		return why
	},
	func(h api.Host, p Placement) string {
		if free := h.CPUs*CPUAllocationRatio - h.AllocatedCPUs; free < p.Flavor.VCPUs {
			return fmt.Sprintf("%d vCPUs free", max(free, 0))
		}
		return ""
	},
	func(h api.Host, p Placement) string {
		if free := h.MemoryMiB - h.AllocatedMemoryMiB; free < p.Flavor.MemoryMiB {
			return fmt.Sprintf("%d MiB memory free", max(free, 0))
		}
		return ""
	},
	func(h api.Host, p Placement) string {
		if p.Pool != api.PoolLocal {
			return ""
		}
		if free := h.DiskMiB - h.AllocatedDiskMiB; free < p.Flavor.DiskMiB {
			return fmt.Sprintf("%d MiB local disk free", max(free, 0))
		}
		return ""
	},
}

// Check returns why host h cannot take p, or "" when it can.
func Check(h api.Host, p Placement) string {
	for _, f := range filters {
		if why := f(h, p); why != "" {
			return why
		}
	}
	return ""
}

// pick chooses the host with the most free memory among those that pass
// every filter (spreading load), or explains why none does. hosts must
// carry their allocations.
func pick(hosts []api.Host, p Placement) (api.Host, error) {
	var ok []api.Host
	var why []string
	for _, h := range hosts {
		if reason := Check(h, p); reason != "" {
			why = append(why, h.Name+": "+reason)
			continue
		}
		ok = append(ok, h)
	}
	if len(ok) == 0 {
		if len(hosts) == 0 {
			return api.Host{}, errs.NoCapacity("no hosts are registered; start an agent (godwit agent) or a local cluster (godwit up)")
		}
		sort.Strings(why)
		return api.Host{}, errs.NoCapacity("no host can take %d vCPUs, %d MiB memory and %d MiB %s disk (%s); free capacity or choose a smaller flavor",
			p.Flavor.VCPUs, p.Flavor.MemoryMiB, p.Flavor.DiskMiB, p.Pool, strings.Join(why, "; "))
	}
	sort.Slice(ok, func(i, j int) bool {
		fi, fj := ok[i].MemoryMiB-ok[i].AllocatedMemoryMiB, ok[j].MemoryMiB-ok[j].AllocatedMemoryMiB
		if fi != fj {
			return fi > fj
		}
		return ok[i].Name < ok[j].Name
	})
	return ok[0], nil
}

// Claim counts a VM of flavor f in pool on host name among hosts: a plan's
// own claim, so that its next choice sees the capacity this one took.
func Claim(hosts []api.Host, name string, f api.Flavor, pool string) {
	for i := range hosts {
		if hosts[i].Name == name {
			hosts[i].AllocatedCPUs += f.VCPUs
			hosts[i].AllocatedMemoryMiB += f.MemoryMiB
			if pool == api.PoolLocal {
				hosts[i].AllocatedDiskMiB += f.DiskMiB
			}
		}
	}
}

// Without returns hosts but the one named.
func Without(hosts []api.Host, name string) []api.Host {
	var out []api.Host
	for _, h := range hosts {
		if h.Name != name {
			out = append(out, h)
		}
	}
	return out
}

// hasAll reports whether have contains every flag of want.
func hasAll(have, want []string) bool {
	set := make(map[string]bool, len(have))
	for _, f := range have {
		set[f] = true
	}
	for _, f := range want {
		if !set[f] {
			return false
		}
	}
	return true
}

// RoomFor says why host lacks room for vm to grow to want, or "".
func RoomFor(hosts []api.Host, host string, vm api.VM, want api.Flavor) string {
	for _, h := range hosts {
		if h.Name != host {
			continue
		}
		switch {
		case want.VCPUs > vm.Flavor.VCPUs && h.CPUs*CPUAllocationRatio-h.AllocatedCPUs < want.VCPUs-vm.Flavor.VCPUs:
			return fmt.Sprintf("%d vCPUs free", max(h.CPUs*CPUAllocationRatio-h.AllocatedCPUs, 0))
		case want.MemoryMiB > vm.Flavor.MemoryMiB && h.MemoryMiB-h.AllocatedMemoryMiB < want.MemoryMiB-vm.Flavor.MemoryMiB:
			return fmt.Sprintf("%d MiB memory free", max(h.MemoryMiB-h.AllocatedMemoryMiB, 0))
		case vm.Pool == api.PoolLocal && want.DiskMiB > vm.Flavor.DiskMiB && h.DiskMiB-h.AllocatedDiskMiB < want.DiskMiB-vm.Flavor.DiskMiB:
			return fmt.Sprintf("%d MiB local disk free", max(h.DiskMiB-h.AllocatedDiskMiB, 0))
		}
		return ""
	}
	return "host not found"
}
