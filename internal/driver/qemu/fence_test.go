package qemu

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/drivertest"
)

func TestSharedDiskProcesses(t *testing.T) {
	dir := t.TempDir()
	other := t.TempDir() // another host's state on the same machine
	vm := func(id string, shared bool, pidFile string, recordPID bool) *exec.Cmd {
		vdir := filepath.Join(dir, "vms", id)
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			t.Fatal(err)
		}
		own := filepath.Join(vdir, "qemu.pid")
		if pidFile == "" {
			pidFile = own
		}
		p := drivertest.FakeQEMU(t, id, pidFile)
		st := vmState{Version: stateVersion, Launch: launch{Spec: driver.VMSpec{ID: id, Name: "vm-" + id,
			Disk: &driver.Disk{Path: "/pool/" + id + ".qcow2", Shared: shared}}, PIDFile: own}}
		if recordPID {
			st.PID = p.Process.Pid
		}
		if err := writeState(vdir, st); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(own, []byte(strconv.Itoa(p.Process.Pid)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shared := vm("11111111-1111-1111-1111-111111111111", true, "", true)
	unrecorded := vm("22222222-2222-2222-2222-222222222222", true, "", false) // agent froze before writing its PID
	vm("33333333-3333-3333-3333-333333333333", false, "", true)               // local disk: not fenced
	vm("44444444-4444-4444-4444-444444444444", true, filepath.Join(other, "qemu.pid"), true)

	procs, err := SharedDiskProcesses(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for _, p := range procs {
		got[p.PID] = true
	}
	if len(procs) != 2 || !got[shared.Process.Pid] || !got[unrecorded.Process.Pid] {
		t.Fatalf("found %+v; want the two shared-disk QEMUs of this state directory (%d, %d)", procs, shared.Process.Pid, unrecorded.Process.Pid)
	}
	for _, p := range procs {
		if !p.Kill() {
			t.Errorf("kill %d failed", p.PID)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		procs, _ = SharedDiskProcesses(dir)
		if len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still running after SIGKILL: %+v", procs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if (Process{VMID: "11111111-1111-1111-1111-111111111111", PID: os.Getpid(), pidFile: "x"}).Kill() {
		t.Fatal("killed a process that is not the VM's QEMU")
	}
	if procs, err := SharedDiskProcesses(t.TempDir()); err != nil || len(procs) != 0 {
		t.Errorf("empty state directory: %v, %v", procs, err)
	}
}
