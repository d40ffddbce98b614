package qemu

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/pki"
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
	if _, err := runAsGID("no-such-user-godwit"); err == nil {
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

// runAsUser is the unprivileged user the RunAs test drops QEMU to: one
// every Debian host has.
const runAsUser = "nobody"

// A QEMU told to run as another user does, sandboxed, after opening what
// it needs as root: the guest boots, writes its disk, stops on the power
// button; and an encrypted block copy between two such QEMUs — whose
// TLS credentials QEMU reads after the drop — completes, the guest
// carrying on at the destination.
func TestRunAsQEMU(t *testing.T) {
	requireQEMU(t)
	if os.Geteuid() != 0 {
		t.Skip("dropping to another user needs root")
	}
	u, err := user.Lookup(runAsUser)
	if err != nil {
		t.Skipf("no user %s: %v", runAsUser, err)
	}
	g := testguest.ForTest(t)
	root := t.TempDir()
	killLeftovers(t, root)
	open := func(name string) *Driver {
		d, err := New(Config{StateDir: filepath.Join(root, name), Accel: driver.AccelTCG, StopTimeout: 10 * time.Second, RunAs: runAsUser,
			Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		must(t, err)
		t.Cleanup(func() { _ = d.Delete(ctx, lifecycleID); d.Close() })
		return d
	}
	src, dst := open("src"), open("dst")
	spec := driver.VMSpec{ID: lifecycleID, Name: "runas", VCPUs: 1, MemoryMiB: 128, Kernel: g.Kernel, Initrd: g.Initrd,
		Cmdline: g.Cmdline + " dirty_mb=16 dirty_rate_mb=4", Disk: &driver.Disk{Path: filepath.Join(root, "src-disk.qcow2"), SizeMiB: 64}}
	must(t, src.Create(ctx, spec))
	must(t, src.Start(ctx, lifecycleID))
	before := waitHB(t, src, 0, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 3 && hb.DiskRecords > 0 })
	pid := status(t, src).PID
	st := procStatus(t, pid)
	if uid := strings.Fields(st["Uid"]); len(uid) == 0 || uid[0] != u.Uid || uid[1] != u.Uid {
		t.Errorf("qemu runs as uid %q; want %s (%s)", st["Uid"], u.Uid, runAsUser)
	}
	if src.sandbox != "" {
		checkSandboxed(t, pid)
	}

	ca, err := pki.NewCA("runas")
	must(t, err)
	srcTLS := &driver.MigrationTLS{Dir: qemuCreds(t, root, ca, "host1"), PeerName: "host2"}
	dstTLS := &driver.MigrationTLS{Dir: qemuCreds(t, root, ca, "host2")}
	dspec := spec
	disk := *spec.Disk
	disk.Path = filepath.Join(root, "dst-disk.qcow2")
	dspec.Disk = &disk
	to, err := dst.PrepareIncoming(ctx, dspec, "127.0.0.1", driver.MigrateOptions{TLS: dstTLS})
	must(t, err)
	must(t, src.MigrateOut(ctx, lifecycleID, to, driver.MigrateOptions{BandwidthBytesPerS: 125e6, TLS: srcTLS}))
	deadline := time.Now().Add(120 * time.Second)
	for {
		st, err := src.MigrationStatus(ctx, lifecycleID)
		must(t, err)
		if st.Status == driver.MigrationCompleted {
			break
		}
		if st.Status != driver.MigrationActive || time.Now().After(deadline) {
			t.Fatalf("encrypted migration between qemus run as %s: %s %s", runAsUser, st.Status, st.Error)
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(t, dst.SwitchOver(ctx, lifecycleID, 30*time.Second))
	must(t, src.Release(ctx, lifecycleID))
	waitHB(t, dst, 0, func(hb guestlog.Heartbeat) bool {
		return hb.Counter > before.Counter+2 && hb.DiskBad == 0 && hb.MemBad == 0
	})
	if uid := strings.Fields(procStatus(t, status(t, dst).PID)["Uid"]); len(uid) == 0 || uid[0] != u.Uid {
		t.Errorf("the destination's qemu runs as uid %v; want %s", uid, u.Uid)
	}
	must(t, dst.Stop(ctx, lifecycleID, driver.StopOptions{}))
	if st := status(t, dst); st.State != driver.StateStopped {
		t.Errorf("after stop: %s", st.State)
	}
}
