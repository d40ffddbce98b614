package qemu

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
)

var _ driver.Resizer = (*Driver)(nil)

// resizeWait bounds the wait for the guest to take or release memory, or
// to let a vCPU go.
const resizeWait = 30 * time.Second

// Resize implements driver.Resizer. Online, the steps that depend on the
// guest come first — memory (virtio-mem requested-size, then its size
// following), then vCPU unplug — and the ones QEMU does alone last: vCPU
// plug (device_add) and disk growth (block_resize). So a guest that does
// not cooperate is found out before anything it cannot undo has changed,
// and what was changed is put back. Each step is persisted as it lands, so
// the state file always says what the VM has.
func (d *Driver) Resize(ctx context.Context, id string, to driver.Size) (driver.Resized, error) {
	v, err := d.get(id)
	if err != nil {
		return driver.Resized{}, err
	}
	v.mu.Lock()
	d.refresh(v)
	if v.resizing {
		v.mu.Unlock()
		return driver.Resized{}, errs.Conflict("vm %s is being resized already; wait for that to finish", id)
	}
	cur := v.st.Launch.Spec
	pid := v.st.PID
	want, err := driver.PlanResize(cur, pid != 0, d.Capabilities().CPUUnplug, to)
	if err != nil {
		v.mu.Unlock()
		return driver.Resized{Spec: cur, Online: pid != 0}, err
	}
	if pid == 0 {
		defer v.mu.Unlock()
		return d.resizeStopped(ctx, v, want)
	}
	v.resizing = true
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.resizing = false
		v.mu.Unlock()
	}()
	on := &online{d: d, v: v, pid: pid, cur: cur}
	r, err := on.resize(ctx, want)
	if err != nil {
		on.rollback()
	}
	v.mu.Lock()
	r.Spec = v.st.Launch.Spec
	v.mu.Unlock()
	if err == nil {
		d.log.Info("vm resized online", "vm", cur.Name, "id", id, "vcpus", r.Spec.VCPUs, "memory_mib", r.Spec.MemoryMiB, "notes", len(r.Notes))
	}
	return r, err
}

// resizeStopped changes a stopped VM's definition (v.mu held): the disk
// grows now, the rest takes effect at the next start.
func (d *Driver) resizeStopped(ctx context.Context, v *vm, want driver.VMSpec) (driver.Resized, error) {
	cur := v.st.Launch.Spec
	if want.Disk != nil && want.Disk.SizeMiB != cur.Disk.SizeMiB {
		if err := d.growImage(ctx, want.Disk); err != nil {
			return driver.Resized{Spec: cur}, fmt.Errorf("vm %s: %w", cur.ID, err)
		}
	}
	v.st.Launch.Spec = want
	if err := writeState(v.dir, v.st); err != nil {
		return driver.Resized{Spec: cur}, fmt.Errorf("vm %s: record the new size: %w", cur.ID, err)
	}
	d.log.Info("stopped vm resized; takes effect at its next start", "vm", cur.Name, "id", cur.ID,
		"vcpus", want.VCPUs, "memory_mib", want.MemoryMiB)
	return driver.Resized{Spec: want}, nil
}

// growImage grows a qcow2 image to disk.SizeMiB; the guest's filesystem
// is the guest's business.
func (d *Driver) growImage(ctx context.Context, disk *driver.Disk) error {
	out, err := exec.CommandContext(ctx, d.cfg.QEMUImg, "resize", "-q", "-f", "qcow2", disk.Path, strconv.Itoa(disk.SizeMiB)+"M").CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img resize %s: %v: %s", disk.Path, err, bytes.TrimSpace(out))
	}
	return nil
}

// online is one online resize of a running VM.
type online struct {
	d    *Driver
	v    *vm
	pid  int // the QEMU being resized; another one means the VM restarted
	cur  driver.VMSpec
	undo []func(context.Context)
}

func (o *online) resize(ctx context.Context, want driver.VMSpec) (driver.Resized, error) {
	r := driver.Resized{Online: true}
	if want.MemoryMiB != o.cur.MemoryMiB {
		got, err := o.memory(ctx, want.MemoryMiB)
		if err != nil {
			return r, err
		}
		if note := driver.MemoryNote(o.cur.MemoryMiB, want.MemoryMiB, got); note != "" {
			r.Notes = append(r.Notes, note)
		}
	}
	if want.VCPUs != o.cur.VCPUs {
		if err := o.vcpus(ctx, want.VCPUs); err != nil {
			return r, err
		}
	}
	if want.Disk != nil && want.Disk.SizeMiB != o.cur.Disk.SizeMiB {
		err := o.run(ctx, "block_resize", map[string]any{"node-name": "disk0", "size": int64(want.Disk.SizeMiB) << 20}, nil)
		if err != nil {
			return r, fmt.Errorf("grow the disk: %w", err)
		}
		o.commit(func(s *driver.VMSpec) { s.Disk.SizeMiB = want.Disk.SizeMiB })
	}
	return r, nil
}

// run runs a QMP command on the QEMU being resized, taking v.mu for the
// call only.
func (o *online) run(ctx context.Context, cmd string, args, result any) error {
	o.v.mu.Lock()
	defer o.v.mu.Unlock()
	if o.v.st.PID != o.pid {
		return errs.Conflict("vm %s stopped during the resize", o.cur.ID)
	}
	return o.d.qmpRun(ctx, o.v, cmd, args, result)
}

// commit records a step that landed, in memory and in the state file.
func (o *online) commit(f func(*driver.VMSpec)) {
	o.v.mu.Lock()
	defer o.v.mu.Unlock()
	if o.v.st.PID != o.pid {
		return
	}
	f(&o.v.st.Launch.Spec)
	if err := writeState(o.v.dir, o.v.st); err != nil {
		o.d.log.Error("record a resize step", "vm", o.cur.Name, "err", err)
	}
}

// rollback undoes the steps that landed, newest first, on a fresh context:
// the request's may be what ended.
func (o *online) rollback() {
	ctx, cancel := context.WithTimeout(context.Background(), resizeWait+10*time.Second)
	defer cancel()
	for i := len(o.undo) - 1; i >= 0; i-- {
		o.undo[i](ctx)
	}
}

// wait polls check every 100 ms until it reports done, an error, or
// resizeWait passes; it returns whether done.
func wait(ctx context.Context, check func() (bool, error)) (bool, error) {
	deadline := time.Now().Add(resizeWait)
	for {
		done, err := check()
		if done || err != nil {
			return done, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

const vmemPath = "/machine/peripheral/" + vmemID

// plugged is how much memory the virtio-mem device has plugged, in MiB.
func (o *online) plugged(ctx context.Context) (int, error) {
	var size int64
	err := o.run(ctx, "qom-get", map[string]string{"path": vmemPath, "property": "size"}, &size)
	return int(size >> 20), err
}

func (o *online) request(ctx context.Context, mib int) error {
	return o.run(ctx, "qom-set", map[string]any{"path": vmemPath, "property": "requested-size", "value": int64(mib) << 20}, nil)
}

// memory asks the guest to take or release memory through the virtio-mem
// device and waits for its plugged size to follow. It returns the memory
// the VM has then. A shrink stops where the guest stops releasing; the
// device's request is then set to what is plugged, so the VM holds still
// at the size reported. A guest that takes none of a growth (no virtio-mem
// driver, not booted yet) gets the old request back and an error.
func (o *online) memory(ctx context.Context, to int) (int, error) {
	boot, from := o.cur.BootMemory(), o.cur.MemoryMiB
	if err := o.request(ctx, to-boot); err != nil {
		return from, fmt.Errorf("set the memory request: %w", err)
	}
	start := time.Now()
	got := from
	_, err := wait(ctx, func() (bool, error) {
		p, err := o.plugged(ctx)
		got = boot + p
		return got == to, err
	})
	if err != nil {
		_ = o.request(context.Background(), from-boot)
		return from, fmt.Errorf("wait for the guest to resize memory: %w", err)
	}
	if to > from && got == from {
		_ = o.request(ctx, from-boot)
		return from, errs.NotSupported("vm %s: the guest took none of the memory within %s (does it run a virtio-mem driver?); memory stays %d MiB; stop the vm to resize it offline (godwit resize --allow-restart)",
			o.cur.ID, resizeWait, from)
	}
	if got != to {
		if err := o.request(ctx, got-boot); err != nil {
			o.d.log.Warn("settle the memory request at the plugged size", "vm", o.cur.Name, "err", err)
		}
	}
	o.d.log.Info("memory resized", "vm", o.cur.Name, "from_mib", from, "asked_mib", to, "mib", got, "took", time.Since(start).Round(time.Millisecond))
	o.commit(func(s *driver.VMSpec) { s.MemoryMiB, s.BootMemoryMiB = got, boot })
	o.undo = append(o.undo, func(ctx context.Context) {
		if o.request(ctx, from-boot) == nil {
			_, _ = wait(ctx, func() (bool, error) { p, err := o.plugged(ctx); return boot+p == from, err })
		}
		if p, err := o.plugged(ctx); err == nil {
			o.commit(func(s *driver.VMSpec) { s.MemoryMiB, s.BootMemoryMiB = boot+p, boot })
		}
	})
	return got, nil
}

// hotCPU is one entry of query-hotpluggable-cpus.
type hotCPU struct {
	Type    string         `json:"type"`
	Props   map[string]int `json:"props"`
	QOMPath string         `json:"qom-path"` // set when the vCPU is present
}

// cpuSlots returns the VM's possible vCPUs in topology order, so the
// i-th is the same slot on every host: plugging lowest first keeps the
// present vCPUs those a plain -smp N start has.
func (o *online) cpuSlots(ctx context.Context) ([]hotCPU, error) {
	var cpus []hotCPU
	if err := o.run(ctx, "query-hotpluggable-cpus", nil, &cpus); err != nil {
		return nil, err
	}
	key := func(c hotCPU) []int {
		var k []int
		for _, p := range []string{"socket-id", "die-id", "cluster-id", "core-id", "thread-id"} {
			k = append(k, c.Props[p])
		}
		return k
	}
	slices.SortFunc(cpus, func(a, b hotCPU) int { return slices.Compare(key(a), key(b)) })
	return cpus, nil
}

func present(cpus []hotCPU) int {
	n := 0
	for _, c := range cpus {
		if c.QOMPath != "" {
			n++
		}
	}
	return n
}

// vcpus plugs vCPUs (device_add, lowest free slot first) or unplugs them
// (device_del, highest first, waiting for the guest to let each go).
func (o *online) vcpus(ctx context.Context, to int) error {
	cpus, err := o.cpuSlots(ctx)
	if err != nil {
		return fmt.Errorf("list the vcpus: %w", err)
	}
	from := present(cpus)
	for i := 0; i < len(cpus) && present(cpus) < to; i++ {
		c := &cpus[i]
		if c.QOMPath != "" {
			continue
		}
		id := "vcpu" + strconv.Itoa(i)
		args := map[string]any{"driver": c.Type, "id": id}
		for k, v := range c.Props {
			args[k] = v
		}
		if err := o.run(ctx, "device_add", args, nil); err != nil {
			return fmt.Errorf("plug vcpu %d: %w", i, err)
		}
		c.QOMPath = "/machine/peripheral/" + id
		o.commit(func(s *driver.VMSpec) { s.VCPUs = present(cpus) })
		if o.d.Capabilities().CPUUnplug {
			o.undo = append(o.undo, func(ctx context.Context) { _ = o.unplugCPU(ctx, i, c.QOMPath) })
		}
	}
	for i := len(cpus) - 1; i > 0 && present(cpus) > to; i-- {
		c := &cpus[i]
		if c.QOMPath == "" {
			continue
		}
		if err := o.unplugCPU(ctx, i, c.QOMPath); err != nil {
			return err
		}
		c.QOMPath = ""
	}
	o.d.log.Info("vcpus resized", "vm", o.cur.Name, "from", from, "vcpus", present(cpus))
	return nil
}

// unplugCPU asks the guest to let vCPU slot i go and waits until QEMU has
// removed it.
func (o *online) unplugCPU(ctx context.Context, i int, path string) error {
	if err := o.run(ctx, "device_del", map[string]string{"id": path}, nil); err != nil {
		return fmt.Errorf("unplug vcpu %d: %w", i, err)
	}
	gone, err := wait(ctx, func() (bool, error) {
		cpus, err := o.cpuSlots(ctx)
		if err != nil {
			return false, err
		}
		o.commit(func(s *driver.VMSpec) { s.VCPUs = present(cpus) })
		return cpus[i].QOMPath == "", nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("wait for vcpu %d to go: %w", i, err)
	case !gone:
		return errs.NotSupported("vm %s: the guest did not release vcpu %d within %s (it may still); stop the vm to remove vcpus (godwit resize --allow-restart)",
			o.cur.ID, i, resizeWait)
	}
	return nil
}
