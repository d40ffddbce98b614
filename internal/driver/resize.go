package driver

import (
	"context"
	"fmt"

	"github.com/godwit/godwit/internal/errs"
)

// Resizer is implemented by drivers that can change a VM's size in place
// (Capabilities.CPUHotplug, MemoryHotplug, DiskResize say which parts
// they can change online). A resize is never a move.
//
// A running VM is resized online or not at all: when a part cannot be done
// online (above a hotplug ceiling, below the boot memory, a vCPU unplug
// the driver or the guest refuses) Resize changes nothing and returns an
// error wrapping errs.ErrNotSupported that says what to do instead. A
// stopped (or crashed) VM has its definition changed for its next start:
// its disk grows, its ceilings may change, and its boot memory becomes
// its memory. A disk never shrinks (errs.ErrInvalid), in any state.
//
// Memory shrinks only as far as the guest releases it; Resized reports
// the size the VM has, with a note when it differs from the request.
type Resizer interface {
	Resize(ctx context.Context, id string, to Size) (Resized, error)
}

// Size is what a resize asks for. Zero fields keep their value.
type Size struct {
	VCPUs     int
	MemoryMiB int
	DiskMiB   int
	// Hotplug ceilings; they change only while the VM is stopped.
	MaxVCPUs     int
	MaxMemoryMiB int
}

// Resized is the outcome of a resize.
type Resized struct {
	Spec   VMSpec   // the definition now, with the sizes the VM has
	Online bool     // the VM ran throughout
	Notes  []string // where the outcome differs from the request, and why
}

// MemoryBlockMiB is the granularity of hot-plugged memory: virtio-mem
// plugs 2 MiB blocks, and the fake driver keeps to the same rule so that
// tests on it see the same errors.
const MemoryBlockMiB = 2

// CPUCeiling is the most vCPUs the VM can have online (MaxVCPUs with its
// zero default resolved; likewise the other size helpers).
func (s VMSpec) CPUCeiling() int { return max(s.MaxVCPUs, s.VCPUs) }

// MemoryCeiling is the most memory the VM can have online.
func (s VMSpec) MemoryCeiling() int { return max(s.MaxMemoryMiB, s.MemoryMiB) }

// BootMemory is the memory the VM boots with; the rest is hot-plugged.
func (s VMSpec) BootMemory() int {
	if s.BootMemoryMiB <= 0 || s.BootMemoryMiB > s.MemoryMiB {
		return s.MemoryMiB
	}
	return s.BootMemoryMiB
}

// HotplugMemory is the room for hot-plugged memory above the boot memory
// (the size of QEMU's virtio-mem device); 0 when the VM has none.
func (s VMSpec) HotplugMemory() int { return s.MemoryCeiling() - s.BootMemory() }

// CheckSizes refuses sizes no driver can run: ceilings below the sizes, a
// boot memory above the memory, hot-plug memory not in whole blocks.
func CheckSizes(s VMSpec) error {
	switch {
	case s.MaxVCPUs != 0 && s.MaxVCPUs < s.VCPUs:
		return errs.Invalid("vm %s: max vcpus %d is below vcpus %d", s.ID, s.MaxVCPUs, s.VCPUs)
	case s.MaxMemoryMiB != 0 && s.MaxMemoryMiB < s.MemoryMiB:
		return errs.Invalid("vm %s: max memory %d MiB is below memory %d MiB", s.ID, s.MaxMemoryMiB, s.MemoryMiB)
	case s.BootMemoryMiB < 0 || s.BootMemoryMiB > s.MemoryMiB:
		return errs.Invalid("vm %s: boot memory %d MiB must be between 0 and memory %d MiB", s.ID, s.BootMemoryMiB, s.MemoryMiB)
	case s.HotplugMemory()%MemoryBlockMiB != 0 || (s.MemoryMiB-s.BootMemory())%MemoryBlockMiB != 0:
		return errs.Invalid("vm %s: memory above the boot memory (%d MiB) must be a multiple of %d MiB, as must max memory",
			s.ID, s.BootMemory(), MemoryBlockMiB)
	}
	return nil
}

// PlanResize checks a resize of the VM defined by cur and returns the
// definition it asks for. running says whether the VM has a process, and
// cpuUnplug whether the driver can take vCPUs away online. The errors are
// those of Resizer: ErrInvalid for what no state allows, ErrNotSupported
// for what only a stopped VM allows. Both drivers use it, so a controller
// tested on the fake driver sees the QEMU driver's errors.
func PlanResize(cur VMSpec, running, cpuUnplug bool, to Size) (VMSpec, error) {
	id := cur.ID
	if to.VCPUs < 0 || to.MemoryMiB < 0 || to.DiskMiB < 0 || to.MaxVCPUs < 0 || to.MaxMemoryMiB < 0 {
		return cur, errs.Invalid("vm %s: sizes must not be negative", id)
	}
	want := cur
	if cur.Disk != nil {
		d := *cur.Disk
		want.Disk = &d
	}
	if to.DiskMiB != 0 {
		switch {
		case cur.Disk == nil:
			return cur, errs.Invalid("vm %s has no disk to resize", id)
		case to.DiskMiB < cur.Disk.SizeMiB:
			return cur, errs.Invalid("vm %s: a disk cannot shrink (%d MiB → %d MiB); disks only grow", id, cur.Disk.SizeMiB, to.DiskMiB)
		}
		want.Disk.SizeMiB = to.DiskMiB
	}
	if to.VCPUs != 0 {
		want.VCPUs = to.VCPUs
	}
	if to.MemoryMiB != 0 {
		want.MemoryMiB = to.MemoryMiB
	}
	if running {
		want.BootMemoryMiB = cur.BootMemory() // what this process booted with
		return want, checkOnline(cur, want, cpuUnplug, to)
	}
	// Stopped: the next start boots with the new memory; ceilings follow
	// the request, or rise to the new sizes.
	want.BootMemoryMiB = 0
	if to.MaxVCPUs != 0 {
		want.MaxVCPUs = to.MaxVCPUs
	} else if cur.MaxVCPUs != 0 {
		want.MaxVCPUs = max(cur.MaxVCPUs, want.VCPUs)
	}
	if to.MaxMemoryMiB != 0 {
		want.MaxMemoryMiB = to.MaxMemoryMiB
	} else if cur.MaxMemoryMiB != 0 {
		want.MaxMemoryMiB = max(cur.MaxMemoryMiB, want.MemoryMiB)
	}
	return want, CheckSizes(want)
}

// checkOnline refuses the parts of a resize a running VM cannot take.
func checkOnline(cur, want VMSpec, cpuUnplug bool, to Size) error {
	id := cur.ID
	restart := "stop the vm to resize it offline (godwit resize --allow-restart)"
	switch {
	case to.MaxVCPUs != 0 && to.MaxVCPUs != cur.CPUCeiling(),
		to.MaxMemoryMiB != 0 && to.MaxMemoryMiB != cur.MemoryCeiling():
		return errs.NotSupported("vm %s: hotplug ceilings change only while the vm is stopped; %s", id, restart)
	case want.VCPUs > cur.CPUCeiling():
		return errs.NotSupported("vm %s: %d vcpus is above its hotplug ceiling of %d; %s with a higher max vcpus",
			id, want.VCPUs, cur.CPUCeiling(), restart)
	case want.VCPUs < cur.VCPUs && !cpuUnplug:
		return errs.NotSupported("vm %s: this host cannot unplug vcpus online; %s", id, restart)
	case want.MemoryMiB > cur.MemoryCeiling():
		return errs.NotSupported("vm %s: %d MiB of memory is above its hotplug ceiling of %d MiB; %s with a higher max memory",
			id, want.MemoryMiB, cur.MemoryCeiling(), restart)
	case want.MemoryMiB < cur.BootMemory():
		return errs.NotSupported("vm %s: memory cannot shrink online below the %d MiB it booted with; %s",
			id, cur.BootMemory(), restart)
	case (want.MemoryMiB-cur.BootMemory())%MemoryBlockMiB != 0:
		return errs.Invalid("vm %s: memory must be the boot memory (%d MiB) plus a multiple of %d MiB",
			id, cur.BootMemory(), MemoryBlockMiB)
	}
	return nil
}

// MemoryNote explains a memory size that differs from the request: the
// guest released (or took) only part of it. "" when it got what it asked.
func MemoryNote(from, asked, got int) string {
	switch {
	case got == asked:
		return ""
	case asked < from:
		return fmt.Sprintf("memory is %d MiB, not the %d MiB asked for: the guest released only %d of %d MiB (memory in use cannot be unplugged); try again later, or stop the vm to shrink it",
			got, asked, from-got, from-asked)
	default:
		return fmt.Sprintf("memory is %d MiB, not the %d MiB asked for: the guest took only %d of %d MiB", got, asked, got-from, asked-from)
	}
}
