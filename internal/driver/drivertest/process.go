package drivertest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FakeQEMU starts a shell that waits on its stdin and whose command line
// looks like a QEMU of VM id writing pidFile: enough for code that finds
// QEMU processes by /proc/PID/cmdline (fencing, hostinfo.QEMUPIDs). It is
// killed at cleanup.
func FakeQEMU(t *testing.T, id, pidFile string) *exec.Cmd {
	t.Helper()
	cmd := &exec.Cmd{Path: "/bin/sh", Args: []string{"qemu-system-x86_64", "-c", "read x", "sh", "-uuid", id, "-pidfile", pidFile}}
	// The shell lives until its stdin closes: the pipe's writer is kept
	// until the test ends (dropped, the garbage collector would close it
	// at any moment, and the "QEMU" would exit under the test).
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start /bin/sh: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done; _ = stdin.Close() })
	// Start can return before the kernel shows the new command line:
	// wait until it names the VM, as a QEMU's would from its start.
	cmdline := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline"
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if b, err := os.ReadFile(cmdline); err == nil && strings.Contains(string(b), "\x00"+id+"\x00") {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fake qemu's command line never named %s", id)
		}
	}
}
