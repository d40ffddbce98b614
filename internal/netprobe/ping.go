// Package netprobe measures what a client outside a VM sees of it, for
// instance while it is live-migrated: Ping sends ICMP echo requests at a
// steady rate and finds the longest silence between replies (the
// client-observed blackout); Follow reads the test guest's TCP stream and
// says whether the connection survived and how long it stalled.
//
// Probes are independent: several may run at once in one process, each
// against its own VM, without counting each other's replies.
package netprobe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PingResult is what Ping saw.
type PingResult struct {
	Sent     int // echo requests sent (or attempted: see SendErrors) before the context ended
	Received int // distinct replies received before the context ended
	Lost     int // Sent - Received

	// LongestGap is the longest time between two consecutive replies;
	// GapStart is when it began (the reply before it). Both are zero with
	// fewer than two replies. Time before the first reply is
	// FirstReplyAfter, time after the last SinceLastReply.
	LongestGap time.Duration
	GapStart   time.Time

	// FirstReplyAfter is the time from the first request to the first
	// reply; zero with no reply.
	FirstReplyAfter time.Duration
	// SinceLastReply is the time from the last reply (or, with none, from
	// the first request) to the end: a blackout still going on when the
	// probe ended shows here, not in LongestGap.
	SinceLastReply time.Duration

	// SendErrors counts requests the kernel refused to send (no route,
	// for instance); they count as sent and lost. SendErr is the last
	// such error.
	SendErrors int
	SendErr    string

	Interval time.Duration // between requests
}

// String is a one-line summary, e.g.
// "ping: 2000 sent, 1995 replies, longest gap 72ms".
func (r PingResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ping: %d sent, %s", r.Sent, count(r.Received, "reply", "replies"))
	if r.Received > 1 {
		fmt.Fprintf(&b, ", longest gap %s", ms(r.LongestGap))
	}
	if r.Sent > 0 && r.Received > 0 && r.SinceLastReply > r.LongestGap && r.SinceLastReply > 2*r.Interval {
		fmt.Fprintf(&b, ", no reply for the last %s", ms(r.SinceLastReply))
	}
	if r.SendErrors > 0 {
		fmt.Fprintf(&b, " (%d send errors: %s)", r.SendErrors, r.SendErr)
	}
	return b.String()
}

// count is "1 reply", "2 replies".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// ms rounds d to the millisecond for people to read.
func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// recvTimeout bounds how long the receiving loop is blind to the context.
const recvTimeout = 20 * time.Millisecond

// icmpFilter is Linux's ICMP_FILTER socket option (level SOL_RAW): a mask
// of the ICMP types a raw socket does not want.
const icmpFilter = 1

const (
	icmpEchoReply   = 0
	icmpEchoRequest = 8
	tokenLen        = 8 // payload: the probe's random token
)

// Ping sends ICMP echo requests to addr (an IPv4 address or a name that
// resolves to one) every interval until ctx is done, over a raw ICMP
// socket, and records each reply's arrival. It needs root or
// CAP_NET_RAW; without, the error wraps syscall.EPERM (errors.Is(err,
// os.ErrPermission) holds). Replies that arrive after ctx is done do not
// count. Ping returns an error only when it cannot start; requests the
// kernel refuses to send are counted in the result.
func Ping(ctx context.Context, addr string, interval time.Duration) (PingResult, error) {
	res := PingResult{Interval: interval}
	if interval <= 0 {
		return res, fmt.Errorf("ping: interval must be positive, not %s", interval)
	}
	dst, err := resolve4(ctx, addr)
	if err != nil {
		return res, fmt.Errorf("ping %s: %w", addr, err)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.IPPROTO_ICMP)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return res, fmt.Errorf("ping %s: raw ICMP socket: %w (needs root or CAP_NET_RAW)", addr, err)
		}
		return res, fmt.Errorf("ping %s: raw ICMP socket: %w", addr, err)
	}
	defer syscall.Close(fd)
	// Only echo replies, not the echo requests the socket also sees on
	// loopback nor other ICMP traffic. Best effort: the parser checks the
	// type anyway.
	_ = syscall.SetsockoptInt(fd, syscall.SOL_RAW, icmpFilter, int(^uint32(1<<icmpEchoReply)))
	tv := syscall.NsecToTimeval(recvTimeout.Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return res, fmt.Errorf("ping %s: receive timeout: %w", addr, err)
	}

	p := &pinger{dst: dst, interval: interval, start: time.Now()}
	var rnd [2 + tokenLen]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return res, fmt.Errorf("ping %s: %w", addr, err)
	}
	p.id = binary.BigEndian.Uint16(rnd[:2])
	copy(p.token[:], rnd[2:])

	recvDone := make(chan error, 1)
	go func() { recvDone <- p.receive(ctx, fd) }()

	to := &syscall.SockaddrInet4{Addr: dst.As4()}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var recvErr error
send:
	for ctx.Err() == nil {
		p.mu.Lock()
		n := p.sent
		p.sent++
		p.mu.Unlock()
		if err := syscall.Sendto(fd, echoRequest(p.id, uint16(n), p.token[:]), 0, to); err != nil {
			p.mu.Lock()
			p.sendErrors++
			p.sendErr = err
			p.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		case recvErr = <-recvDone:
			recvDone = nil
			break send
		}
	}
	end := time.Now()
	if recvDone != nil {
		recvErr = <-recvDone // the receiver sees ctx within recvTimeout
	}
	res = p.result(end)
	if recvErr != nil {
		return res, fmt.Errorf("ping %s: %w", addr, recvErr)
	}
	return res, nil
}

// resolve4 turns addr into one IPv4 address.
func resolve4(ctx context.Context, addr string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(addr); err == nil {
		ip = ip.Unmap()
		if !ip.Is4() {
			return netip.Addr{}, errors.New("not an IPv4 address")
		}
		return ip, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", addr)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(ips) == 0 {
		return netip.Addr{}, errors.New("no IPv4 address")
	}
	return ips[0].Unmap(), nil
}

// pinger is one Ping's state, shared by its sending and receiving loops.
type pinger struct {
	dst      netip.Addr
	id       uint16
	token    [tokenLen]byte
	interval time.Duration
	start    time.Time

	mu         sync.Mutex
	sent       int      // requests sent; the next one's number
	replied    []uint64 // bit n: request n was answered
	received   int
	firstReply time.Time
	lastReply  time.Time
	longest    time.Duration
	gapStart   time.Time
	sendErrors int
	sendErr    error
}

// receive reads replies until ctx is done; it returns an error only when
// the socket fails.
func (p *pinger) receive(ctx context.Context, fd int) error {
	buf := make([]byte, 1<<16)
	for {
		n, from, err := syscall.Recvfrom(fd, buf, 0)
		now := time.Now()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR {
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		if sa, ok := from.(*syscall.SockaddrInet4); !ok || netip.AddrFrom4(sa.Addr) != p.dst {
			continue
		}
		seq, ok := parseEchoReply(buf[:n], p.id, p.token[:])
		if !ok {
			continue
		}
		p.reply(seq, now)
	}
}

// reply records the reply to the latest request numbered seq (mod 2^16),
// unless that request was answered already.
func (p *pinger) reply(seq uint16, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.sent - 1
	n := last - int(uint16(last)-seq)
	if last < 0 || n < 0 {
		return
	}
	for len(p.replied) <= n/64 {
		p.replied = append(p.replied, 0)
	}
	bit := uint64(1) << (n % 64)
	if p.replied[n/64]&bit != 0 {
		return // a duplicate
	}
	p.replied[n/64] |= bit
	p.received++
	if p.lastReply.IsZero() {
		p.firstReply = at
	} else if gap := at.Sub(p.lastReply); gap > p.longest {
		p.longest, p.gapStart = gap, p.lastReply
	}
	p.lastReply = at
}

func (p *pinger) result(end time.Time) PingResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := PingResult{
		Sent:       p.sent,
		Received:   p.received,
		Lost:       p.sent - p.received,
		LongestGap: p.longest,
		GapStart:   p.gapStart,
		SendErrors: p.sendErrors,
		Interval:   p.interval,
	}
	if p.sendErr != nil {
		r.SendErr = p.sendErr.Error()
	}
	if p.received > 0 {
		r.FirstReplyAfter = p.firstReply.Sub(p.start)
		r.SinceLastReply = end.Sub(p.lastReply)
	} else {
		r.SinceLastReply = end.Sub(p.start)
	}
	return r
}

// echoRequest builds an ICMP echo request carrying payload.
func echoRequest(id, seq uint16, payload []byte) []byte {
	b := make([]byte, 8+len(payload))
	b[0] = icmpEchoRequest
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], payload)
	binary.BigEndian.PutUint16(b[2:], checksum(b))
	return b
}

// parseEchoReply checks that pkt (an IPv4 packet, as a raw socket
// receives it) is an intact echo reply with identifier id carrying
// payload, and returns its sequence number.
func parseEchoReply(pkt []byte, id uint16, payload []byte) (seq uint16, ok bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != syscall.IPPROTO_ICMP {
		return 0, false
	}
	hl := int(pkt[0]&0x0f) * 4
	if hl < 20 || len(pkt) < hl+8 {
		return 0, false
	}
	icmp := pkt[hl:]
	if tl := int(binary.BigEndian.Uint16(pkt[2:])); tl >= hl+8 && tl < len(pkt) {
		icmp = pkt[hl:tl] // drop any link-layer padding
	}
	if icmp[0] != icmpEchoReply || icmp[1] != 0 || checksum(icmp) != 0 ||
		binary.BigEndian.Uint16(icmp[4:]) != id || len(icmp) < 8+len(payload) ||
		string(icmp[8:8+len(payload)]) != string(payload) {
		return 0, false
	}
	return binary.BigEndian.Uint16(icmp[6:]), true
}

// checksum is the Internet checksum (RFC 1071) of b; over a packet that
// carries its checksum, it is 0 when the packet is intact.
func checksum(b []byte) uint16 {
	var sum uint32
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
