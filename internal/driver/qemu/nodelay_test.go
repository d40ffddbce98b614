package qemu

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/testguest"
	"golang.org/x/sys/unix"
)

func TestParseTCPLine(t *testing.T) {
	// From /proc/net/tcp: a listener on 127.0.0.1:42945 and a connection
	// from port 51234 to it.
	listen := "   3: 0100007F:A7C1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0"
	conn := "   4: 0100007F:C822 0100007F:A7C1 01 00000000:00000000 00:00000000 00000000     0        0 123457 1 0000000000000000 20 4 30 10 -1"
	s, inode, ok := parseTCPLine(listen)
	if !ok || !s.listening || s.localPort != 42945 || s.remotePort != 0 || inode != "123456" {
		t.Errorf("listener: %+v %q %v", s, inode, ok)
	}
	s, inode, ok = parseTCPLine(conn)
	if !ok || s.listening || s.localPort != 51234 || s.remotePort != 42945 || inode != "123457" {
		t.Errorf("connection: %+v %q %v", s, inode, ok)
	}
	if _, _, ok := parseTCPLine("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"); ok {
		t.Error("the header parsed as a socket")
	}
}

// rawListener listens on a loopback port with plain system calls: Go's
// net package turns Nagle off on every connection, which would hide what
// setNoDelay does.
func rawListener(t *testing.T) (fd, port int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 4); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*unix.SockaddrInet4).Port
}

func rawConnect(t *testing.T, port int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		t.Fatal(err)
	}
	return fd
}

func rawAccept(t *testing.T, ln int) int {
	t.Helper()
	fd, _, err := unix.Accept(ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func noDelayOn(t *testing.T, fd int) bool {
	t.Helper()
	v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
	if err != nil {
		t.Fatal(err)
	}
	return v != 0
}

// skipWithoutPidfd skips where the kernel or the sandbox refuses
// pidfd_getfd even on the test's own process.
func skipWithoutPidfd(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("pidfd_getfd is not available here (Linux 5.6+ and ptrace rights needed): %v", err)
	}
}

// The destination's case: Nagle turned off on the listening socket is off
// on the connections it accepts afterwards (the main channel and the
// postcopy-preempt channel), and only on the socket that matched.
func TestSetNoDelayOnListenerIsInherited(t *testing.T) {
	other, _ := rawListener(t)
	ln, port := rawListener(t)
	before := rawAccept(t, func() int { rawConnect(t, port); return ln }())
	if noDelayOn(t, before) {
		t.Fatal("a raw accepted socket has TCP_NODELAY already: the test proves nothing")
	}
	n, err := setNoDelay(os.Getpid(), func(s tcpSocket) bool { return s.listening && s.localPort == port })
	skipWithoutPidfd(t, err)
	if err != nil || n != 1 {
		t.Fatalf("setNoDelay = %d, %v; want 1 socket", n, err)
	}
	if !noDelayOn(t, ln) {
		t.Error("the listening socket has no TCP_NODELAY")
	}
	if noDelayOn(t, other) {
		t.Error("another listener got TCP_NODELAY too")
	}
	rawConnect(t, port)
	if after := rawAccept(t, ln); !noDelayOn(t, after) {
		t.Error("a connection accepted after the change did not inherit TCP_NODELAY")
	}
}

// The source's case: the connections to the destination's port, set as
// they appear, each once.
func TestNoDelayOutSetsConnectionsToTheDestination(t *testing.T) {
	ln, port := rawListener(t)
	c1 := rawConnect(t, port)
	rawAccept(t, ln)
	d := &Driver{log: slog.New(slog.NewTextHandler(t.Output(), nil))}
	v := &vm{}
	v.st.PID = os.Getpid()
	out := &outgoing{destPort: port, noDelay: map[int]bool{}, channels: 2}
	d.noDelayOut(v, out)
	if out.noDelay == nil {
		_, err := setNoDelay(os.Getpid(), func(tcpSocket) bool { return true })
		skipWithoutPidfd(t, err)
		t.Fatalf("noDelayOut gave up: %v", err)
	}
	if !noDelayOn(t, c1) || len(out.noDelay) != 1 {
		t.Fatalf("main channel: nodelay %v, %d sockets recorded; want on, 1", noDelayOn(t, c1), len(out.noDelay))
	}
	if noDelayOn(t, ln) {
		t.Error("the listener (not a connection to the destination) got TCP_NODELAY")
	}
	c2 := rawConnect(t, port) // the postcopy-preempt channel, opened later
	rawAccept(t, ln)
	d.noDelayOut(v, out)
	if !noDelayOn(t, c2) || len(out.noDelay) != 2 {
		t.Errorf("preempt channel: nodelay %v, %d sockets recorded; want on, 2", noDelayOn(t, c2), len(out.noDelay))
	}
	// Both channels set: /proc is not read again.
	c3 := rawConnect(t, port)
	rawAccept(t, ln)
	d.noDelayOut(v, out)
	if noDelayOn(t, c3) {
		t.Error("a third connection was looked for after both channels were set")
	}
}

// socketNoDelay reports whether the socket of process pid that matches
// has TCP_NODELAY set, and whether one matched.
func socketNoDelay(t *testing.T, pid int, match func(tcpSocket) bool) (on, found bool) {
	t.Helper()
	socks, err := tcpSockets(pid)
	if err != nil {
		t.Fatal(err)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	skipWithoutPidfd(t, err)
	must(t, err)
	defer unix.Close(pidfd)
	for _, s := range socks {
		if !match(s) {
			continue
		}
		fd, err := unix.PidfdGetfd(pidfd, s.fd, 0)
		skipWithoutPidfd(t, err)
		must(t, err)
		on = noDelayOn(t, fd)
		unix.Close(fd)
		return on, true
	}
	return false, false
}

// On real QEMU: the destination's listening socket, the connection it
// accepts and the source's connection all have Nagle's algorithm off once
// a migration runs. The guest need not boot for that: the move is slow
// (1 MiB/s) and cancelled.
func TestMigrationSocketsNoDelayQEMU(t *testing.T) {
	requireQEMU(t)
	g := testguest.ForTest(t)
	root := t.TempDir()
	killLeftovers(t, root)
	src, dst := hostDriver(t, root, "src"), hostDriver(t, root, "dst")
	spec := driver.VMSpec{ID: lifecycleID, Name: "nodelay", VCPUs: 1, MemoryMiB: 128, Kernel: g.Kernel, Initrd: g.Initrd, Cmdline: g.Cmdline,
		Disk: &driver.Disk{Path: filepath.Join(root, "disk.qcow2"), SizeMiB: 64, Shared: true}}
	must(t, src.Create(ctx, spec))
	must(t, src.Start(ctx, lifecycleID))
	to, err := dst.PrepareIncoming(ctx, spec, "127.0.0.1", driver.MigrateOptions{PostCopy: true})
	must(t, err)
	port := uriPort(to.URI)
	dstPID, srcPID := status(t, dst).PID, status(t, src).PID
	if on, found := socketNoDelay(t, dstPID, func(s tcpSocket) bool { return s.listening && s.localPort == port }); !found || !on {
		t.Fatalf("destination's listening socket on %d: found %v, TCP_NODELAY %v", port, found, on)
	}
	must(t, src.MigrateOut(ctx, lifecycleID, to, driver.MigrateOptions{BandwidthBytesPerS: 1 << 20, PostCopy: true}))
	deadline := time.Now().Add(10 * time.Second)
	for {
		srcOn, srcFound := socketNoDelay(t, srcPID, func(s tcpSocket) bool { return !s.listening && s.remotePort == port })
		dstOn, dstFound := socketNoDelay(t, dstPID, func(s tcpSocket) bool { return !s.listening && s.localPort == port })
		if srcOn && dstOn {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: source's connection found %v, TCP_NODELAY %v; destination's found %v, TCP_NODELAY %v",
				srcFound, srcOn, dstFound, dstOn)
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(t, src.CancelMigration(ctx, lifecycleID))
	must(t, dst.Release(ctx, lifecycleID))
}

// hostDriver is a TCG driver on its own state directory under root (one
// host of a migration test), its VM deleted and it closed at the end.
func hostDriver(t *testing.T, root, name string) *Driver {
	t.Helper()
	d, err := New(Config{StateDir: filepath.Join(root, name), Accel: driver.AccelTCG, StopTimeout: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	must(t, err)
	t.Cleanup(func() { _ = d.Delete(ctx, lifecycleID); d.Close() })
	return d
}
