// Package drivertest is the conformance suite every hypervisor driver
// passes: the same subtests run against the fake driver and real QEMU.
package drivertest

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
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
	idA       = "6f1c2a8e-1111-4a6b-9c1d-00000000000a"
	idB       = "6f1c2a8e-2222-4a6b-9c1d-00000000000b"
	idUnknown = "6f1c2a8e-9999-4a6b-9c1d-000000000999"
)

// Run runs the conformance suite. It is sequential and shares booted VMs
// between checks, so a real-QEMU run stays short: vm-a (64 MiB disk) is
// booted once and carried through console, restart and reboot checks;
// vm-b (no disk) is defined before the restart and booted once later.
func Run(t *testing.T, h Harness) {
	s := &suite{t: t, h: h, dir: t.TempDir()}
	s.d = h.New(t, s.dir)
	t.Cleanup(s.cleanup)
	defer func() { s.t = t }()
	kernel, initrd, cmdline := h.Guest(t)
	diskDir := t.TempDir()
	a := driver.VMSpec{ID: idA, Name: "a", VCPUs: 1, MemoryMiB: 192, Kernel: kernel, Initrd: initrd, Cmdline: cmdline,
		Disk: &driver.Disk{Path: filepath.Join(diskDir, "a.qcow2"), SizeMiB: 64}}
	b := driver.VMSpec{ID: idB, Name: "b", VCPUs: 1, MemoryMiB: 128, Kernel: kernel, Initrd: initrd, Cmdline: cmdline}

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
		s.wantList(idA)
		if st.Spec.MemoryMiB != 192 || st.Name != "a" || st.Spec.Disk == nil || st.Spec.Disk.Path != a.Disk.Path {
			t.Errorf("status reports %+v; want the spec it was given", st)
		}
		bad := driver.VMSpec{ID: idUnknown, Name: "bad", MemoryMiB: 128} // no vcpus
		if err := s.d.Create(ctx, bad); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("create without vcpus: %v; want ErrInvalid", err)
		}
		s.wantList(idA)
	})

	var pid int
	t.Run("StartBootsAndHeartbeats", func(t *testing.T) {
		s.t = t
		s.must(s.d.Start(ctx, idA))
		st := s.status(idA)
		if st.State != driver.StateRunning || st.PID <= 0 || st.StartedAt.IsZero() {
			t.Fatalf("after start: %+v", st)
		}
		pid = st.PID
		s.must(s.d.Start(ctx, idA))
		s.must(s.d.Create(ctx, a))
		if again := s.status(idA); again.PID != pid || again.State != driver.StateRunning {
			t.Errorf("start and create of a running vm changed it: %s pid %d → %s pid %d", st.State, pid, again.State, again.PID)
		}
		hb := s.waitHeartbeat(idA, func(hb Heartbeat) bool { return hb.Counter >= 2 })
		if hb.DiskMiB != 64 || hb.CPUs != 1 {
			t.Errorf("guest sees %d cpus and a %d MiB disk; want 1 and 64", hb.CPUs, hb.DiskMiB)
		}
	})

	t.Run("ConsoleOffsets", func(t *testing.T) {
		s.t = t
		all := s.console(idA, 0)
		half := int64(len(all) / 2)
		suffix := s.console(idA, half)
		// The guest keeps printing, so the suffix may have grown since.
		if len(suffix) < len(all)-int(half) || suffix[:len(all)-int(half)] != all[half:] {
			t.Errorf("console from offset %d is not the suffix of the whole log", half)
		}
		if rest := s.console(idA, 1<<40); rest != "" {
			t.Errorf("console past the end = %q; want empty", rest)
		}
	})

	t.Run("RecoverAfterRestart", func(t *testing.T) {
		s.t = t
		s.must(s.d.Create(ctx, b)) // a stopped vm must survive the restart too
		before := s.heartbeat(idA)
		startedAt := s.status(idA).StartedAt
		s.restart()
		sts, err := s.d.Recover(ctx)
		s.must(err)
		slices.SortFunc(sts, func(x, y driver.Status) int { return strings.Compare(x.ID, y.ID) })
		if len(sts) != 2 || sts[0].ID != idA || sts[1].ID != idB {
			t.Fatalf("Recover = %+v; want exactly vm-a and vm-b", sts)
		}
		if st := sts[0]; st.State != driver.StateRunning || st.PID != pid || !st.StartedAt.Equal(startedAt) {
			t.Errorf("Recover reports vm-a %s pid %d started %s; want running, pid %d, started %s",
				st.State, st.PID, st.StartedAt, pid, startedAt)
		}
		if st := sts[1]; st.State != driver.StateStopped || st.PID != 0 {
			t.Errorf("Recover reports vm-b %s pid %d; want stopped, no pid", st.State, st.PID)
		}
		s.wantList(idA, idB)
		// The guest kept running while the driver was away: its counter
		// carries on instead of restarting.
		s.waitHeartbeat(idA, func(hb Heartbeat) bool { return hb.Counter > before.Counter })
	})

	t.Run("Reboot", func(t *testing.T) {
		s.t = t
		top := s.heartbeat(idA)
		s.must(s.d.Reboot(ctx, idA))
		s.waitHeartbeat(idA, func(hb Heartbeat) bool { return hb.Counter < top.Counter })
		if st := s.status(idA); st.State != driver.StateRunning || st.PID != pid {
			t.Errorf("after reboot: %s pid %d; want running, pid %d (a reset, not a new process)", st.State, st.PID, pid)
		}
	})

	t.Run("StopGracefulThenStartAgain", func(t *testing.T) {
		s.t = t
		s.must(s.d.Stop(ctx, idA, driver.StopOptions{Timeout: 60 * time.Second}))
		if st := s.status(idA); st.State != driver.StateStopped || st.PID != 0 || !st.StartedAt.IsZero() {
			t.Fatalf("after stop: %s pid %d started %s; want stopped, no pid, no start time", st.State, st.PID, st.StartedAt)
		}
		s.must(s.d.Stop(ctx, idA, driver.StopOptions{}))
		if err := s.d.Reboot(ctx, idA); !errors.Is(err, errs.ErrConflict) {
			t.Errorf("reboot of a stopped vm: %v; want ErrConflict", err)
		}
		// Only what the new boot prints counts: the log keeps the old one.
		from := int64(len(s.console(idA, 0)))
		s.must(s.d.Start(ctx, idA))
		st := s.status(idA)
		if st.State != driver.StateRunning || st.PID <= 0 || st.PID == pid {
			t.Fatalf("after restart: %s pid %d (old %d); want running with a new pid", st.State, st.PID, pid)
		}
		s.waitHeartbeatFrom(idA, from, func(hb Heartbeat) bool { return hb.Counter >= 1 })
		s.must(s.d.Stop(ctx, idA, driver.StopOptions{Force: true}))
		if st := s.status(idA); st.State != driver.StateStopped || st.PID != 0 {
			t.Fatalf("after force stop: %s pid %d; want stopped, no pid", st.State, st.PID)
		}
	})

	t.Run("NoDisk", func(t *testing.T) {
		s.t = t
		from := int64(len(s.console(idB, 0)))
		s.must(s.d.Start(ctx, idB))
		hb := s.waitHeartbeatFrom(idB, from, func(hb Heartbeat) bool { return hb.Counter >= 1 })
		if hb.DiskMiB != 0 {
			t.Errorf("diskless guest sees a %d MiB disk", hb.DiskMiB)
		}
		s.must(s.d.Delete(ctx, idB)) // while running
		if _, err := s.d.Status(ctx, idB); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("status after delete: %v; want ErrNotFound", err)
		}
		if _, err := s.d.Console(ctx, idB, 0); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("console after delete: %v; want ErrNotFound", err)
		}
		s.wantList(idA)
	})

	t.Run("DeleteRemovesEverything", func(t *testing.T) {
		s.t = t
		s.must(s.d.Delete(ctx, idA))
		if _, err := os.Stat(a.Disk.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("disk still there after delete: %v", err)
		}
		for _, p := range s.leftovers(idA, idB) {
			t.Errorf("left behind in the state directory after delete: %s", p)
		}
		s.wantList()
		if _, err := s.d.Status(ctx, idA); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("status after delete: %v; want ErrNotFound", err)
		}
		if err := s.d.Delete(ctx, idA); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("delete twice: %v; want ErrNotFound", err)
		}
	})

	t.Run("UnknownVM", func(t *testing.T) {
		s.t = t
		_, statusErr := s.d.Status(ctx, idUnknown)
		_, consoleErr := s.d.Console(ctx, idUnknown, 0)
		for _, c := range []struct {
			op  string
			err error
		}{
			{"start", s.d.Start(ctx, idUnknown)},
			{"stop", s.d.Stop(ctx, idUnknown, driver.StopOptions{})},
			{"reboot", s.d.Reboot(ctx, idUnknown)},
			{"delete", s.d.Delete(ctx, idUnknown)},
			{"status", statusErr},
			{"console", consoleErr},
		} {
			if !errors.Is(c.err, errs.ErrNotFound) {
				t.Errorf("%s of an unknown vm: %v; want ErrNotFound", c.op, c.err)
			}
		}
	})
}

// restart simulates an agent restart: the driver is closed (its VMs keep
// running) and a new one opened over the same state directory.
func (s *suite) restart() {
	s.t.Helper()
	s.must(s.d.Close())
	s.d = nil // closed: cleanup must not use it if New fails
	s.d = s.h.New(s.t, s.dir)
}

// cleanup removes every VM the suite made, whatever state a failed check
// left them in. It goes through a fresh driver that recovers them from the
// state directory, so it also finds VMs the current driver lost track of,
// and no guest process outlives the test.
func (s *suite) cleanup() {
	t := s.t
	if s.d != nil {
		if err := s.d.Close(); err != nil {
			t.Logf("cleanup: close: %v", err)
		}
	}
	d := s.h.New(t, s.dir)
	defer d.Close()
	sts, err := d.Recover(ctx)
	if err != nil {
		t.Errorf("cleanup: recover: %v; guests may be left running", err)
	}
	for _, st := range sts {
		if err := d.Delete(ctx, st.ID); err != nil {
			t.Errorf("cleanup: delete vm %s: %v", st.ID, err)
		}
	}
}

// leftovers lists the paths under the state directory that name one of
// ids: whatever a driver keeps per VM must go with the VM.
func (s *suite) leftovers(ids ...string) []string {
	s.t.Helper()
	var found []string
	err := filepath.WalkDir(s.dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, id := range ids {
			if strings.Contains(p, id) {
				found = append(found, p)
			}
		}
		return nil
	})
	s.must(err)
	return found
}

// wantList checks that List reports exactly the VMs ids (given sorted),
// in any order.
func (s *suite) wantList(ids ...string) {
	s.t.Helper()
	var got []string
	for _, st := range s.list() {
		got = append(got, st.ID)
	}
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		s.t.Errorf("List = %v; want exactly %v", got, ids)
	}
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

func (s *suite) heartbeat(id string) Heartbeat {
	s.t.Helper()
	rc, err := s.d.Console(ctx, id, 0)
	s.must(err)
	defer rc.Close()
	hb, _ := LastHeartbeat(rc)
	return hb
}

// waitHeartbeat waits until the last heartbeat on the console satisfies ok.
func (s *suite) waitHeartbeat(id string, ok func(Heartbeat) bool) Heartbeat {
	s.t.Helper()
	return s.waitHeartbeatFrom(id, 0, ok)
}

// waitHeartbeatFrom is waitHeartbeat reading the console from offset on.
func (s *suite) waitHeartbeatFrom(id string, offset int64, ok func(Heartbeat) bool) Heartbeat {
	s.t.Helper()
	deadline := time.Now().Add(s.h.BootTimeout)
	for {
		rc, err := s.d.Console(ctx, id, offset)
		s.must(err)
		hb, found := LastHeartbeat(rc)
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
