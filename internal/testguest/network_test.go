package testguest_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/seed"
	"github.com/godwit/godwit/internal/testguest"
)

// The guest's NIC on QEMU's user network (slirp, in the QEMU process):
// 10.99.0.0/24 with QEMU as the gateway, restrict=on so nothing the guest
// sends leaves QEMU but the forwarded stream port.
const (
	guestMAC = "02:00:0a:63:00:05"
	guestIP  = "10.99.0.5"
)

func guestSeed() seed.Config {
	return seed.Config{
		InstanceID: "4f0a6c3e-9b1d-4e27-8c55-0d2e7a91b6f3",
		Hostname:   "net-guest",
		NICs:       []seed.NIC{{MAC: guestMAC, Address: guestIP + "/24", Gateway: "10.99.0.1", MTU: 1500}},
		UserData:   []byte("#cloud-config\n# godwit test guest\n"),
	}
}

func needQEMU(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a real guest")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (make test installs it)")
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img is not installed (make test installs it)")
	}
	out, _ := exec.Command("qemu-system-x86_64", "-netdev", "help").CombinedOutput()
	if !strings.Contains(string(out), "\nuser\n") {
		t.Skip("this QEMU is built without -netdev user (slirp), which the network tests use")
	}
}

// bootNetworked writes the seed and a 64 MiB data disk, and boots the
// guest with the seed as the first virtio disk, the data disk second and
// one virtio NIC on a user network whose traffic is dumped to a pcap
// file; hostfwd forwards 127.0.0.1:port to the guest's stream port.
func bootNetworked(t *testing.T, g testguest.Guest, cmdline string, port int) (console, pcap string) {
	t.Helper()
	dir := t.TempDir()
	iso, disk, pcap := filepath.Join(dir, "seed.iso"), filepath.Join(dir, "disk.qcow2"), filepath.Join(dir, "n0.pcap")
	if err := seed.WriteFile(iso, guestSeed()); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", disk, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	netdev := "user,id=n0,net=10.99.0.0/24,host=10.99.0.1,restrict=on"
	if port > 0 {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-%s:7777", port, guestIP)
	}
	console, _ = start(t, g, cmdline,
		"-drive", "file="+iso+",if=none,id=seed,format=raw,readonly=on", "-device", "virtio-blk-pci,drive=seed",
		"-drive", "file="+disk+",if=none,id=data,format=qcow2", "-device", "virtio-blk-pci,drive=data",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,mac="+guestMAC,
		"-object", "filter-dump,id=d0,netdev=n0,file="+pcap)
	return console, pcap
}

// The guest finds its seed, reads it through the kernel's isofs, takes
// its hostname and static address from it, keeps the seed apart from its
// data disk, and serves the stream through QEMU's forwarded port.
func TestGuestNetworkFromSeed(t *testing.T) {
	needQEMU(t)
	g := testguest.ForTest(t)
	port := freePort(t)
	begin := time.Now()
	console, pcap := bootNetworked(t, g, g.Cmdline, port)
	hb := waitHeartbeat(t, console, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 1 })
	t.Logf("first heartbeat %.1fs after QEMU started: %+v", time.Since(begin).Seconds(), hb)
	if hb.IP != guestIP {
		t.Errorf("heartbeat reports ip %q; want %s", hb.IP, guestIP)
	}
	if hb.DiskMiB != 64 {
		t.Errorf("heartbeat reports disk_mib=%d; want the 64 MiB data disk, not the seed", hb.DiskMiB)
	}

	// What the guest read through its kernel is the seed's files, byte
	// for byte (it prints their SHA-256 prefixes, by name).
	files, err := seed.Files(guestSeed())
	if err != nil {
		t.Fatal(err)
	}
	var sums []string
	for name, b := range files {
		sum := sha256.Sum256(b)
		sums = append(sums, name+"="+hex.EncodeToString(sum[:8]))
	}
	sort.Strings(sums)
	b, _ := os.ReadFile(console)
	log := strings.ReplaceAll(string(b), "\r\n", "\n") // the serial console's line ends
	for _, want := range []string{
		"godwit-guest seed: /dev/vda " + strings.Join(sums, " ") + "\n",
		"godwit-guest seed: instance-id=" + guestSeed().InstanceID + " hostname=net-guest\n",
		"godwit-guest seed: eth0 mac=" + guestMAC + " addr=" + guestIP + "/24\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("console lacks %q", want)
		}
	}

	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "godwit-guest seed: read and applied") {
			t.Log(l)
		}
	}

	readStream(t, port, 50)
	for _, f := range frames(t, pcap) {
		if f.kind == "udp" || bytes.Equal(f.src, spoofedMAC()) || f.ip.Equal(net.ParseIP("10.99.0.105")) {
			t.Errorf("without spoof= on its command line the guest sent %s", f)
		}
	}
}

// readStream connects to the forwarded stream port (until the guest
// listens) and reads n lines, their seq counting 1, 2, ... n.
func readStream(t *testing.T, port, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			lastErr = err
			time.Sleep(500 * time.Millisecond)
			continue
		}
		begin := time.Now()
		got, err := readLines(c, n)
		c.Close()
		if got == 0 { // slirp accepted, but the guest did not answer yet
			lastErr = err
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("stream: %d good lines, then %v", got, err)
		}
		t.Logf("stream: %d lines, seq 1..%d, in %v", n, n, time.Since(begin).Round(time.Millisecond))
		return
	}
	t.Fatalf("no stream through 127.0.0.1:%d within 60s: %v", port, lastErr)
}

// readLines reads n stream lines from c and checks them; it returns how
// many were good.
func readLines(c net.Conn, n int) (int, error) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	prevUp := int64(-1)
	for i := 1; i <= n; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			return i - 1, err
		}
		var seq, up int64
		if _, err := fmt.Sscanf(line, "godwit-stream seq=%d up_ms=%d\n", &seq, &up); err != nil {
			return i - 1, fmt.Errorf("line %q: %w", line, err)
		}
		if seq != int64(i) || up < prevUp {
			return i - 1, fmt.Errorf("line %d is %q (seq %d, up_ms after %d)", i, strings.TrimSpace(line), seq, prevUp)
		}
		prevUp = up
	}
	return n, nil
}

// With spoof=mac the guest sends a gratuitous ARP and a broadcast UDP
// datagram from its own address but another MAC, with spoof=ip from its
// own MAC but another address.
func TestGuestSpoofsWhenAsked(t *testing.T) {
	needQEMU(t)
	g := testguest.ForTest(t)
	for _, tt := range []struct {
		mode string
		mac  net.HardwareAddr
		ip   net.IP
	}{
		{"mac", spoofedMAC(), net.ParseIP(guestIP).To4()},
		{"ip", mustMAC(guestMAC), net.ParseIP("10.99.0.105").To4()},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			console, pcap := bootNetworked(t, g, g.Cmdline+" spoof="+tt.mode, 0)
			hb := waitHeartbeat(t, console, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 1 })
			if hb.IP != guestIP {
				t.Errorf("heartbeat reports ip %q; want %s", hb.IP, guestIP)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				var spoofs []frame
				kinds := map[string]bool{}
				for _, f := range frames(t, pcap) {
					if bytes.Equal(f.src, tt.mac) && f.ip.Equal(tt.ip) {
						spoofs = append(spoofs, f)
						kinds[f.kind] = true
					}
				}
				if kinds["arp"] && kinds["udp"] {
					t.Logf("%d spoofed frames, e.g. %s", len(spoofs), spoofs[len(spoofs)-1])
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("no spoofed ARP and UDP from %s %s within 30s of the first heartbeat (saw %v)", tt.mac, tt.ip, spoofs)
				}
				time.Sleep(500 * time.Millisecond)
			}
		})
	}
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// spoofedMAC is the guest's MAC with the last byte flipped.
func spoofedMAC() net.HardwareAddr {
	m := mustMAC(guestMAC)
	m[5] ^= 0xff
	return m
}

type frame struct {
	kind    string // arp or udp
	src     net.HardwareAddr
	ip      net.IP
	payload string
}

func (f frame) String() string {
	return fmt.Sprintf("%s from %s %s %q", f.kind, f.src, f.ip, f.payload)
}

// frames reads the pcap file QEMU's filter-dump writes (both directions)
// and returns its ARP frames, with the sender's address, and its UDP
// datagrams to port 7778, with their source address.
func frames(t *testing.T, pcap string) []frame {
	t.Helper()
	b, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		t.Fatalf("%s is not a little-endian pcap file", pcap)
	}
	var out []frame
	for off := 24; off+16 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		if off+16+n > len(b) {
			break // being written
		}
		p := b[off+16 : off+16+n]
		off += 16 + n
		if len(p) < 14 {
			continue
		}
		f := frame{src: net.HardwareAddr(p[6:12])}
		switch binary.BigEndian.Uint16(p[12:]) {
		case 0x0806:
			if len(p) < 14+28 {
				continue
			}
			f.kind, f.ip = "arp", net.IP(p[14+14:14+18])
		case 0x0800:
			if len(p) < 14+28 || p[14+9] != 17 || binary.BigEndian.Uint16(p[14+22:]) != 7778 {
				continue
			}
			f.kind, f.ip, f.payload = "udp", net.IP(p[14+12:14+16]), string(p[14+28:])
		default:
			continue
		}
		out = append(out, f)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	port, _ := strconv.Atoi(p)
	return port
}
