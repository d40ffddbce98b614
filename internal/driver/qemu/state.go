package qemu

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godwit/godwit/internal/driver"
)

// stateVersion is bumped when vmState changes incompatibly; an agent
// refuses (and reports) state files of a version it does not know rather
// than guessing.
const stateVersion = 1

// vmState is what survives an agent restart: the definition (with the
// QMP socket and console paths, in Launch) and the process that runs it.
// It is written when the VM is defined, after each start and stop, and
// when QEMU reports a guest poweroff or panic.
type vmState struct {
	Version   int       `json:"version"`
	Launch    launch    `json:"launch"`
	PID       int       `json:"pid,omitempty"`
	StartedAt time.Time `json:"started_at,omitempty"`
	// StopRequested is set before a stop; ShutdownSeen when QEMU reported
	// the guest shut down. A process gone without either crashed.
	StopRequested bool `json:"stop_requested,omitempty"`
	ShutdownSeen  bool `json:"shutdown_seen,omitempty"`
	Crashed       bool `json:"crashed,omitempty"`
	// Incoming is waiting from before an incoming QEMU starts until its
	// guest is seen to run, unknown if it exited unwatched (arrival.go).
	Incoming driver.IncomingState `json:"incoming,omitempty"`
	// LastPanic is the guest's last kernel panic on this host, with the
	// count since the VM was defined here; Panicked is set while QEMU
	// holds the guest at it (guest-panicked): reported crashed, and for
	// on-panic restart the reset is due (panic.go).
	LastPanic *driver.Panic `json:"last_panic,omitempty"`
	Panicked  bool          `json:"panicked,omitempty"`
}

// writeState replaces dir/state.json atomically (write and rename), so a
// crash mid-write leaves the old state, never half of one.
func writeState(dir string, st vmState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dir, "state.json")
	if err := os.WriteFile(p+".tmp", append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

func readState(dir string) (vmState, error) {
	var st vmState
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("parse %s/state.json: %w", dir, err)
	}
	if st.Version != stateVersion {
		return st, fmt.Errorf("%s/state.json has version %d; this agent knows %d", dir, st.Version, stateVersion)
	}
	return st, nil
}

// alive reports whether pid is a live QEMU running the VM with this UUID.
// Checking the command line guards against PID reuse after a host reboot.
func alive(pid int, uuid string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// A zombie has exited; only its parent has yet to reap it.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return false
		}
	}
	return strings.Contains(string(b), "\x00"+uuid+"\x00")
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// kill sends SIGKILL to pid if it is still the VM's QEMU: a PID that has
// been reused by another process is left alone.
func kill(pid int, uuid string) {
	if alive(pid, uuid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func removeAll(dir string) error { return os.RemoveAll(dir) }
