package qemu

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/qmp"
	"github.com/godwit/godwit/internal/testguest"
)

// A guest whose kernel panics (panic_after_s: sysrq 'c') is seen through
// QEMU's pvpanic device, not reported running: with on-panic pause QEMU
// holds it and Status says crashed with the reason until a reboot; with
// restart it boots again and the panic is counted; with none QEMU only
// reports it and the guest's own panic=-1 reboots it.
func TestGuestPanicQEMU(t *testing.T) {
	requireQEMU(t)
	g := testguest.ForTest(t)
	root := t.TempDir()
	killLeftovers(t, root)
	for _, policy := range []string{api.OnPanicPause, api.OnPanicRestart, api.OnPanicNone} {
		t.Run(policy, func(t *testing.T) {
			d, err := New(Config{StateDir: filepath.Join(root, policy), Accel: driver.AccelTCG, StopTimeout: 5 * time.Second,
				DirtySampleEvery: -1, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
			must(t, err)
			defer d.Close()
			spec := driver.VMSpec{ID: lifecycleID, Name: "panic-" + policy, VCPUs: 1, MemoryMiB: 128,
				Kernel: g.Kernel, Initrd: g.Initrd, Cmdline: g.Cmdline + " panic_after_s=5", OnPanic: policy}
			must(t, d.Create(ctx, spec))
			must(t, d.Start(ctx, lifecycleID))
			defer func() { must(t, d.Delete(ctx, lifecycleID)) }() // stops the QEMU
			pid := status(t, d).PID
			v, err := d.get(lifecycleID)
			must(t, err)
			v.mu.Lock()
			var events <-chan qmp.Event
			if v.mon != nil {
				events = v.mon.Events()
			}
			v.mu.Unlock()
			if events == nil {
				t.Fatal("no qmp monitor after start")
			}
			waitHB(t, d, 0, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 1 })

			ev := waitEvent(t, events, "GUEST_PANICKED", 90*time.Second)
			var data guestPanicked
			must(t, json.Unmarshal(ev.Data, &data))
			wantAction := map[string]string{api.OnPanicPause: "pause", api.OnPanicRestart: "pause", api.OnPanicNone: "run"}[policy]
			if data.Action != wantAction {
				t.Errorf("GUEST_PANICKED action %q; want %q (event %s)", data.Action, wantAction, ev.Data)
			}
			panicked := consoleSize(t, v)

			switch policy {
			case api.OnPanicPause:
				st := waitStatus(t, d, func(st driver.Status) bool { return st.State == driver.StateCrashed })
				if st.PID != pid || st.Reason != "guest panicked (pvpanic): sysrq triggered crash" || st.LastPanic == nil || st.LastPanic.Count != 1 {
					t.Errorf("held at its panic: %s pid %d reason %q last panic %+v; want crashed, pid %d, the kernel's reason, count 1",
						st.State, st.PID, st.Reason, st.LastPanic, pid)
				}
				if rs := runState(t, d, v); rs != "guest-panicked" {
					t.Errorf("qemu run state %q; want guest-panicked", rs)
				}
				if b, _ := os.ReadFile(v.st.Launch.Console); !strings.Contains(string(b), "Kernel panic") {
					t.Errorf("console shows no kernel panic:\n%s", tail(b))
				}
				time.Sleep(time.Second) // held: no heartbeat follows, only the rest of the panic message
				noHB(t, d, panicked)
				// A reboot releases it: the guest boots again.
				must(t, d.Reboot(ctx, lifecycleID))
				waitHB(t, d, panicked, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 1 })
				if st := status(t, d); st.State != driver.StateRunning || st.PID != pid {
					t.Errorf("after the reboot: %s pid %d; want running in the same qemu (pid %d)", st.State, st.PID, pid)
				}
			default:
				// restart: the driver resets it; none: its own panic=-1 does.
				hb := waitHB(t, d, panicked, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 1 })
				st := status(t, d)
				t.Logf("second boot's heartbeat %d; status %s, last panic %+v", hb.Counter, st.State, st.LastPanic)
				if st.State != driver.StateRunning || st.PID != pid || st.LastPanic == nil || st.LastPanic.Count != 1 ||
					st.LastPanic.Reason != "guest panicked (pvpanic): sysrq triggered crash" {
					t.Errorf("after the panic: %s pid %d last panic %+v; want running again in pid %d with one pvpanic panic",
						st.State, st.PID, st.LastPanic, pid)
				}
			}
			// The panic is in the state file, for a restarted agent.
			rec, err := readState(v.dir)
			must(t, err)
			if rec.LastPanic == nil || rec.LastPanic.Count != 1 {
				t.Errorf("state file's last panic %+v; want count 1", rec.LastPanic)
			}
		})
	}
}

func waitEvent(t *testing.T, events <-chan qmp.Event, name string, timeout time.Duration) qmp.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("qmp connection closed before %s", name)
			}
			if ev.Name == name {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s within %s", name, timeout)
		}
	}
}

func waitStatus(t *testing.T, d *Driver, ok func(driver.Status) bool) driver.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := status(t, d)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noHB fails if a heartbeat follows offset: a guest held at its panic
// runs nothing.
func noHB(t *testing.T, d *Driver, offset int64) {
	t.Helper()
	rc, err := d.Console(ctx, lifecycleID, offset)
	must(t, err)
	defer rc.Close()
	if hb, found := guestlog.Last(rc); found {
		t.Errorf("heartbeat %d after the panic, while held", hb.Counter)
	}
}

func runState(t *testing.T, d *Driver, v *vm) string {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	var st runStatus
	must(t, d.qmpRun(ctx, v, "query-status", nil, &st))
	return st.Status
}

func consoleSize(t *testing.T, v *vm) int64 {
	t.Helper()
	fi, err := os.Stat(v.st.Launch.Console)
	must(t, err)
	return fi.Size()
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// The reason of a panic: the event's details if any, and the kernel's own
// words from the end of the console log.
func TestPanicReason(t *testing.T) {
	for data, want := range map[string]string{
		`{"action":"pause"}`: "guest panicked (pvpanic)",
		`{"action":"pause","info":{"type":"hyper-v","arg1":1}}`: `guest panicked ({"arg1":1,"type":"hyper-v"})`,
	} {
		if got, held := panicReason(json.RawMessage(data)); got != want || !held {
			t.Errorf("panicReason(%s) = %q, %v; want %q, held", data, got, held, want)
		}
	}
	if _, held := panicReason(json.RawMessage(`{"action":"run"}`)); held {
		t.Error("action run (panic=none) taken for held")
	}

	log := filepath.Join(t.TempDir(), "console.log")
	for _, tt := range []struct{ console, want string }{
		{"godwit-guest hb=1\n", ""},
		{"[ 3.7] Kernel panic - not syncing: first\n[ 9.1] Kernel panic - not syncing: Fatal exception\n[ 9.2] Call Trace:\n", "Fatal exception"},
		{"Kernel panic - not syncing: \x1b[1mbold\x00\n", "[1mbold"},
		{"Kernel panic - not syncing: old\n" + strings.Repeat("x", 9000), ""}, // an earlier boot's, out of the window
	} {
		must(t, os.WriteFile(log, []byte(tt.console), 0o644))
		if got := panicMessage(log); got != tt.want {
			t.Errorf("panicMessage(%.40q) = %q; want %q", tt.console, got, tt.want)
		}
	}
	if got := panicMessage(filepath.Join(t.TempDir(), "none")); got != "" {
		t.Errorf("panicMessage of no log = %q", got)
	}
}

// A panic while no agent watches (its GUEST_PANICKED event goes unheard)
// is not lost: QEMU holds the guest, and the restarted driver finds it so,
// records it and applies the policy (restart: the guest boots again).
func TestGuestPanicWhileAgentAwayQEMU(t *testing.T) {
	requireQEMU(t)
	g := testguest.ForTest(t)
	root := t.TempDir()
	killLeftovers(t, root)
	open := func() *Driver {
		t.Helper()
		d, err := New(Config{StateDir: filepath.Join(root, "state"), Accel: driver.AccelTCG, StopTimeout: 5 * time.Second,
			DirtySampleEvery: -1, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		must(t, err)
		return d
	}
	d := open()
	spec := driver.VMSpec{ID: lifecycleID, Name: "panic-away", VCPUs: 1, MemoryMiB: 128,
		Kernel: g.Kernel, Initrd: g.Initrd, Cmdline: g.Cmdline + " panic_after_s=3", OnPanic: api.OnPanicRestart}
	must(t, d.Create(ctx, spec))
	must(t, d.Start(ctx, lifecycleID))
	defer func() { must(t, d.Delete(ctx, lifecycleID)); must(t, d.Close()) }()
	pid := status(t, d).PID
	waitHB(t, d, 0, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 1 })
	must(t, d.Close()) // the agent goes away before the panic
	v, err := d.get(lifecycleID)
	must(t, err)
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(v.st.Launch.Console)
		if strings.Contains(string(b), "Kernel panic") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest did not panic within 60s:\n%s", tail(b))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // the rest of the panic, to pvpanic
	panicked := consoleSize(t, v)

	d = open()
	sts, err := d.Recover(ctx)
	must(t, err)
	if len(sts) != 1 || sts[0].PID != pid || sts[0].LastPanic == nil || sts[0].LastPanic.Count != 1 ||
		!strings.Contains(sts[0].LastPanic.Reason, "while the agent was away") {
		t.Fatalf("Recover = %+v; want pid %d with the panic found held and recorded", sts, pid)
	}
	waitHB(t, d, panicked, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 1 })
	if st := status(t, d); st.State != driver.StateRunning {
		t.Errorf("after the restart: %s; want running", st.State)
	}
}
