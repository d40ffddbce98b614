package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/seed"
)

func seedImage(t *testing.T) []byte {
	t.Helper()
	img, err := seed.Build(seed.Config{InstanceID: "i-1", Hostname: "h", NICs: []seed.NIC{{MAC: "02:00:00:00:00:01", Address: "10.0.0.2/24"}}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// The guest tells its seed from its data disk by the cidata primary
// volume descriptor.
func TestFindSeed(t *testing.T) {
	dir := t.TempDir()
	data, short, iso := filepath.Join(dir, "vda"), filepath.Join(dir, "vdb"), filepath.Join(dir, "vdc")
	disk := make([]byte, 1<<20)
	encodeRecord(disk[8*recSize:], 8, 1) // a record where a seed has its descriptor
	for path, b := range map[string][]byte{data: disk, short: []byte("tiny"), iso: seedImage(t)} {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := findSeed([]string{data, short, iso}); got != iso {
		t.Errorf("findSeed = %q; want %q", got, iso)
	}
	if got := findSeed([]string{data, short, filepath.Join(dir, "missing")}); got != "" {
		t.Errorf("findSeed without a seed = %q", got)
	}
	img := seedImage(t)
	pvd := img[pvdOffset : pvdOffset+72]
	if !isSeedPVD(pvd) {
		t.Error("the seed's descriptor is not taken for a seed")
	}
	other := append([]byte(nil), pvd...)
	copy(other[40:], "CONFIG-2")
	if isSeedPVD(other) {
		t.Error("a volume labelled CONFIG-2 is taken for a seed")
	}
}

func TestLessIfName(t *testing.T) {
	names := []string{"eth10", "eth2", "eth0", "eth1"}
	sort.Slice(names, func(i, j int) bool { return lessIfName(names[i], names[j]) })
	if fmt.Sprint(names) != "[eth0 eth1 eth2 eth10]" {
		t.Errorf("sorted %v", names)
	}
}

func TestHeartbeatIP(t *testing.T) {
	a := netip.MustParsePrefix("10.99.0.5/24")
	for _, tt := range []struct {
		nics []nic
		want string
	}{
		{nil, "none"},
		{[]nic{{name: "eth0"}, {name: "eth1", addr: a}}, "none"}, // eth0 failed: no address of another NIC
		{[]nic{{name: "eth0", addr: a}}, "10.99.0.5"},
	} {
		if got := heartbeatIP(tt.nics); got != tt.want {
			t.Errorf("heartbeatIP(%v) = %q; want %q", tt.nics, got, tt.want)
		}
	}
}

func TestChecksum16(t *testing.T) {
	// The IPv4 header example of RFC 1071's users: checksum 0xb861.
	h := []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	if got := checksum16(h, 0); got != 0xb861 {
		t.Errorf("checksum %#x; want 0xb861", got)
	}
}

func TestSpoofFrames(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:0a:63:00:05")
	ip := [4]byte{10, 99, 0, 5}
	if m, a := spoofSource(spoofMAC, mac, ip); m.String() != "02:00:0a:63:00:fa" || a != ip {
		t.Errorf("spoof=mac sends from %s %v", m, a)
	}
	if m, a := spoofSource(spoofIP, mac, ip); m.String() != mac.String() || a != [4]byte{10, 99, 0, 105} {
		t.Errorf("spoof=ip sends from %s %v", m, a)
	}
	if mac.String() != "02:00:0a:63:00:05" {
		t.Error("spoofSource changed the NIC's MAC")
	}

	arp := arpFrame(mac, ip)
	if len(arp) != 42 || net.HardwareAddr(arp[0:6]).String() != "ff:ff:ff:ff:ff:ff" || net.HardwareAddr(arp[6:12]).String() != mac.String() ||
		binary.BigEndian.Uint16(arp[12:]) != 0x0806 || binary.BigEndian.Uint16(arp[20:]) != 1 ||
		net.HardwareAddr(arp[22:28]).String() != mac.String() || net.IP(arp[28:32]).String() != "10.99.0.5" || net.IP(arp[38:42]).String() != "10.99.0.5" {
		t.Errorf("gratuitous ARP % x", arp)
	}

	payload := []byte("godwit-spoof mode=ip seq=7")
	f := udpFrame(mac, ip, payload)
	h, u := f[14:34], f[34:]
	if binary.BigEndian.Uint16(f[12:]) != 0x0800 || h[0] != 0x45 || h[9] != 17 || int(binary.BigEndian.Uint16(h[2:])) != len(f)-14 ||
		net.IP(h[12:16]).String() != "10.99.0.5" || net.IP(h[16:20]).String() != "255.255.255.255" {
		t.Errorf("IPv4 header % x", h)
	}
	if checksum16(h, 0) != 0 {
		t.Error("IPv4 header checksum does not verify")
	}
	pseudo := uint32(10<<8|99) + uint32(0<<8|5) + 0xffff + 0xffff + 17 + uint32(len(u))
	if binary.BigEndian.Uint16(u[2:]) != 7778 || int(binary.BigEndian.Uint16(u[4:])) != len(u) || checksum16(u, pseudo) != 0 {
		t.Errorf("UDP header % x does not verify", u[:8])
	}
	if string(u[8:]) != string(payload) {
		t.Errorf("payload %q", u[8:])
	}
}

// Each connection gets its own stream from seq=1, a line every 10 ms;
// closing the listener ends serveStream.
func TestStream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { serveStream(ln, time.Now()); close(done) }()
	for conn := 0; conn < 2; conn++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		begin := time.Now()
		for want := int64(1); want <= 20; want++ {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			var seq, up int64
			if _, err := fmt.Sscanf(line, "godwit-stream seq=%d up_ms=%d\n", &seq, &up); err != nil || seq != want {
				t.Fatalf("connection %d: line %q; want seq=%d", conn, line, want)
			}
		}
		if d := time.Since(begin); d < 150*time.Millisecond {
			t.Errorf("20 lines in %v; want one every 10 ms", d)
		}
		c.Close()
	}
	ln.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("serveStream still runs after its listener closed")
	}
}
