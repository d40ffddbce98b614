package drivertest

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/guestlog"
)

// RunResize is the resize suite: one VM (1 of 2 vCPUs, 256 of 1024 MiB
// booted with 256, a 1 GiB shared disk) is resized online and checked
// from inside — the guest's heartbeat reports its CPUs, memory and disk —
// with the same process throughout; then refused resizes change nothing;
// the sizes survive a driver restart; the resized VM live-migrates with
// its hot-plugged devices and can be resized again where it lands; and,
// stopped, it is resized offline and boots at the new size.
func RunResize(t *testing.T, h Harness) {
	s := &suite{t: t, h: h, dir: t.TempDir()}
	s.d = h.New(t, s.dir)
	t.Cleanup(s.cleanup)
	defer func() { s.t = t }()
	dstDir := t.TempDir() // the migration's destination; outlives its subtest
	rz, ok := s.d.(driver.Resizer)
	caps := s.d.Capabilities()
	if !ok || !caps.CPUHotplug || !caps.MemoryHotplug || !caps.DiskResize {
		t.Skip("driver cannot resize online")
	}
	kernel, initrd, cmdline := h.Guest(t)
	spec := driver.VMSpec{ID: idA, Name: "a", VCPUs: 1, MaxVCPUs: 2, MemoryMiB: 256, MaxMemoryMiB: 1024,
		Kernel: kernel, Initrd: initrd, Cmdline: cmdline,
		Disk: &driver.Disk{Path: filepath.Join(t.TempDir(), "a.qcow2"), SizeMiB: 1024, Shared: true}}
	s.must(s.d.Create(ctx, spec))
	s.must(s.d.Start(ctx, idA))
	pid := s.status(idA).PID
	base := s.waitHeartbeat(idA, func(hb Heartbeat) bool { return hb.Counter >= 3 })
	// The guest's memory is what its kernel counts (MemTotal), less than
	// the VM's by what the kernel keeps for itself; hot-plugged memory
	// adds to it exactly.
	memDelta := func(hb Heartbeat) int { return hb.MemMiB - base.MemMiB }

	// resize resizes a running VM and checks the reply and that its
	// process is the same; it returns the reply and how long it took.
	resize := func(t *testing.T, to driver.Size) (driver.Resized, time.Duration) {
		t.Helper()
		start := time.Now()
		r, err := rz.Resize(ctx, idA, to)
		took := time.Since(start)
		s.must(err)
		if !r.Online {
			t.Errorf("resize of a running vm reports offline")
		}
		if st := s.status(idA); st.PID != pid || st.State != driver.StateRunning {
			t.Fatalf("after an online resize: %s pid %d; want running, pid %d", st.State, st.PID, pid)
		}
		if got := s.status(idA).Spec; got.VCPUs != r.Spec.VCPUs || got.MemoryMiB != r.Spec.MemoryMiB || got.Disk.SizeMiB != r.Spec.Disk.SizeMiB {
			t.Errorf("status spec %+v differs from the reply's %+v", got, r.Spec)
		}
		return r, took
	}

	t.Run("VCPUsUpOnline", func(t *testing.T) {
		s.t = t
		r, took := resize(t, driver.Size{VCPUs: 2})
		if r.Spec.VCPUs != 2 {
			t.Fatalf("vcpus after resize = %d; want 2", r.Spec.VCPUs)
		}
		hb := s.waitHeartbeat(idA, func(hb Heartbeat) bool { return hb.CPUs == 2 })
		t.Logf("vcpus 1 → 2: resize returned in %s; guest reports %d cpus", took.Round(time.Millisecond), hb.CPUs)
	})

	t.Run("MemoryUpThenDown", func(t *testing.T) {
		s.t = t
		r, took := resize(t, driver.Size{MemoryMiB: 512})
		if r.Spec.MemoryMiB != 512 || len(r.Notes) != 0 {
			t.Fatalf("memory after growing to 512 MiB: %d MiB, notes %q", r.Spec.MemoryMiB, r.Notes)
		}
		hb := s.waitHeartbeat(idA, func(hb Heartbeat) bool { return memDelta(hb) >= 256 })
		t.Logf("memory 256 → 512 MiB: resize returned in %s; guest MemTotal %d → %d MiB", took.Round(time.Millisecond), base.MemMiB, hb.MemMiB)
		if d := memDelta(hb); d > 256+2 {
			t.Errorf("guest gained %d MiB; want 256", d)
		}

		r, took = resize(t, driver.Size{MemoryMiB: 320})
		got := r.Spec.MemoryMiB
		switch {
		case got < 320 || got > 512:
			t.Fatalf("memory after shrinking to 320 MiB: %d MiB; want 320..512", got)
		case got != 320 && (len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "released only")):
			t.Errorf("memory shrank to %d MiB of 320 asked without a note saying so: %q", got, r.Notes)
		case got == 320 && len(r.Notes) != 0:
			t.Errorf("memory shrank as asked, yet notes %q", r.Notes)
		}
		hb = s.waitHeartbeat(idA, func(hb Heartbeat) bool { return memDelta(hb) <= got-256 })
		t.Logf("memory 512 → 320 MiB: resize returned in %s with %d MiB (%d MiB released); guest MemTotal %d MiB",
			took.Round(time.Millisecond), got, 512-got, hb.MemMiB)
		if d := memDelta(hb); d < got-256-2 {
			t.Errorf("guest has %d MiB above its boot memory; the driver reports %d", d, got-256)
		}
	})

	t.Run("DiskGrowsOnline", func(t *testing.T) {
		s.t = t
		r, took := resize(t, driver.Size{DiskMiB: 2048})
		if r.Spec.Disk.SizeMiB != 2048 {
			t.Fatalf("disk after resize = %d MiB; want 2048", r.Spec.Disk.SizeMiB)
		}
		s.waitHeartbeat(idA, func(hb Heartbeat) bool { return hb.DiskMiB == 2048 })
		t.Logf("disk 1 → 2 GiB: resize returned in %s", took.Round(time.Millisecond))
	})

	t.Run("RefusedResizesChangeNothing", func(t *testing.T) {
		s.t = t
		before := s.status(idA).Spec
		cases := []struct {
			name string
			to   driver.Size
			want error
		}{
			{"vcpus above the ceiling", driver.Size{VCPUs: 3}, errs.ErrNotSupported},
			{"memory above the ceiling", driver.Size{MemoryMiB: 2048}, errs.ErrNotSupported},
			{"memory above the ceiling with vcpus in range", driver.Size{VCPUs: 2, MemoryMiB: 4096, DiskMiB: 4096}, errs.ErrNotSupported},
			{"memory below the boot memory", driver.Size{MemoryMiB: 128}, errs.ErrNotSupported},
			{"a ceiling while running", driver.Size{MaxVCPUs: 4}, errs.ErrNotSupported},
			{"disk shrink", driver.Size{DiskMiB: 1024}, errs.ErrInvalid},
			{"negative size", driver.Size{VCPUs: -1}, errs.ErrInvalid},
		}
		if !caps.CPUUnplug {
			cases = append(cases, struct {
				name string
				to   driver.Size
				want error
			}{"vcpu unplug on a driver that cannot", driver.Size{VCPUs: 1}, errs.ErrNotSupported})
		}
		for _, c := range cases {
			_, err := rz.Resize(ctx, idA, c.to)
			if !errors.Is(err, c.want) {
				t.Errorf("%s: %v; want %v", c.name, err, c.want)
			} else if !strings.Contains(err.Error(), "vm ") {
				t.Errorf("%s: error %q does not name the vm", c.name, err)
			}
			if after := s.status(idA); !sameSizes(after.Spec, before) || after.PID != pid {
				t.Errorf("%s changed the vm: %+v pid %d → %+v pid %d", c.name, before, pid, after.Spec, after.PID)
			}
		}
		if _, err := rz.Resize(ctx, idUnknown, driver.Size{VCPUs: 1}); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("resize of an unknown vm: %v; want ErrNotFound", err)
		}
	})

	if caps.CPUUnplug {
		t.Run("VCPUsDownOnline", func(t *testing.T) {
			s.t = t
			if r, _ := resize(t, driver.Size{VCPUs: 1}); r.Spec.VCPUs != 1 {
				t.Fatalf("vcpus after unplug = %d; want 1", r.Spec.VCPUs)
			}
			s.waitHeartbeat(idA, func(hb Heartbeat) bool { return hb.CPUs == 1 })
			resize(t, driver.Size{VCPUs: 2})
			s.waitHeartbeat(idA, func(hb Heartbeat) bool { return hb.CPUs == 2 })
		})
	}

	t.Run("SizesSurviveRestart", func(t *testing.T) {
		s.t = t
		before := s.status(idA).Spec
		s.restart()
		_, err := s.d.Recover(ctx)
		s.must(err)
		rz = s.d.(driver.Resizer)
		st := s.status(idA)
		if !sameSizes(st.Spec, before) || st.PID != pid {
			t.Errorf("after a restart: %+v pid %d; want %+v pid %d", st.Spec, st.PID, before, pid)
		}
	})

	t.Run("MigratesWithHotpluggedDevices", func(t *testing.T) {
		s.t = t
		srcM, ok1 := s.d.(driver.LiveMigrator)
		dst := h.New(t, dstDir)
		dstM, ok2 := dst.(driver.LiveMigrator)
		if !ok1 || !ok2 || !caps.LiveMigration {
			dst.Close()
			t.Skip("driver cannot live-migrate")
		}
		if !caps.HotpluggedLive {
			dst.Close()
			t.Skip("driver cannot live-migrate a VM with hot-plugged memory here (" + caps.Accelerator + "; see scheduler.RefuseLive)")
		}
		// The destination is defined with the sizes the VM has now, as
		// the controller does.
		cur := s.status(idA).Spec
		before := s.heartbeat(idA)
		opts := driver.MigrateOptions{MaxDowntime: 300 * time.Millisecond, BandwidthBytesPerS: 125 * api.MB} // capped: uncapped TCG migrations oops guests
		to, err := dstM.PrepareIncoming(ctx, cur, "127.0.0.1", opts)
		if err != nil {
			dst.Close()
			t.Fatal(err)
		}
		s.must(srcM.MigrateOut(ctx, idA, to, opts))
		mst := waitMigration(t, srcM, driver.MigrationCompleted)
		s.must(dstM.SwitchOver(ctx, idA, 60*time.Second))
		s.must(srcM.Release(ctx, idA))
		t.Logf("migrated %d MiB in %s, downtime %s", mst.MemoryTransferred>>20, mst.TotalTime, mst.Downtime)
		// From here the suite's VM lives on dst (and its cleanup with it).
		s.must(s.d.Close())
		s.d, s.dir, rz = dst, dstDir, dst.(driver.Resizer)
		hb := s.waitHeartbeat(idA, func(hb Heartbeat) bool { return hb.Counter > before.Counter+5 })
		if first := firstHeartbeat(s, idA); first.Counter <= before.Counter/2 {
			t.Errorf("destination's first heartbeat %+v; the source had reached %d: the guest restarted?", first, before.Counter)
		}
		if hb.CPUs != before.CPUs || hb.MemMiB != before.MemMiB || hb.DiskMiB != before.DiskMiB || hb.DiskBad != 0 {
			t.Errorf("after the migration the guest reports %+v; before it %+v", hb, before)
		}
		s.noOops(idA)
		st := s.status(idA)
		pid = st.PID
		if !sameSizes(st.Spec, cur) {
			t.Errorf("destination reports %+v; want %+v", st.Spec, cur)
		}
		// The hot-plugged devices are really there: memory grows again.
		r, _ := resize(t, driver.Size{MemoryMiB: cur.MemoryMiB + 64})
		if r.Spec.MemoryMiB != cur.MemoryMiB+64 {
			t.Errorf("memory on the destination after growing by 64 MiB: %d; want %d", r.Spec.MemoryMiB, cur.MemoryMiB+64)
		}
		s.waitHeartbeat(idA, func(hb Heartbeat) bool { return hb.MemMiB >= before.MemMiB+64 })
	})

	t.Run("StoppedVMResizedForItsNextStart", func(t *testing.T) {
		s.t = t
		s.must(s.d.Stop(ctx, idA, driver.StopOptions{Force: true}))
		if _, err := rz.Resize(ctx, idA, driver.Size{DiskMiB: 1024}); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("disk shrink of a stopped vm: %v; want ErrInvalid", err)
		}
		r, err := rz.Resize(ctx, idA, driver.Size{VCPUs: 3, MemoryMiB: 384, DiskMiB: 3072, MaxVCPUs: 4})
		s.must(err)
		want := driver.VMSpec{VCPUs: 3, MaxVCPUs: 4, MemoryMiB: 384, MaxMemoryMiB: 1024, Disk: &driver.Disk{SizeMiB: 3072}}
		if r.Online || !sameSizes(r.Spec, want) || r.Spec.BootMemory() != 384 {
			t.Errorf("offline resize: online %v, %+v; want offline, %+v booting with 384 MiB", r.Online, r.Spec, want)
		}
		if st := s.status(idA); st.State != driver.StateStopped || !sameSizes(st.Spec, want) {
			t.Errorf("after an offline resize: %s %+v; want stopped, %+v", st.State, st.Spec, want)
		}
		from := int64(len(s.console(idA, 0)))
		s.must(s.d.Start(ctx, idA))
		hb := s.waitHeartbeatFrom(idA, from, func(hb Heartbeat) bool { return hb.CPUs == 3 })
		// A fresh boot with 128 MiB more boot memory than the first.
		if hb.DiskMiB != 3072 || hb.MemMiB < base.MemMiB+128-16 || hb.MemMiB > base.MemMiB+128+16 {
			t.Errorf("booted after an offline resize, the guest reports %+v; want 3 cpus, a 3072 MiB disk, about %d MiB", hb, base.MemMiB+128)
		}
	})
}

// sameSizes compares the sizes of two specs (vCPUs, memory, ceilings,
// disk).
func sameSizes(a, b driver.VMSpec) bool {
	disk := func(s driver.VMSpec) int {
		if s.Disk == nil {
			return 0
		}
		return s.Disk.SizeMiB
	}
	return a.VCPUs == b.VCPUs && a.CPUCeiling() == b.CPUCeiling() && a.MemoryMiB == b.MemoryMiB &&
		a.MemoryCeiling() == b.MemoryCeiling() && disk(a) == disk(b)
}

// noOops fails the test when the guest's console shows a kernel oops.
func (s *suite) noOops(id string) {
	s.t.Helper()
	con := s.console(id, 0)
	if h := guestlog.Check([]byte(con)); h.Trouble != "" {
		s.t.Errorf("guest console shows %q: %s", h.Trouble, con[h.TroubleAt:min(len(con), h.TroubleAt+400)])
	}
}
