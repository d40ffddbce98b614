package qemu

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// QEMU leaves Nagle's algorithm on for the migration's main channel, its
// return path and the postcopy-preempt channel (only multifd channels get
// TCP_NODELAY). In post-copy the destination asks for each faulted page
// with a 12-byte message on the return path; while the source sends no
// bulk data (between the 100 ms slices of its rate limit), the source
// delays its ACK and Nagle holds the next request until that ACK: 40 ms
// stalls of the guest, several times a second. Measured here (QEMU
// 10.0.2, TCG, docs/migration-tuning.md): 1,100 faults served in the
// first second after the switch with Nagle, 5,200 without.
//
// godwit cannot ask QEMU for TCP_NODELAY, so the agent sets it on QEMU's
// sockets itself: it takes a copy of the socket with pidfd_getfd(2)
// (Linux 5.6; needs the right to ptrace QEMU, which the agent that
// started it as the same user, or root, has) and sets the option on the
// copy, which is the same socket. On the destination this is done on the
// listening socket, before the source connects: the connections it
// accepts inherit the option. On the source it is done on the connections
// to the destination once they exist.

// tcpSocket is one TCP socket of a process.
type tcpSocket struct {
	fd         int
	localPort  int
	remotePort int
	listening  bool
}

// tcpSockets lists the TCP sockets the process pid holds, read from
// /proc: its fds that are sockets, matched by inode with the tcp tables of
// its network namespace.
func tcpSockets(pid int) ([]tcpSocket, error) {
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	entries, err := os.ReadDir(filepath.Join(proc, "fd"))
	if err != nil {
		return nil, err
	}
	byInode := map[string]int{}
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join(proc, "fd", e.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		byInode[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = fd
	}
	var out []tcpSocket
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join(proc, "net", table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			s, inode, ok := parseTCPLine(sc.Text())
			if !ok {
				continue
			}
			if fd, mine := byInode[inode]; mine {
				s.fd = fd
				out = append(out, s)
			}
		}
		f.Close()
	}
	return out, nil
}

// parseTCPLine reads one line of /proc/net/tcp{,6}: "sl local_address
// rem_address st ... uid timeout inode ...", addresses as hex IP:port.
func parseTCPLine(line string) (tcpSocket, string, bool) {
	f := strings.Fields(line)
	if len(f) < 10 || f[0] == "sl" {
		return tcpSocket{}, "", false
	}
	port := func(addr string) int {
		i := strings.LastIndexByte(addr, ':')
		if i < 0 {
			return 0
		}
		b, err := hex.DecodeString(addr[i+1:])
		if err != nil || len(b) != 2 {
			return 0
		}
		return int(b[0])<<8 | int(b[1])
	}
	const tcpListen = "0A"
	return tcpSocket{localPort: port(f[1]), remotePort: port(f[2]), listening: f[3] == tcpListen}, f[9], true
}

// setNoDelay sets TCP_NODELAY on the sockets of process pid that match,
// and returns how many it set.
func setNoDelay(pid int, match func(tcpSocket) bool) (int, error) {
	socks, err := tcpSockets(pid)
	if err != nil {
		return 0, err
	}
	var pidfd = -1
	defer func() {
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
	}()
	n := 0
	for _, s := range socks {
		if !match(s) {
			continue
		}
		if pidfd < 0 {
			if pidfd, err = unix.PidfdOpen(pid, 0); err != nil {
				return n, fmt.Errorf("pidfd_open %d: %w", pid, err)
			}
		}
		fd, err := unix.PidfdGetfd(pidfd, s.fd, 0)
		if err != nil {
			return n, fmt.Errorf("pidfd_getfd %d/%d: %w", pid, s.fd, err)
		}
		err = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		unix.Close(fd)
		if err != nil {
			return n, fmt.Errorf("set TCP_NODELAY on %d/%d: %w", pid, s.fd, err)
		}
		n++
	}
	return n, nil
}

// noDelayOut sets TCP_NODELAY on the source QEMU's connections to the
// destination as they appear: the main channel at the start, the
// postcopy-preempt channel when QEMU opens it (v.mu held); once all are
// set it reads /proc no more. A failure is logged once and not retried.
func (d *Driver) noDelayOut(v *vm, out *outgoing) {
	if out.destPort == 0 || out.noDelay == nil || len(out.noDelay) >= out.channels {
		return
	}
	_, err := setNoDelay(v.st.PID, func(s tcpSocket) bool {
		if s.listening || s.remotePort != out.destPort || out.noDelay[s.fd] {
			return false
		}
		out.noDelay[s.fd] = true
		return true
	})
	if err != nil {
		d.log.Warn("could not turn off Nagle's algorithm on the migration's connections: post-copy pages may wait for delayed ACKs",
			"vm", v.st.Launch.Spec.Name, "err", err)
		out.noDelay = nil
	}
}
