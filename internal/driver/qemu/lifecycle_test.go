package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/testguest"
)

const lifecycleID = "5e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"

// What the conformance suite cannot see, because it is particular to
// QEMU processes: the process is not the agent's child; a restarted
// driver reattaches to the same PID; a guest's own poweroff is a stop but
// a kill is a crash; a QEMU the state file lost is adopted, not started
// twice; a frozen QEMU is still force-stopped; delete leaves nothing.
// One guest boot under TCG carries all of it.
func TestQEMULifecycle(t *testing.T) {
	requireQEMU(t)
	g := testguest.ForTest(t)
	root := t.TempDir()
	killLeftovers(t, root)
	stateDir := filepath.Join(root, "state")
	open := func() *Driver {
		t.Helper()
		d, err := New(Config{StateDir: stateDir, Accel: driver.AccelTCG, StopTimeout: 60 * time.Second,
			Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := open()
	spec := driver.VMSpec{ID: lifecycleID, Name: "life", VCPUs: 1, MemoryMiB: 128,
		Kernel: g.Kernel, Initrd: g.Initrd, Cmdline: g.Cmdline + " dirty_mb=32", // 32 MiB written once (ResidentMemory)
		Disk: &driver.Disk{Path: filepath.Join(root, "disk.qcow2"), SizeMiB: 64}}
	must(t, d.Create(ctx, spec))

	start := time.Now()
	must(t, d.Start(ctx, lifecycleID))
	launched := time.Since(start)
	st := status(t, d)
	pid := st.PID
	hb := waitHB(t, d, 0, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 1 })
	t.Logf("start returned in %s; first heartbeat %s after start (TCG)", launched.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if hb.DiskMiB != 64 || hb.MemMiB == 0 {
		t.Errorf("guest sees disk %d MiB, memory %d MiB; want a 64 MiB disk", hb.DiskMiB, hb.MemMiB)
	}

	t.Run("ProcessIsDaemonized", func(t *testing.T) {
		if ppid := parentOf(pid); ppid == os.Getpid() || ppid == 0 {
			t.Errorf("qemu pid %d has parent %d; want it reparented away from the agent (pid %d)", pid, ppid, os.Getpid())
		}
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		args := strings.Split(string(cmdline), "\x00")
		for i, a := range args {
			if a == "-machine" && i+1 < len(args) && !strings.HasPrefix(args[i+1], "pc-q35-") {
				t.Errorf("machine %q is not a versioned q35 type", args[i+1])
			}
		}
		b, err := os.ReadFile(filepath.Join(stateDir, "vms", lifecycleID, "state.json"))
		must(t, err)
		var raw map[string]any
		must(t, json.Unmarshal(b, &raw))
		if raw["version"] != float64(1) || raw["pid"] != float64(pid) || raw["started_at"] == nil {
			t.Errorf("state file = %s; want version 1, pid %d and started_at", b, pid)
		}
	})

	// The engine predicts from the guest RAM resident in QEMU (what a
	// first pass sends), not the RAM size: it must find the RAM block's
	// mapping in a real QEMU and count at least what the guest wrote.
	t.Run("ResidentMemory", func(t *testing.T) {
		waitHB(t, d, 0, func(hb guestlog.Heartbeat) bool { return hb.HotMiB >= 32 })
		v, err := d.get(lifecycleID)
		must(t, err)
		v.mu.Lock()
		got := d.residentRAM(ctx, v)
		v.mu.Unlock()
		t.Logf("resident guest RAM %d MiB of 128 MiB (32 MiB dirty set filled)", got>>20)
		if got < 32<<20 || got > 128<<20 {
			t.Errorf("resident guest RAM %d bytes; want between the 32 MiB the guest wrote and its 128 MiB", got)
		}
	})

	t.Run("RecoverInNewDriver", func(t *testing.T) {
		before := lastHB(t, d, 0)
		must(t, d.Close())
		d = open()
		sts, err := d.Recover(ctx)
		must(t, err)
		if len(sts) != 1 || sts[0].State != driver.StateRunning || sts[0].PID != pid {
			t.Fatalf("Recover = %+v; want the vm running as pid %d", sts, pid)
		}
		waitHB(t, d, 0, func(hb guestlog.Heartbeat) bool { return hb.Counter > before.Counter })
	})

	t.Run("GuestPoweroffIsAStop", func(t *testing.T) {
		// The guest powers itself off (it reacts to the ACPI button as
		// to its own decision); nobody called Stop.
		v, err := d.get(lifecycleID)
		must(t, err)
		v.mu.Lock()
		err = d.qmpRun(ctx, v, "system_powerdown", nil, nil)
		v.mu.Unlock()
		must(t, err)
		if !waitGone(ctx, pid, lifecycleID, 60*time.Second) {
			t.Fatal("the guest did not power off")
		}
		if st := status(t, d); st.State != driver.StateStopped || st.PID != 0 {
			t.Errorf("after the guest powered off: %s pid %d; want stopped", st.State, st.PID)
		}
	})

	t.Run("AdoptUnrecordedQEMU", func(t *testing.T) {
		must(t, d.Start(ctx, lifecycleID))
		pid = status(t, d).PID
		// The agent died after QEMU started but before it recorded the
		// PID: only QEMU's pid file knows.
		must(t, d.Close())
		dir := filepath.Join(stateDir, "vms", lifecycleID)
		st, err := readState(dir)
		must(t, err)
		st.PID, st.StartedAt = 0, time.Time{}
		must(t, writeState(dir, st))
		d = open()
		sts, err := d.Recover(ctx)
		must(t, err)
		if len(sts) != 1 || sts[0].State != driver.StateRunning || sts[0].PID != pid {
			t.Fatalf("Recover = %+v; want the unrecorded qemu (pid %d) adopted", sts, pid)
		}
		must(t, d.Start(ctx, lifecycleID)) // must not start a second qemu
		if got := status(t, d).PID; got != pid {
			t.Errorf("start after adoption: pid %d; want %d", got, pid)
		}
	})

	t.Run("ForceStopFrozenQEMU", func(t *testing.T) {
		// A stopped (SIGSTOP) QEMU answers no QMP: force must not wait
		// for a quit that never comes.
		must(t, syscall.Kill(pid, syscall.SIGSTOP))
		begin := time.Now()
		must(t, d.Stop(ctx, lifecycleID, driver.StopOptions{Force: true}))
		took := time.Since(begin)
		t.Logf("force stop of a frozen qemu took %s", took.Round(time.Millisecond))
		if alive(pid, lifecycleID) {
			t.Fatal("frozen qemu still alive after a force stop")
		}
		if st := status(t, d); st.State != driver.StateStopped {
			t.Errorf("after force stop: %s; want stopped", st.State)
		}
		if took > quitTimeout+5*time.Second {
			t.Errorf("force stop took %s", took)
		}
	})

	t.Run("KillIsACrash", func(t *testing.T) {
		must(t, d.Start(ctx, lifecycleID))
		pid = status(t, d).PID
		must(t, syscall.Kill(pid, syscall.SIGKILL))
		if !waitGone(ctx, pid, lifecycleID, 10*time.Second) {
			t.Fatal("qemu survived SIGKILL")
		}
		if st := status(t, d); st.State != driver.StateCrashed || st.PID != 0 {
			t.Errorf("after kill -9: %s pid %d; want crashed", st.State, st.PID)
		}
		if err := d.Reboot(ctx, lifecycleID); !errors.Is(err, errs.ErrConflict) {
			t.Errorf("reboot of a crashed vm: %v; want ErrConflict", err)
		}
		// Crashed survives a restart: the state file says no stop was asked.
		must(t, d.Close())
		d = open()
		sts, err := d.Recover(ctx)
		must(t, err)
		if len(sts) != 1 || sts[0].State != driver.StateCrashed {
			t.Errorf("Recover after the crash = %+v; want crashed", sts)
		}
	})

	t.Run("DeleteLeavesNothing", func(t *testing.T) {
		must(t, d.Start(ctx, lifecycleID))
		pid = status(t, d).PID
		v, err := d.get(lifecycleID)
		must(t, err)
		v.mu.Lock()
		qmpSock := v.st.Launch.QMP
		v.mu.Unlock()
		must(t, d.Delete(ctx, lifecycleID))
		if alive(pid, lifecycleID) {
			t.Errorf("qemu pid %d alive after delete", pid)
		}
		for _, p := range []string{spec.Disk.Path, qmpSock, filepath.Join(stateDir, "vms", lifecycleID)} {
			if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s left after delete (%v)", p, err)
			}
		}
	})
	must(t, d.Close())
}

var ctx = context.Background()

func requireQEMU(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots real guests")
	}
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (make test installs it)", bin)
		}
	}
}

// killLeftovers makes sure no process a test started under dir outlives
// it: at cleanup, every process whose command line mentions dir (QEMU's
// names its console and pid file there) is killed by PID, and the test
// fails, because the driver should have stopped it. Call it before
// anything that registers cleanups of its own, so it runs last.
func killLeftovers(t *testing.T, dir string) {
	t.Cleanup(func() {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil || !strings.Contains(string(b), dir) {
				continue
			}
			_ = syscall.Kill(pid, syscall.SIGCONT) // if a test froze it
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("process %d left running under %s: %s", pid, dir, strings.ReplaceAll(string(b), "\x00", " "))
		}
	})
}

func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func status(t *testing.T, d *Driver) driver.Status {
	t.Helper()
	st, err := d.Status(ctx, lifecycleID)
	must(t, err)
	return st
}

func lastHB(t *testing.T, d *Driver, offset int64) guestlog.Heartbeat {
	t.Helper()
	rc, err := d.Console(ctx, lifecycleID, offset)
	must(t, err)
	defer rc.Close()
	hb, _ := guestlog.Last(rc)
	return hb
}

// waitHB waits up to 90 s (a TCG boot on a busy host) for a heartbeat
// after offset that satisfies ok.
func waitHB(t *testing.T, d *Driver, offset int64, ok func(guestlog.Heartbeat) bool) guestlog.Heartbeat {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		rc, err := d.Console(ctx, lifecycleID, offset)
		must(t, err)
		hb, found := guestlog.Last(rc)
		rc.Close()
		if found && ok(hb) {
			return hb
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching heartbeat within 90s (last %+v, found %v)", hb, found)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A caller that hangs up while QEMU starts (a controller killed in the
// middle of a create) leaves a running, recorded QEMU, not one killed in
// the middle of -daemonize: its daemon child would die moments later,
// after a retry had adopted it (found by the intent fault matrix).
func TestStartOutlivesItsCaller(t *testing.T) {
	requireQEMU(t)
	g := testguest.ForTest(t)
	root := t.TempDir()
	killLeftovers(t, root)
	d, err := New(Config{StateDir: filepath.Join(root, "state"), Accel: driver.AccelTCG, StopTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	must(t, err)
	spec := driver.VMSpec{ID: lifecycleID, Name: "hangup", VCPUs: 1, MemoryMiB: 128,
		Kernel: g.Kernel, Initrd: g.Initrd, Cmdline: g.Cmdline,
		Disk: &driver.Disk{Path: filepath.Join(root, "disk.qcow2"), SizeMiB: 64}}
	must(t, d.Create(ctx, spec))
	hangup, cancel := context.WithTimeout(ctx, 20*time.Millisecond) // QEMU takes longer to daemonize
	defer cancel()
	if err := d.Start(hangup, lifecycleID); err != nil {
		t.Fatalf("start whose caller hung up: %v; want the launch to finish", err)
	}
	pid := status(t, d).PID
	time.Sleep(2 * time.Second) // a QEMU killed mid-daemonize is gone by now
	if st := status(t, d); st.State != driver.StateRunning || st.PID != pid || !alive(pid, lifecycleID) {
		t.Errorf("after the caller hung up: %s, pid %d (was %d, alive %v); want the same QEMU running", st.State, st.PID, pid, alive(pid, lifecycleID))
	}
	must(t, d.Delete(ctx, lifecycleID))
}
