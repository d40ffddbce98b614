package qemu

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
)

// fakeQEMU starts a shell that waits on its stdin and whose command line
// looks like a QEMU of VM id writing pidFile. It is killed at cleanup.
func fakeQEMU(t *testing.T, id, pidFile string) *exec.Cmd {
	t.Helper()
	cmd := &exec.Cmd{Path: "/bin/sh", Args: []string{"qemu-system-x86_64", "-c", "read x", "sh", "-uuid", id, "-pidfile", pidFile}}
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start /bin/sh: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	return cmd
}

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
		p := fakeQEMU(t, id, pidFile)
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
