package qemu

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Process is a running QEMU of one driver state directory.
type Process struct {
	VMID, Name string
	PID        int
	pidFile    string
}

// SharedDiskProcesses lists the live QEMUs started from the driver state
// directory stateDir (an agent's <state>/qemu) whose disk is on the shared
// pool: what a host that lost its lease must kill. It reads only the VMs'
// state files, QEMU's own pid files and /proc, so another process (the
// agent's watchdog) can run it while the agent is frozen. A QEMU whose
// state file does not yet record its PID is found by its pid file.
func SharedDiskProcesses(stateDir string) ([]Process, error) {
	ents, err := os.ReadDir(filepath.Join(stateDir, "vms"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []Process
	for _, e := range ents {
		st, err := readState(filepath.Join(stateDir, "vms", e.Name()))
		if err != nil || st.Launch.Spec.Disk == nil || !st.Launch.Spec.Disk.Shared {
			continue
		}
		pids := []int{st.PID}
		if pid, err := readPIDFile(st.Launch.PIDFile); err == nil && pid != st.PID {
			pids = append(pids, pid)
		}
		for _, pid := range pids {
			p := Process{VMID: st.Launch.Spec.ID, Name: st.Launch.Spec.Name, PID: pid, pidFile: st.Launch.PIDFile}
			if p.ours() {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// ours reports whether p.PID is still this QEMU: a live qemu-system
// process with the VM's UUID and this state directory's pid file on its
// command line. The pid file tells this host's QEMU from another host's
// QEMU of the same VM on the same machine (godwit up, a migration).
func (p Process) ours() bool {
	if !alive(p.PID, p.VMID) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	return len(args) > 0 && strings.Contains(filepath.Base(args[0]), "qemu-system") &&
		strings.Contains(string(b), "\x00-pidfile\x00"+p.pidFile+"\x00")
}

// Kill sends SIGKILL to the QEMU if it is still this one; it reports
// whether it did.
func (p Process) Kill() bool {
	if !p.ours() {
		return false
	}
	return syscall.Kill(p.PID, syscall.SIGKILL) == nil
}
