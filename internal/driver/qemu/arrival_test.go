package qemu

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/drivertest"
	"github.com/godwit/godwit/internal/qmp/qmptest"
)

func TestArrivalFromRunState(t *testing.T) {
	for _, tc := range []struct {
		st   runStatus
		want driver.IncomingState
	}{
		{runStatus{Status: "inmigrate"}, driver.IncomingWaiting},
		{runStatus{Status: "prelaunch"}, driver.IncomingWaiting},
		{runStatus{Status: "paused"}, driver.IncomingWaiting}, // loaded under -S, not resumed
		{runStatus{Status: "running", Running: true}, driver.IncomingNone},
		{runStatus{Status: "io-error"}, driver.IncomingNone},
		{runStatus{Status: "guest-panicked"}, driver.IncomingNone},
		{runStatus{Status: "shutdown"}, driver.IncomingNone},
		{runStatus{Status: "postmigrate"}, driver.IncomingUnknown},
		{runStatus{Status: "internal-error"}, driver.IncomingUnknown},
		{runStatus{Status: "something-new"}, driver.IncomingUnknown},
	} {
		if got := arrival(tc.st); got != tc.want {
			t.Errorf("%+v: %q; want %q", tc.st, got, tc.want)
		}
	}
}

// arriving is an incoming VM's QEMU without QEMU: a process whose command
// line names the VM, and a fake monitor answering query-status.
type arriving struct {
	d      *Driver
	v      *vm
	proc   interface{ Kill() error }
	srv    *qmptest.Server
	status atomic.Value // runStatus
}

func newArriving(t *testing.T, id string) *arriving {
	t.Helper()
	dir := t.TempDir()
	a := &arriving{d: &Driver{cfg: Config{StateDir: dir, Accel: driver.AccelTCG}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		vms: map[string]*vm{}, done: make(chan struct{})}}
	a.status.Store(runStatus{Status: "inmigrate"})
	a.srv = qmptest.New(t, func(cmd string, _ json.RawMessage) (any, error) {
		if cmd == "query-status" {
			return a.status.Load(), nil
		}
		return nil, nil
	})
	pidFile := filepath.Join(dir, "qemu.pid")
	p := drivertest.FakeQEMU(t, id, pidFile)
	a.proc = p.Process
	a.v = &vm{dir: dir, st: vmState{Version: stateVersion, PID: p.Process.Pid, Incoming: driver.IncomingWaiting,
		Launch: launch{Spec: driver.VMSpec{ID: id, Name: "arriving"}, QMP: a.srv.Path, PIDFile: pidFile}}}
	a.d.vms[id] = a.v
	if err := writeState(dir, a.v.st); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.d.Close() })
	return a
}

func (a *arriving) check(t *testing.T, when string, state driver.State, in driver.IncomingState) {
	t.Helper()
	st, err := a.d.Status(context.Background(), a.v.st.Launch.Spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != state || st.Incoming != in {
		t.Errorf("%s: state %s, incoming %q; want %s, %q", when, st.State, st.Incoming, state, in)
	}
}

// kill ends the fake QEMU and waits until the driver can see it gone.
func (a *arriving) kill(t *testing.T) {
	t.Helper()
	pid, id := a.v.st.PID, a.v.st.Launch.Spec.ID
	_ = a.proc.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid, id) {
		if time.Now().After(deadline) {
			t.Fatal("the fake qemu survived SIGKILL")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An incoming QEMU is reported truthfully: paused and waiting while its
// guest has not run (not "running", as a live process once was), and as
// having run from the moment QEMU says so, persisted for a restarted
// agent. One that exits is judged by what its monitor saw.
func TestIncomingStatus(t *testing.T) {
	t.Run("live", func(t *testing.T) {
		a := newArriving(t, "0c7b6a1e-0000-4000-8000-0000000000a1")
		a.check(t, "inmigrate", driver.StatePaused, driver.IncomingWaiting)
		a.status.Store(runStatus{Status: "running", Running: true}) // QEMU started the arrived guest by itself
		a.check(t, "running", driver.StateRunning, driver.IncomingNone)
		if st, err := readState(a.v.dir); err != nil || st.Incoming != driver.IncomingNone {
			t.Errorf("persisted incoming %q (%v); want none: a restarted agent must know the guest ran here", st.Incoming, err)
		}
	})
	t.Run("exited after RESUME", func(t *testing.T) {
		a := newArriving(t, "0c7b6a1e-0000-4000-8000-0000000000a2")
		a.check(t, "inmigrate", driver.StatePaused, driver.IncomingWaiting)
		a.srv.Event("RESUME", nil)
		deadline := time.Now().Add(5 * time.Second)
		for {
			a.v.mu.Lock()
			seen := a.v.mon != nil && a.v.mon.resumed.Load()
			a.v.mu.Unlock()
			if seen {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the watcher never saw RESUME")
			}
			time.Sleep(10 * time.Millisecond)
		}
		a.kill(t)
		a.check(t, "exited", driver.StateCrashed, driver.IncomingNone)
	})
	t.Run("exited watched, never resumed", func(t *testing.T) {
		a := newArriving(t, "0c7b6a1e-0000-4000-8000-0000000000a3")
		a.check(t, "inmigrate", driver.StatePaused, driver.IncomingWaiting)
		a.kill(t) // the load failed: QEMU exits
		a.check(t, "exited", driver.StateCrashed, driver.IncomingWaiting)
		if st, _ := readState(a.v.dir); st.Incoming != driver.IncomingWaiting {
			t.Errorf("persisted incoming %q; want waiting", st.Incoming)
		}
	})
	t.Run("exited unwatched", func(t *testing.T) {
		a := newArriving(t, "0c7b6a1e-0000-4000-8000-0000000000a4")
		a.kill(t) // while no agent watched (a restart): it may have run the guest
		a.check(t, "exited", driver.StateCrashed, driver.IncomingUnknown)
	})
	t.Run("monitor silent", func(t *testing.T) {
		a := newArriving(t, "0c7b6a1e-0000-4000-8000-0000000000a5")
		a.srv.Close()
		a.check(t, "no answer", driver.StatePaused, driver.IncomingUnknown)
		if st, _ := readState(a.v.dir); st.Incoming != driver.IncomingWaiting {
			t.Errorf("persisted incoming %q; a failed query must not change it", st.Incoming)
		}
	})
}
