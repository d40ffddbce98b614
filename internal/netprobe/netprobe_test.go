package netprobe

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// needRaw skips a test that needs a raw ICMP socket when there is none.
func needRaw(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a raw ICMP socket (CAP_NET_RAW)")
	}
}

// ping runs Ping for d, skipping the test when raw sockets are refused.
func ping(t *testing.T, addr string, d, interval time.Duration) PingResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	r, err := Ping(ctx, addr, interval)
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("raw ICMP socket refused: %v", err)
	}
	if err != nil {
		t.Fatalf("Ping(%s): %v", addr, err)
	}
	t.Log(r)
	return r
}

func TestPingLoopback(t *testing.T) {
	needRaw(t)
	t.Parallel()
	r := ping(t, "127.0.0.1", 300*time.Millisecond, 10*time.Millisecond)
	if r.Received < 20 || r.Received > r.Sent || r.Lost != r.Sent-r.Received {
		t.Errorf("%d sent, %d received, %d lost: want ≥ 20 replies, none unsent", r.Sent, r.Received, r.Lost)
	}
	if r.LongestGap <= 0 || r.LongestGap >= 200*time.Millisecond || r.GapStart.IsZero() {
		t.Errorf("longest gap %s from %s, want in (0, 200ms)", r.LongestGap, r.GapStart)
	}
	if r.FirstReplyAfter <= 0 || r.FirstReplyAfter > 100*time.Millisecond {
		t.Errorf("first reply after %s", r.FirstReplyAfter)
	}
	if r.SendErrors != 0 {
		t.Errorf("%d send errors: %s", r.SendErrors, r.SendErr)
	}
	if r.Interval != 10*time.Millisecond {
		t.Errorf("interval %s, want 10ms", r.Interval)
	}
	if s := r.String(); !strings.HasPrefix(s, fmt.Sprintf("ping: %d sent, %d replies, longest gap ", r.Sent, r.Received)) {
		t.Errorf("String() = %q", s)
	}
}

// Probes at once, at different rates, each count their own replies only.
func TestPingConcurrent(t *testing.T) {
	needRaw(t)
	t.Parallel()
	var wg sync.WaitGroup
	rs := make([]PingResult, 3)
	for i := range rs {
		wg.Go(func() { rs[i] = ping(t, "127.0.0.1", 300*time.Millisecond, time.Duration(2*i+3)*time.Millisecond) })
	}
	wg.Wait()
	for i, r := range rs {
		if r.Received == 0 || r.Received > r.Sent {
			t.Errorf("probe %d: %d sent, %d received", i, r.Sent, r.Received)
		}
	}
}

// silentAddr is a documentation address (RFC 5737) that nobody answers:
// one not on a subnet of this machine, as sandboxes and CI runners
// sometimes number their own networks from them (192.0.2.0/24 here).
func silentAddr(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
next:
	for _, a := range []string{"198.51.100.1", "203.0.113.1", "192.0.2.1"} {
		ip := net.ParseIP(a)
		for _, ad := range addrs {
			if n, ok := ad.(*net.IPNet); ok && n.Contains(ip) {
				continue next
			}
		}
		return a
	}
	t.Skip("every TEST-NET is a local subnet")
	return ""
}

// Nobody answers: all lost, which is not an error.
func TestPingNoAnswer(t *testing.T) {
	needRaw(t)
	t.Parallel()
	r := ping(t, silentAddr(t), 200*time.Millisecond, 10*time.Millisecond)
	if r.Sent < 5 || r.Received != 0 || r.Lost != r.Sent {
		t.Errorf("%d sent, %d received, %d lost: want all lost", r.Sent, r.Received, r.Lost)
	}
	if r.LongestGap != 0 || r.SinceLastReply < 150*time.Millisecond {
		t.Errorf("longest gap %s, since last reply %s", r.LongestGap, r.SinceLastReply)
	}
	if s := r.String(); !strings.HasPrefix(s, fmt.Sprintf("ping: %d sent, 0 replies", r.Sent)) {
		t.Errorf("String() = %q", s)
	}
}

func TestPingBadArgs(t *testing.T) {
	ctx := context.Background()
	if _, err := Ping(ctx, "::1", 10*time.Millisecond); err == nil {
		t.Error("Ping(::1): no error for an IPv6 address")
	}
	if _, err := Ping(ctx, "127.0.0.1", 0); err == nil {
		t.Error("Ping with interval 0: no error")
	}
}

// reply packs an echo reply as a raw socket receives it: IPv4 header
// (with options when opts) and ICMP message.
func reply(typ byte, id, seq uint16, payload []byte, opts bool) []byte {
	icmp := echoRequest(id, seq, payload)
	icmp[0] = typ
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	hl := 20
	if opts {
		hl = 24
	}
	ip := make([]byte, hl, hl+len(icmp))
	ip[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(ip[2:], uint16(hl+len(icmp)))
	ip[8], ip[9] = 64, 1
	return append(ip, icmp...)
}

func TestParseEchoReply(t *testing.T) {
	token := []byte("12345678")
	other := []byte("87654321")
	for _, tt := range []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"ours", reply(icmpEchoReply, 7, 42, token, false), true},
		{"ours, IP options", reply(icmpEchoReply, 7, 42, token, true), true},
		{"ours, padded", append(reply(icmpEchoReply, 7, 42, token, false), 0, 0, 0), true},
		{"another probe's id", reply(icmpEchoReply, 8, 42, token, false), false},
		{"another probe's token", reply(icmpEchoReply, 7, 42, other, false), false},
		{"a request", reply(icmpEchoRequest, 7, 42, token, false), false},
		{"corrupt", func() []byte { b := reply(icmpEchoReply, 7, 42, token, false); b[len(b)-1] ^= 1; return b }(), false},
		{"short", reply(icmpEchoReply, 7, 42, token, false)[:26], false},
		{"no payload", reply(icmpEchoReply, 7, 42, nil, false), false},
	} {
		seq, ok := parseEchoReply(tt.pkt, 7, token)
		if ok != tt.ok || ok && seq != 42 {
			t.Errorf("%s: seq %d, ok %v; want ok %v", tt.name, seq, ok, tt.ok)
		}
	}
	if req := echoRequest(1, 2, token); checksum(req) != 0 {
		t.Errorf("echo request % x: checksum does not verify", req)
	}
}

// Late replies count, duplicates do not, sequence numbers wrap.
func TestPingerReply(t *testing.T) {
	t0 := time.Now()
	p := &pinger{start: t0, sent: 70000}
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	seq := func(n int) uint16 { return uint16(n) } // the sequence number of request n
	p.reply(seq(69990), at(10))
	p.reply(seq(69990), at(20)) // duplicate
	p.reply(seq(69999), at(100))
	p.reply(seq(69980), at(130)) // late, still a reply
	p.reply(seq(65530), at(140)) // from before seq wrapped to 0 (69999 is seq 4463)
	r := p.result(at(150))
	if r.Received != 4 || r.Lost != 70000-4 {
		t.Errorf("received %d, lost %d; want 4, %d", r.Received, r.Lost, 70000-4)
	}
	if r.LongestGap != 90*time.Millisecond || !r.GapStart.Equal(at(10)) {
		t.Errorf("longest gap %s from %s, want 90ms from +10ms", r.LongestGap, r.GapStart.Sub(t0))
	}
	if r.FirstReplyAfter != 10*time.Millisecond || r.SinceLastReply != 10*time.Millisecond {
		t.Errorf("first reply after %s, since last %s", r.FirstReplyAfter, r.SinceLastReply)
	}
	q := &pinger{start: t0, sent: 3}
	q.reply(5, at(1)) // never sent: maps to before the first request
	if q.received != 0 {
		t.Errorf("a reply to an unsent request counted")
	}
}

// streamServer serves one connection per script on a local port.
func streamServer(t *testing.T, script func(c net.Conn) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				script(c)
			})
		}
	})
	return ln.Addr().String()
}

// lines writes seqs from..to, one every 10 ms.
func lines(c net.Conn, start time.Time, from, to int) error {
	for seq := from; seq <= to; seq++ {
		if _, err := fmt.Fprintf(c, "godwit-stream seq=%d up_ms=%d\n", seq, time.Since(start).Milliseconds()); err != nil {
			return err
		}
		time.Sleep(StreamTick)
	}
	return nil
}

func follow(t *testing.T, addr string, d time.Duration) StreamResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	r, err := Follow(ctx, addr)
	if err != nil {
		t.Fatalf("Follow: %v", err)
	}
	t.Log(r)
	return r
}

func TestFollowPause(t *testing.T) {
	t.Parallel()
	addr := streamServer(t, func(c net.Conn) error {
		start := time.Now()
		if err := lines(c, start, 1, 15); err != nil {
			return err
		}
		time.Sleep(150 * time.Millisecond)
		return lines(c, start, 16, 1000)
	})
	r := follow(t, addr, 550*time.Millisecond)
	if !r.Survived || r.Err != "" || r.SeqBroken {
		t.Errorf("survived %v (%q), seq broken %v; want survived, seq intact", r.Survived, r.Err, r.SeqBroken)
	}
	if r.LongestGap < 130*time.Millisecond || r.LongestGap > 400*time.Millisecond || r.GapStart.IsZero() {
		t.Errorf("longest gap %s, want 130-400ms", r.LongestGap)
	}
	if r.Lines < 20 || r.LastSeq != r.Lines {
		t.Errorf("%d lines, last seq %d", r.Lines, r.LastSeq)
	}
	if s := r.String(); !strings.HasPrefix(s, fmt.Sprintf("stream: %d lines, survived, longest gap ", r.Lines)) {
		t.Errorf("String() = %q", s)
	}
}

func TestFollowClosed(t *testing.T) {
	t.Parallel()
	addr := streamServer(t, func(c net.Conn) error { return lines(c, time.Now(), 1, 10) })
	start := time.Now()
	r := follow(t, addr, 2*time.Second)
	if el := time.Since(start); el > time.Second {
		t.Errorf("Follow returned after %s, not when the connection closed", el)
	}
	if r.Survived || r.Err == "" || r.Lines != 10 || r.SeqBroken {
		t.Errorf("%+v: want broken after 10 lines, with a reason", r)
	}
	if s, want := r.String(), "stream: broken after 10 lines, longest gap "; !strings.HasPrefix(s, want) || !strings.HasSuffix(s, ": "+r.Err) {
		t.Errorf("String() = %q, want %q...: %s", s, want, r.Err)
	}
}

func TestFollowSkippedSeq(t *testing.T) {
	t.Parallel()
	addr := streamServer(t, func(c net.Conn) error {
		start := time.Now()
		if err := lines(c, start, 1, 5); err != nil {
			return err
		}
		return lines(c, start, 7, 1000)
	})
	r := follow(t, addr, 200*time.Millisecond)
	if !r.SeqBroken || !r.Survived || r.Lines < 10 {
		t.Errorf("%+v: want seq broken, survived", r)
	}
}

func TestFollowNotAStream(t *testing.T) {
	t.Parallel()
	addr := streamServer(t, func(c net.Conn) error {
		_, err := fmt.Fprintf(c, "godwit-stream seq=1 up_ms=0\nSSH-2.0-OpenSSH\n")
		var b [1]byte
		c.Read(b[:]) // until Follow hangs up
		return err
	})
	r := follow(t, addr, 2*time.Second)
	if r.Survived || !strings.Contains(r.Err, "not a stream line") || r.Lines != 1 {
		t.Errorf("%+v: want ended at the second line", r)
	}
	if s, want := r.String(), "stream: broken after 1 line: not a stream line: "; !strings.HasPrefix(s, want) {
		t.Errorf("String() = %q, want %q...", s, want)
	}
}

func TestFollowConnectFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Follow(context.Background(), addr); err == nil {
		t.Errorf("Follow(%s): no error with nobody listening", addr)
	}
}

func TestParseStreamLine(t *testing.T) {
	for line, want := range map[string]int{
		"godwit-stream seq=1 up_ms=0\n":       1,
		"godwit-stream seq=123 up_ms=45678\n": 123,
		"godwit-stream seq=1 up_ms=0":         -1,
		"godwit-stream seq= up_ms=0\n":        -1,
		"godwit-stream seq=x up_ms=0\n":       -1,
		"godwit-stream seq=1 up_ms=\n":        -1,
		"godwit-stream seq=1\n":               -1,
		"hello\n":                             -1,
	} {
		seq, ok := parseStreamLine([]byte(line))
		if !ok {
			seq = -1
		}
		if seq != want {
			t.Errorf("parseStreamLine(%q) = %d, want %d", line, seq, want)
		}
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(des)
}

// Ending the context ends a probe's goroutines and closes its sockets.
// Not parallel: it counts the process's goroutines and descriptors.
func TestNoLeaks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and never write: Follow blocks in a read
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			var b [1]byte
			c.Read(b[:]) // until Follow closes its end
		}
	}()
	// Let the runtime's own background goroutines start before counting.
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := Follow(ctx, ln.Addr().String()); err != nil {
			t.Error(err)
		}
	})
	if os.Geteuid() == 0 {
		wg.Go(func() {
			if _, err := Ping(ctx, "127.0.0.1", 10*time.Millisecond); err != nil && !errors.Is(err, os.ErrPermission) {
				t.Error(err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("probes did not return 2s after their context was done")
	}
	// The server goroutine ends once Follow's connection is closed.
	deadline := time.Now().Add(time.Second)
	for {
		g, f := runtime.NumGoroutine(), openFDs(t)
		if g <= goroutines-1 && f <= fds { // the server's goroutine ended too
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %d → %d, fds %d → %d", goroutines, g, fds, f)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A Report printed as JSON reads back as the results it was made of.
func TestReportRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	p := PingResult{Sent: 100, Received: 97, Lost: 3, Interval: 10 * time.Millisecond, LongestGap: 72500 * time.Microsecond,
		GapStart: t0.Add(time.Second), FirstReplyAfter: time.Millisecond, SinceLastReply: 4 * time.Millisecond}
	s := StreamResult{Lines: 90, LastSeq: 90, LongestGap: 81 * time.Millisecond, GapStart: t0.Add(time.Second), Survived: true}
	b, err := json.Marshal(NewReport("10.0.0.2", t0, t0.Add(2*time.Second), p, "10.0.0.2:7777", s))
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	gp, gs := r.Results()
	if gp != p || gs != s || r.DurationMS != 2000 {
		t.Errorf("read back\n %+v\n %+v\nwant\n %+v\n %+v\n(%s)", gp, gs, p, s, b)
	}
}
