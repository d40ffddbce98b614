package fake

import (
	"context"
	"fmt"
	"os"

	"github.com/godwit/godwit/internal/driver"
)

var _ driver.Resizer = (*Driver)(nil)

// guestBaseMiB is the memory the fake guest's kernel and programs use
// besides its working set (dirty_mb=).
const guestBaseMiB = 64

// Resize implements driver.Resizer with the QEMU driver's rules (both
// check a request with driver.PlanResize). Online, vCPUs and disks change
// at once; memory shrinks only as far as the guest can release it: the
// guest fills its boot memory first, so it holds on to hot-plugged memory
// only when its working set (dirty_mb=) plus guestBaseMiB exceeds the boot
// memory. The console's heartbeats show the new sizes from then on.
func (d *Driver) Resize(ctx context.Context, id string, to driver.Size) (driver.Resized, error) {
	if err := d.cfg.Faults.hit(ctx, "Resize"); err != nil {
		return driver.Resized{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return driver.Resized{}, err
	}
	cur := v.st.Spec
	running := v.st.State == driver.StateRunning
	want, err := driver.PlanResize(cur, running, d.Capabilities().CPUUnplug, to)
	if err != nil {
		return driver.Resized{Spec: cur, Online: running}, err
	}
	r := driver.Resized{Online: running}
	if running && want.MemoryMiB < cur.MemoryMiB {
		set, _ := guestDirty(cur.Cmdline)
		held := max(0, int(set)>>20+guestBaseMiB-cur.BootMemory()) // hot-plugged memory in use
		held += held % driver.MemoryBlockMiB
		if floor := cur.BootMemory() + held; want.MemoryMiB < floor {
			want.MemoryMiB = min(floor, cur.MemoryMiB)
		}
		if note := driver.MemoryNote(cur.MemoryMiB, to.MemoryMiB, want.MemoryMiB); note != "" {
			r.Notes = append(r.Notes, note)
		}
	}
	if want.Disk != nil && want.Disk.SizeMiB != cur.Disk.SizeMiB {
		if err := os.Truncate(want.Disk.Path, int64(want.Disk.SizeMiB)<<20); err != nil {
			return driver.Resized{Spec: cur, Online: running}, fmt.Errorf("vm %s: grow the disk: %w", id, err)
		}
	}
	v.st.Spec = want
	if err := d.save(v.st); err != nil {
		v.st.Spec = cur
		return driver.Resized{Spec: cur, Online: running}, fmt.Errorf("vm %s: record the new size: %w", id, err)
	}
	if running {
		// The guest sees its new size: its heartbeat writer starts over
		// with it, carrying the counter on.
		v.kill()
		d.boot(v, lastCounter(d.consolePath(id)))
	}
	r.Spec = want
	return r, nil
}
