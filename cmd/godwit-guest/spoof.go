package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// The port-security test's knob (spoof=mac or spoof=ip on the kernel
// command line): once a second the guest sends, from its first NIC, a
// gratuitous ARP and a UDP datagram to 255.255.255.255:spoofPort, as
// broadcast Ethernet frames from a raw AF_PACKET socket. spoof=mac sends
// them from its own address but another MAC (its own with the last byte
// flipped), spoof=ip from its own MAC but another address (its own plus
// 100 in the last octet). A host with port security drops both.
const (
	spoofMAC  = "mac"
	spoofIP   = "ip"
	spoofPort = 7778
)

const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
)

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// spoofSource returns the MAC and IPv4 address mode sends from.
func spoofSource(mode string, mac net.HardwareAddr, ip [4]byte) (net.HardwareAddr, [4]byte) {
	m := append(net.HardwareAddr(nil), mac...)
	switch mode {
	case spoofMAC:
		m[5] ^= 0xff
	case spoofIP:
		ip[3] += 100
	}
	return m, ip
}

// arpFrame is a gratuitous ARP request: who-has ip, tell ip, from mac,
// to the broadcast address.
func arpFrame(mac net.HardwareAddr, ip [4]byte) []byte {
	f := make([]byte, 14+28)
	copy(f[0:], broadcastMAC)
	copy(f[6:], mac)
	binary.BigEndian.PutUint16(f[12:], etherTypeARP)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:], 1) // hardware: Ethernet
	binary.BigEndian.PutUint16(a[2:], etherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1) // request
	copy(a[8:], mac)
	copy(a[14:], ip[:])
	// target hardware address: zero
	copy(a[24:], ip[:])
	return f
}

// udpFrame is a UDP datagram from ip:spoofPort to
// 255.255.255.255:spoofPort in a broadcast Ethernet frame from mac.
func udpFrame(mac net.HardwareAddr, ip [4]byte, payload []byte) []byte {
	f := make([]byte, 14+20+8+len(payload))
	copy(f[0:], broadcastMAC)
	copy(f[6:], mac)
	binary.BigEndian.PutUint16(f[12:], etherTypeIPv4)
	h := f[14:34]
	h[0] = 0x45 // IPv4, 20-byte header
	binary.BigEndian.PutUint16(h[2:], uint16(20+8+len(payload)))
	h[8] = 64 // TTL
	h[9] = syscall.IPPROTO_UDP
	copy(h[12:], ip[:])
	copy(h[16:], []byte{255, 255, 255, 255})
	binary.BigEndian.PutUint16(h[10:], checksum16(h, 0))
	u := f[34:]
	binary.BigEndian.PutUint16(u[0:], spoofPort)
	binary.BigEndian.PutUint16(u[2:], spoofPort)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(u[8:], payload)
	// The checksum covers a pseudo header: addresses, protocol, length.
	pseudo := uint32(0)
	for i := 12; i < 20; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	pseudo += syscall.IPPROTO_UDP + uint32(len(u))
	sum := checksum16(u, pseudo)
	if sum == 0 {
		sum = 0xffff // zero means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(u[6:], sum)
	return f
}

// checksum16 is the Internet checksum of b, starting from sum.
func checksum16(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// spoof sends the spoofed frames for mode once a second from n, forever.
func spoof(mode string, n nic, log io.Writer) {
	if n.index == 0 || !n.addr.IsValid() || !n.addr.Addr().Is4() {
		fmt.Fprintf(log, "godwit-guest spoof=%s: no configured IPv4 NIC, sending nothing\n", mode)
		return
	}
	mac, ip := spoofSource(mode, n.mac, n.addr.Addr().As4())
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, 0) // 0: receives nothing
	if err != nil {
		fmt.Fprintf(log, "godwit-guest spoof=%s: packet socket: %v\n", mode, err)
		return
	}
	defer syscall.Close(fd)
	fmt.Fprintf(log, "godwit-guest spoof=%s: sending ARP and UDP to :%d from %s %s on %s every second\n",
		mode, spoofPort, mac, netip.AddrFrom4(ip), n.name)
	to := func(proto uint16) *syscall.SockaddrLinklayer {
		sa := &syscall.SockaddrLinklayer{Protocol: htons(proto), Ifindex: n.index, Halen: 6}
		copy(sa.Addr[:], broadcastMAC)
		return sa
	}
	failed := false
	for seq := 1; ; seq++ {
		payload := fmt.Appendf(nil, "godwit-spoof mode=%s seq=%d", mode, seq)
		err1 := syscall.Sendto(fd, arpFrame(mac, ip), 0, to(etherTypeARP))
		err2 := syscall.Sendto(fd, udpFrame(mac, ip, payload), 0, to(etherTypeIPv4))
		if (err1 != nil || err2 != nil) && !failed {
			failed = true // say it once, keep trying
			fmt.Fprintf(log, "godwit-guest spoof=%s: send: arp %v, udp %v\n", mode, err1, err2)
		}
		time.Sleep(time.Second)
	}
}
