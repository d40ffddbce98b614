package qemu

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/testguest"
)

func TestRunAsArgs(t *testing.T) {
	for _, c := range []struct {
		version, user string
		want          []string
	}{
		{"10.0.2", "", nil},
		{"10.0.2", "qemu", []string{"-run-with", "user=qemu"}},
		{"9.1.0", "qemu", []string{"-run-with", "user=qemu"}},
		{"9.0.2", "qemu", []string{"-runas", "qemu"}},
		{"", "qemu", []string{"-run-with", "user=qemu"}}, // -runas is gone from 10.0
	} {
		if got := runAsArgs(c.version, c.user); !slices.Equal(got, c.want) {
			t.Errorf("runAsArgs(%q, %q) = %q; want %q", c.version, c.user, got, c.want)
		}
	}
	if checkRunAs("no-such-user-godwit") == nil {
		t.Error("a user the host lacks was accepted")
	}
}

// procStatus reads the fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	must(t, err)
	m := map[string]string{}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		k, v, _ := strings.Cut(s.Text(), ":")
		m[k] = strings.TrimSpace(v)
	}
	return m
}

// A VM's QEMU runs under its seccomp filter (mode 2, a filter), with
// every thread: -sandbox is on its command line and the kernel says so.
// The guest boots and runs, and stops on the power button.
func TestSandboxQEMU(t *testing.T) {
	requireQEMU(t)
	g := testguest.ForTest(t)
	root := t.TempDir()
	killLeftovers(t, root)
	d := hostDriver(t, root, "host")
	if d.sandbox == "" {
		t.Skip("this QEMU or kernel cannot install a seccomp filter")
	}
	if d.sandbox != sandboxFull {
		t.Errorf("sandbox %q; want %q on this QEMU", d.sandbox, sandboxFull)
	}
	spec := driver.VMSpec{ID: lifecycleID, Name: "sandboxed", VCPUs: 1, MemoryMiB: 128, Kernel: g.Kernel, Initrd: g.Initrd,
		Cmdline: g.Cmdline, Disk: &driver.Disk{Path: filepath.Join(root, "disk.qcow2"), SizeMiB: 64}}
	must(t, d.Create(ctx, spec))
	must(t, d.Start(ctx, lifecycleID))
	waitHB(t, d, 0, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 3 && hb.DiskRecords > 0 })
	pid := status(t, d).PID
	checkSandboxed(t, pid)
	must(t, d.Stop(ctx, lifecycleID, driver.StopOptions{}))
	if st := status(t, d); st.State != driver.StateStopped {
		t.Errorf("after stop: %s", st.State)
	}
}

// checkSandboxed checks that QEMU process pid and all its threads run
// under a seccomp filter, which its command line asked for.
func checkSandboxed(t *testing.T, pid int) {
	t.Helper()
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	must(t, err)
	if !bytes.Contains(cmdline, []byte("\x00-sandbox\x00"+sandboxFull+"\x00")) {
		t.Errorf("no -sandbox %s on qemu's command line: %s", sandboxFull, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	must(t, err)
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		if got := procStatus(t, tid)["Seccomp"]; got != "2" {
			t.Errorf("qemu pid %d thread %d: Seccomp %q; want 2 (filter)", pid, tid, got)
		}
	}
}
