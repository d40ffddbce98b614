package fake_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/fake"
	"github.com/godwit/godwit/internal/errs"
)

var ctx = context.Background()

const vmID = "0f7d3c2b-0000-4000-8000-000000000001"

func spec() driver.VMSpec { return driver.VMSpec{ID: vmID, Name: "x", VCPUs: 1, MemoryMiB: 128} }

// Each faultable method fails exactly the next n times with the injected
// error, and a failed call changes nothing.
func TestFailNextCalls(t *testing.T) {
	boom := errs.Unavailable("hypervisor unavailable")
	for _, tt := range []struct {
		method string
		setup  func(*testing.T, *fake.Driver) // brings the VM to where the call makes sense
		call   func(*fake.Driver) error
		after  driver.State // the VM's state after the failed calls; "" for none
	}{
		{"Create", func(*testing.T, *fake.Driver) {}, func(d *fake.Driver) error { return d.Create(ctx, spec()) }, ""},
		{"Start", create, func(d *fake.Driver) error { return d.Start(ctx, vmID) }, driver.StateStopped},
		{"Stop", start, func(d *fake.Driver) error { return d.Stop(ctx, vmID, driver.StopOptions{}) }, driver.StateRunning},
		{"Reboot", start, func(d *fake.Driver) error { return d.Reboot(ctx, vmID) }, driver.StateRunning},
		{"Delete", create, func(d *fake.Driver) error { return d.Delete(ctx, vmID) }, driver.StateStopped},
		{"Status", create, func(d *fake.Driver) error { _, err := d.Status(ctx, vmID); return err }, driver.StateStopped},
		{"List", create, func(d *fake.Driver) error { _, err := d.List(ctx); return err }, driver.StateStopped},
		{"Console", create, func(d *fake.Driver) error {
			rc, err := d.Console(ctx, vmID, 0)
			if err == nil {
				rc.Close()
			}
			return err
		}, driver.StateStopped},
		{"Recover", create, func(d *fake.Driver) error { _, err := d.Recover(ctx); return err }, driver.StateStopped},
		{"Resize", start, func(d *fake.Driver) error { _, err := d.Resize(ctx, vmID, driver.Size{VCPUs: 1}); return err }, driver.StateRunning},
	} {
		t.Run(tt.method, func(t *testing.T) {
			f := &fake.Faults{}
			d := newFake(t, t.TempDir(), f)
			t.Cleanup(func() { d.Close() })
			tt.setup(t, d)
			f.Fail(tt.method, 2, boom)
			for i := range 2 {
				if err := tt.call(d); !errors.Is(err, errs.ErrUnavailable) {
					t.Fatalf("call %d: %v; want the injected failure", i+1, err)
				}
			}
			l, err := d.List(ctx) // a List fault was used up above
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.after == "" && len(l) != 0:
				t.Errorf("failed %s left %+v behind", tt.method, l)
			case tt.after != "" && (len(l) != 1 || l[0].State != tt.after):
				t.Errorf("after a failed %s: %+v; want the vm %s", tt.method, l, tt.after)
			}
			if err := tt.call(d); err != nil {
				t.Errorf("third call: %v; the fault was for two", err)
			}
		})
	}
}

func create(t *testing.T, d *fake.Driver) {
	t.Helper()
	if err := d.Create(ctx, spec()); err != nil {
		t.Fatal(err)
	}
}

func start(t *testing.T, d *fake.Driver) {
	t.Helper()
	create(t, d)
	if err := d.Start(ctx, vmID); err != nil {
		t.Fatal(err)
	}
}

func TestFailZeroClears(t *testing.T) {
	f := &fake.Faults{}
	d := newFake(t, t.TempDir(), f)
	defer d.Close()
	f.Fail("Create", 3, errs.Unavailable("no"))
	f.Fail("Create", 0, nil)
	if err := d.Create(ctx, spec()); err != nil {
		t.Fatalf("create after clearing its fault: %v", err)
	}
}

func TestUnknownMethodPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a fault on a method that takes none was accepted")
		}
	}()
	(&fake.Faults{}).Fail("start", 1, errs.Unavailable("typo"))
}

// A delay holds the call up, a deadline cuts it short, and a call cut
// short uses no failure up.
func TestDelay(t *testing.T) {
	f := &fake.Faults{}
	d := newFake(t, t.TempDir(), f)
	defer d.Close()
	start(t, d)
	f.Delay("Stop", time.Second)
	f.Fail("Stop", 1, errs.Unavailable("qmp gone"))
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := d.Stop(cctx, vmID, driver.StopOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("delayed stop with a short deadline: %v; want deadline exceeded", err)
	}
	f.Delay("Stop", 20*time.Millisecond)
	begin := time.Now()
	if err := d.Stop(ctx, vmID, driver.StopOptions{}); !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("stop: %v; want the failure the cut-short call left", err)
	}
	if took := time.Since(begin); took < 20*time.Millisecond {
		t.Errorf("delayed stop took %s; want at least 20ms", took)
	}
	f.Delay("Stop", 0)
	if err := d.Stop(ctx, vmID, driver.StopOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A crashed VM stays crashed across an agent restart, its console stops,
// and Start boots it again with a new PID.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	d := newFake(t, dir, nil)
	disk := filepath.Join(t.TempDir(), "x.qcow2")
	s := spec()
	s.Disk = &driver.Disk{Path: disk, SizeMiB: 64}
	if err := d.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := d.Crash(ctx, vmID); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("crash of a stopped vm: %v; want ErrConflict", err)
	}
	if err := d.Crash(ctx, "nope"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("crash of an unknown vm: %v; want ErrNotFound", err)
	}
	if err := d.Start(ctx, vmID); err != nil {
		t.Fatal(err)
	}
	first, _ := d.Status(ctx, vmID)
	time.Sleep(100 * time.Millisecond) // a few heartbeats at 20 Hz
	if err := d.Crash(ctx, vmID); err != nil {
		t.Fatal(err)
	}
	size := consoleLen(t, d)
	if size == 0 {
		t.Fatal("the guest printed nothing before the crash")
	}
	d.Close()

	d = newFake(t, dir, nil)
	defer d.Close()
	sts, err := d.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 1 || sts[0].State != driver.StateCrashed || sts[0].PID != 0 {
		t.Fatalf("Recover after a crash = %+v; want the vm crashed, no pid", sts)
	}
	time.Sleep(100 * time.Millisecond)
	if n := consoleLen(t, d); n != size {
		t.Errorf("a crashed guest's console grew from %d to %d bytes", size, n)
	}
	if _, err := os.Stat(disk); err != nil {
		t.Errorf("a crash lost the disk: %v", err)
	}
	if err := d.Start(ctx, vmID); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.Status(ctx, vmID); st.State != driver.StateRunning || st.PID <= first.PID {
		t.Errorf("start after a crash: %s pid %d; want running with a pid above %d", st.State, st.PID, first.PID)
	}
}

func consoleLen(t *testing.T, d *fake.Driver) int {
	t.Helper()
	rc, err := d.Console(ctx, vmID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// PIDs never repeat, even across driver restarts, and a damaged counter
// is reported rather than restarted from zero.
func TestPIDs(t *testing.T) {
	dir := t.TempDir()
	seen := map[int]bool{}
	for range 2 {
		d := newFake(t, dir, nil)
		if _, err := d.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		create(t, d)
		for range 3 {
			if err := d.Start(ctx, vmID); err != nil {
				t.Fatal(err)
			}
			st, _ := d.Status(ctx, vmID)
			if seen[st.PID] || st.PID < 4<<20 {
				t.Fatalf("pid %d reused or in the range of real pids (seen %v)", st.PID, seen)
			}
			seen[st.PID] = true
			if err := d.Stop(ctx, vmID, driver.StopOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
		}
		d.Close()
	}
	if err := os.WriteFile(filepath.Join(dir, "next-pid"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newFake(t, dir, nil)
	defer d.Close()
	if _, err := d.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, vmID); err == nil {
		t.Error("start with a damaged pid counter succeeded")
	}
}

// moveUntilSent migrates vmID from a running src to dst until the source
// has sent everything (its guest paused there), leaving SwitchOver
// to the caller.
func moveUntilSent(t *testing.T, src, dst *fake.Driver) {
	t.Helper()
	start(t, src)
	to, err := dst.PrepareIncoming(ctx, spec(), "127.0.0.1", driver.MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.MigrateOut(ctx, vmID, to, driver.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := src.MigrationStatus(ctx, vmID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == driver.MigrationCompleted {
			return
		}
		if st.Status != driver.MigrationActive || time.Now().After(deadline) {
			t.Fatalf("migration %s: %s", st.Status, st.Error)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SwitchOver fails before the guest resumes (Fail) or after
// (FailAfter), and the destination says which (Status.Incoming): a guest
// that never ran there resumes on the source, one that ran may not.
func TestSwitchOverFaults(t *testing.T) {
	boom := errors.New("load of migration failed")
	incoming := func(d *fake.Driver) (driver.Status, error) { return d.Status(ctx, vmID) }

	t.Run("before the resume", func(t *testing.T) {
		f := &fake.Faults{}
		src, dst := newFake(t, t.TempDir(), nil), newFake(t, t.TempDir(), f)
		t.Cleanup(func() { src.Close(); dst.Close() })
		moveUntilSent(t, src, dst)
		f.Fail("SwitchOver", 1, boom)
		if err := dst.SwitchOver(ctx, vmID, 5*time.Second); !errors.Is(err, boom) {
			t.Fatalf("switch-over: %v; want the injected failure", err)
		}
		if st, _ := incoming(dst); st.Incoming != driver.IncomingWaiting || st.State != driver.StatePaused {
			t.Errorf("destination %s, incoming %q; want paused, waiting", st.State, st.Incoming)
		}
		if err := dst.Release(ctx, vmID); err != nil {
			t.Fatal(err)
		}
		before, _ := incoming(src)
		if err := src.Resume(ctx, vmID); err != nil {
			t.Fatalf("resume on the source: %v", err)
		}
		if st, _ := incoming(src); st.State != driver.StateRunning || st.PID != before.PID {
			t.Errorf("source after resume: %s pid %d; want running with pid %d", st.State, st.PID, before.PID)
		}
	})
	t.Run("after the resume", func(t *testing.T) {
		f, dstDir := &fake.Faults{}, t.TempDir()
		src, dst := newFake(t, t.TempDir(), nil), newFake(t, dstDir, f)
		t.Cleanup(func() { src.Close(); dst.Close() })
		moveUntilSent(t, src, dst)
		f.FailAfter("SwitchOver", 1, boom)
		if err := dst.SwitchOver(ctx, vmID, 5*time.Second); !errors.Is(err, boom) {
			t.Fatalf("switch-over: %v; want the injected failure", err)
		}
		if st, _ := incoming(dst); st.Incoming != driver.IncomingNone || st.State != driver.StateRunning {
			t.Errorf("destination %s, incoming %q; want running, none", st.State, st.Incoming)
		}
		// A restarted agent knows it too.
		dst.Close()
		again := newFake(t, dstDir, nil)
		t.Cleanup(func() { again.Close() })
		if _, err := again.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		if st, _ := incoming(again); st.Incoming != driver.IncomingNone {
			t.Errorf("after a restart the destination reports incoming %q; want none", st.Incoming)
		}
	})
}
