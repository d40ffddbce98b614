package fake_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/fake"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/guestlog"
)

// A guest panic follows the VM's policy as the QEMU driver's does, and
// is recorded first: pause holds the guest (crashed, process kept, until
// a reboot), restart boots it again, none leaves it to its own panic=.
func TestPanicPolicies(t *testing.T) {
	for _, tt := range []struct {
		name, policy, cmdline string
		state                 driver.State
		bootsAgain            bool
	}{
		{"pause", api.OnPanicPause, "console=ttyS0", driver.StateCrashed, false},
		{"restart", api.OnPanicRestart, "console=ttyS0", driver.StateRunning, true},
		{"default is restart", "", "console=ttyS0", driver.StateRunning, true},
		{"none, guest reboots itself", api.OnPanicNone, "console=ttyS0 panic=-1", driver.StateRunning, true},
		{"none, guest hangs", api.OnPanicNone, "console=ttyS0 panic=0", driver.StateRunning, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake.Faults{}
			dir := t.TempDir()
			d := newFake(t, dir, f)
			defer func() { d.Close() }()
			s := spec()
			s.OnPanic, s.Cmdline = tt.policy, tt.cmdline
			if err := d.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
			if err := d.Start(ctx, vmID); err != nil {
				t.Fatal(err)
			}
			pid := status(t, d).PID
			waitBeat(t, d, 0)
			f.Panic(vmID, "")
			st := status(t, d) // the driver looks: the panic fires
			at := consoleLen(t, d)
			if st.State != tt.state || st.PID != pid || st.LastPanic == nil || st.LastPanic.Count != 1 ||
				st.LastPanic.Reason != "guest panicked (pvpanic)" {
				t.Fatalf("after the panic: %s pid %d last panic %+v; want %s in pid %d, one pvpanic panic", st.State, st.PID, st.LastPanic, tt.state, pid)
			}
			if held := st.State == driver.StateCrashed; held != (st.Reason != "") {
				t.Errorf("reason %q with state %s; want one exactly while held", st.Reason, st.State)
			}
			if !strings.Contains(console(t, d), "Kernel panic - not syncing: guest panicked (pvpanic)") {
				t.Error("no panic on the console")
			}
			if tt.bootsAgain {
				waitBeat(t, d, int64(at))
			} else {
				time.Sleep(150 * time.Millisecond)
				if n := consoleLen(t, d); n != at {
					t.Errorf("a guest halted at its panic printed %d more bytes", n-at)
				}
			}
			if tt.policy != api.OnPanicPause {
				return
			}
			// Held across an agent restart, then released by a reboot.
			d.Close()
			d = newFake(t, dir, f)
			sts, err := d.Recover(ctx)
			if err != nil || len(sts) != 1 || sts[0].State != driver.StateCrashed || sts[0].PID != pid || sts[0].LastPanic == nil {
				t.Fatalf("Recover = %+v, %v; want the guest still held in pid %d", sts, err, pid)
			}
			if err := d.Reboot(ctx, vmID); err != nil {
				t.Fatal(err)
			}
			waitBeat(t, d, int64(at))
			if st := status(t, d); st.State != driver.StateRunning || st.PID != pid || st.Reason != "" || st.LastPanic.Count != 1 {
				t.Errorf("after the reboot: %+v; want running in pid %d, the panic kept", st, pid)
			}
		})
	}
}

// A panic knob waits for the guest to run; Panic panics a running guest
// at once; the count goes on.
func TestPanicNow(t *testing.T) {
	f := &fake.Faults{}
	d := newFake(t, t.TempDir(), f)
	defer d.Close()
	create(t, d)
	if err := d.Panic(ctx, vmID, "Fatal exception"); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("panic of a stopped guest: %v; want ErrConflict", err)
	}
	f.Panic(vmID, "sysrq triggered crash")
	if st := status(t, d); st.LastPanic != nil {
		t.Fatalf("a stopped guest panicked: %+v", st.LastPanic)
	}
	if err := d.Start(ctx, vmID); err != nil {
		t.Fatal(err)
	}
	if st := status(t, d); st.LastPanic == nil || st.LastPanic.Reason != "sysrq triggered crash" {
		t.Fatalf("the knob's panic once the guest ran: %+v", st.LastPanic)
	}
	for range 2 {
		if err := d.Panic(ctx, vmID, "Fatal exception"); err != nil {
			t.Fatal(err)
		}
	}
	if st := status(t, d); st.State != driver.StateRunning || st.LastPanic == nil || st.LastPanic.Count != 3 || st.LastPanic.Reason != "Fatal exception" {
		t.Errorf("after three panics: %s, %+v; want running (restart), count 3", st.State, st.LastPanic)
	}
}

func status(t *testing.T, d *fake.Driver) driver.Status {
	t.Helper()
	st, err := d.Status(ctx, vmID)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func console(t *testing.T, d *fake.Driver) string {
	t.Helper()
	rc, err := d.Console(ctx, vmID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// waitBeat waits for a heartbeat after offset.
func waitBeat(t *testing.T, d *fake.Driver, offset int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rc, err := d.Console(ctx, vmID, offset)
		if err != nil {
			t.Fatal(err)
		}
		_, found := guestlog.Last(rc)
		rc.Close()
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat after byte %d within 5s", offset)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
