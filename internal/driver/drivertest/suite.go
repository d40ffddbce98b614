// Package drivertest is the conformance suite every hypervisor driver
// passes: the same subtests run against the fake driver and real QEMU.
package drivertest

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/guestlog"
)

// Harness adapts a driver to the suite.
type Harness struct {
	// New returns a driver over stateDir. It is called again with the same
	// stateDir to simulate an agent restart (the old driver is closed
	// first; its VMs keep running).
	New func(t *testing.T, stateDir string) driver.Driver
	// Guest returns the boot files (the fake ignores them).
	Guest func(t *testing.T) (kernel, initrd, cmdline string)
	// BootTimeout bounds the wait for a heartbeat.
	BootTimeout time.Duration
}

type suite struct {
	t   *testing.T
	h   Harness
	d   driver.Driver
	dir string
}

var ctx = context.Background()

// VM ids are UUIDs, as the controller makes them (QEMU requires it).
const (
	idA = "6f1c2a8e-1111-4a6b-9c1d-00000000000a"
	idB = "6f1c2a8e-2222-4a6b-9c1d-00000000000b"
)

// Run runs the conformance suite. It is sequential and shares booted VMs
// between checks, so a real-QEMU run stays short.
func Run(t *testing.T, h Harness) {
	s := &suite{t: t, h: h, dir: t.TempDir()}
	s.d = h.New(t, s.dir)
	t.Cleanup(func() {
		for _, id := range []string{idA, idB} {
			_ = s.d.Delete(ctx, id)
		}
		s.d.Close()
	})
	defer func() { s.t = t }()
	kernel, initrd, cmdline := h.Guest(t)
	diskDir := t.TempDir()
	a := driver.VMSpec{ID: idA, Name: "a", VCPUs: 1, MemoryMiB: 192, Kernel: kernel, Initrd: initrd, Cmdline: cmdline,
		Disk: &driver.Disk{Path: filepath.Join(diskDir, "a.qcow2"), SizeMiB: 64}}

	t.Run("CreateIsIdempotentAndDoesNotStart", func(t *testing.T) {
		s.t = t
		s.must(s.d.Create(ctx, a))
		s.must(s.d.Create(ctx, a))
		st := s.status(idA)
		if st.State != driver.StateStopped || st.PID != 0 {
			t.Fatalf("after create: %s pid %d; want stopped, no pid", st.State, st.PID)
		}
		if _, err := os.Stat(a.Disk.Path); err != nil {
			t.Errorf("create made no disk: %v", err)
		}
		if l := s.list(); len(l) != 1 || l[0].ID != idA || l[0].Spec.MemoryMiB != 192 {
			t.Errorf("List = %+v; want vm-a", l)
		}
	})

	var pid int
	var last guestlog.Heartbeat
	t.Run("StartBootsAndHeartbeats", func(t *testing.T) {
		s.t = t
		s.must(s.d.Start(ctx, idA))
		st := s.status(idA)
		if st.State != driver.StateRunning || st.PID <= 0 || st.StartedAt.IsZero() {
			t.Fatalf("after start: %+v", st)
		}
		pid = st.PID
		s.must(s.d.Start(ctx, idA))
		if again := s.status(idA); again.PID != pid {
			t.Errorf("start of a running vm changed its pid %d → %d", pid, again.PID)
		}
		last = s.waitHeartbeat(idA, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 2 })
		if last.DiskMiB != 64 {
			t.Errorf("guest sees a %d MiB disk; want 64", last.DiskMiB)
		}
	})

	t.Run("ConsoleOffsets", func(t *testing.T) {
		s.t = t
		all := s.console(idA, 0)
		half := int64(len(all) / 2)
		suffix := s.console(idA, half)
		if len(suffix) < len(all)-int(half) || suffix[:len(all)-int(half)] != all[half:] {
			t.Errorf("console from offset %d is not the suffix of the whole log", half)
		}
		if rest := s.console(idA, 1<<40); rest != "" {
			t.Errorf("console past the end = %q; want empty", rest)
		}
	})

	t.Run("RecoverAfterRestart", func(t *testing.T) {
		s.t = t
		before := s.heartbeat(idA)
		s.must(s.d.Close())
		s.d = s.h.New(t, s.dir)
		sts, err := s.d.Recover(ctx)
		s.must(err)
		if len(sts) != 1 || sts[0].ID != idA || sts[0].State != driver.StateRunning || sts[0].PID != pid {
			t.Fatalf("Recover = %+v; want vm-a running with pid %d", sts, pid)
		}
		last = s.waitHeartbeat(idA, func(hb guestlog.Heartbeat) bool { return hb.Counter > before.Counter })
	})

	t.Run("Reboot", func(t *testing.T) {
		s.t = t
		top := s.heartbeat(idA)
		s.must(s.d.Reboot(ctx, idA))
		s.waitHeartbeat(idA, func(hb guestlog.Heartbeat) bool { return hb.Counter < top.Counter })
		if st := s.status(idA); st.PID != pid {
			t.Errorf("reboot changed the pid %d → %d; it resets the guest, not the process", pid, st.PID)
		}
	})

	t.Run("StopGracefulThenStartAgain", func(t *testing.T) {
		s.t = t
		s.must(s.d.Stop(ctx, idA, driver.StopOptions{Timeout: 60 * time.Second}))
		if st := s.status(idA); st.State != driver.StateStopped || st.PID != 0 {
			t.Fatalf("after stop: %s pid %d", st.State, st.PID)
		}
		s.must(s.d.Stop(ctx, idA, driver.StopOptions{}))
		// Only what the new boot prints counts: the log keeps the old one.
		from := int64(len(s.console(idA, 0)))
		s.must(s.d.Start(ctx, idA))
		st := s.status(idA)
		if st.State != driver.StateRunning || st.PID == 0 || st.PID == pid {
			t.Fatalf("after restart: %s pid %d (old %d); want running with a new pid", st.State, st.PID, pid)
		}
		s.waitHeartbeatFrom(idA, from, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 1 })
		s.must(s.d.Stop(ctx, idA, driver.StopOptions{Force: true}))
		if st := s.status(idA); st.State != driver.StateStopped {
			t.Fatalf("after force stop: %s", st.State)
		}
	})

	t.Run("NoDisk", func(t *testing.T) {
		s.t = t
		b := driver.VMSpec{ID: idB, Name: "b", VCPUs: 1, MemoryMiB: 128, Kernel: kernel, Initrd: initrd, Cmdline: cmdline}
		s.must(s.d.Create(ctx, b))
		s.must(s.d.Start(ctx, idB))
		hb := s.waitHeartbeat(idB, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 1 })
		if hb.DiskMiB != 0 {
			t.Errorf("diskless guest sees %d MiB disk", hb.DiskMiB)
		}
		s.must(s.d.Delete(ctx, idB)) // while running
		if _, err := s.d.Status(ctx, idB); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("status after delete: %v; want ErrNotFound", err)
		}
	})

	t.Run("DeleteRemovesEverything", func(t *testing.T) {
		s.t = t
		s.must(s.d.Delete(ctx, idA))
		if _, err := os.Stat(a.Disk.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("disk still there after delete: %v", err)
		}
		if l := s.list(); len(l) != 0 {
			t.Errorf("List after delete = %+v", l)
		}
		if err := s.d.Delete(ctx, idA); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("delete twice: %v; want ErrNotFound", err)
		}
	})

	t.Run("UnknownVM", func(t *testing.T) {
		s.t = t
		for name, err := range map[string]error{
			"start":  s.d.Start(ctx, "6f1c2a8e-9999-4a6b-9c1d-000000000999"),
			"stop":   s.d.Stop(ctx, "6f1c2a8e-9999-4a6b-9c1d-000000000999", driver.StopOptions{}),
			"reboot": s.d.Reboot(ctx, "6f1c2a8e-9999-4a6b-9c1d-000000000999"),
			"delete": s.d.Delete(ctx, "6f1c2a8e-9999-4a6b-9c1d-000000000999"),
		} {
			if !errors.Is(err, errs.ErrNotFound) {
				t.Errorf("%s of an unknown vm: %v; want ErrNotFound", name, err)
			}
		}
		if _, err := s.d.Console(ctx, "6f1c2a8e-9999-4a6b-9c1d-000000000999", 0); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("console of an unknown vm: %v; want ErrNotFound", err)
		}
	})
}

func (s *suite) must(err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
}

func (s *suite) status(id string) driver.Status {
	s.t.Helper()
	st, err := s.d.Status(ctx, id)
	s.must(err)
	return st
}

func (s *suite) list() []driver.Status {
	s.t.Helper()
	l, err := s.d.List(ctx)
	s.must(err)
	return l
}

func (s *suite) console(id string, offset int64) string {
	s.t.Helper()
	rc, err := s.d.Console(ctx, id, offset)
	s.must(err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	s.must(err)
	return string(b)
}

func (s *suite) heartbeat(id string) guestlog.Heartbeat {
	s.t.Helper()
	rc, err := s.d.Console(ctx, id, 0)
	s.must(err)
	defer rc.Close()
	hb, _ := guestlog.Last(rc)
	return hb
}

// waitHeartbeat waits until the last heartbeat on the console satisfies ok.
func (s *suite) waitHeartbeat(id string, ok func(guestlog.Heartbeat) bool) guestlog.Heartbeat {
	s.t.Helper()
	return s.waitHeartbeatFrom(id, 0, ok)
}

// waitHeartbeatFrom is waitHeartbeat reading the console from offset on.
func (s *suite) waitHeartbeatFrom(id string, offset int64, ok func(guestlog.Heartbeat) bool) guestlog.Heartbeat {
	s.t.Helper()
	deadline := time.Now().Add(s.h.BootTimeout)
	for {
		rc, err := s.d.Console(ctx, id, offset)
		s.must(err)
		hb, found := guestlog.Last(rc)
		rc.Close()
		if found && ok(hb) {
			return hb
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("vm %s: no matching heartbeat within %s (last: %+v, found %v)", id, s.h.BootTimeout, hb, found)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
