package testguest_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/testguest"
)

// boot runs the guest under TCG with disk attached and an HMP monitor,
// and returns its console path, monitor socket and exit channel. The
// QEMU process is killed by PID at cleanup.
func boot(t *testing.T, g testguest.Guest, disk string) (console, monitor string, exited chan struct{}) {
	t.Helper()
	monitor = filepath.Join(t.TempDir(), "mon.sock")
	console, exited = start(t, g, g.Cmdline, "-monitor", "unix:"+monitor+",server=on,wait=off",
		"-drive", "file="+disk+",if=virtio,format=qcow2")
	return console, monitor, exited
}

// start runs the guest under TCG with cmdline and the extra QEMU
// arguments, and returns its console path and exit channel. The QEMU
// process is killed by PID and waited for at cleanup, whatever happens.
func start(t *testing.T, g testguest.Guest, cmdline string, args ...string) (console string, exited chan struct{}) {
	t.Helper()
	console = filepath.Join(t.TempDir(), "console.log")
	cmd := exec.Command("qemu-system-x86_64", append([]string{"-accel", "tcg", "-machine", "q35", "-m", "192", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none",
		"-serial", "file:" + console,
		"-kernel", g.Kernel, "-initrd", g.Initrd, "-append", cmdline}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(console)
			t.Logf("console:\n%s\nqemu stderr: %s", b, stderr.String())
		}
	})
	return console, exited
}

func waitHeartbeat(t *testing.T, console string, ok func(guestlog.Heartbeat) bool) guestlog.Heartbeat {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(console)
		if hb, found := guestlog.Last(bytes.NewReader(b)); found && ok(hb) {
			return hb
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("no matching heartbeat within 90s")
	return guestlog.Heartbeat{}
}

// The guest boots under QEMU, heartbeats, sees its disk, keeps the records
// it wrote across a power-off (by the ACPI button) and a second boot.
func TestGuestBootsAndKeepsDiskRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a real guest")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (make test installs it)")
	}
	g := testguest.ForTest(t)
	disk := filepath.Join(t.TempDir(), "disk.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", disk, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}

	start := time.Now()
	console, monitor, exited := boot(t, g, disk)
	first := waitHeartbeat(t, console, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 1 })
	t.Logf("first heartbeat %.1fs after QEMU started", time.Since(start).Seconds())
	if first.DiskMiB != 64 || first.CPUs != 1 || first.MemMiB < 100 {
		t.Errorf("guest reports %+v; want 64 MiB disk, 1 CPU, ~150 MiB memory", first)
	}
	written := waitHeartbeat(t, console, func(hb guestlog.Heartbeat) bool { return hb.DiskRecords >= 3 })

	mon, err := net.Dial("unix", monitor)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	if _, err := mon.Write([]byte("system_powerdown\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("guest did not power off within 30s of the ACPI power button")
	}
	if b, _ := os.ReadFile(console); !strings.Contains(string(b), "powering off") {
		t.Error("console does not show the guest powering off")
	}

	console2, _, _ := boot(t, g, disk)
	again := waitHeartbeat(t, console2, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 1 })
	if again.DiskRecords < written.DiskRecords || again.DiskBad != 0 {
		t.Errorf("second boot found %d records (%d bad); want at least %d intact", again.DiskRecords, again.DiskBad, written.DiskRecords)
	}
}
