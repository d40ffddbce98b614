package guestlog

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseHeartbeat(t *testing.T) {
	for _, tt := range []struct {
		line string
		ok   bool
		want Heartbeat
	}{
		{"godwit-guest hb=12 up_ms=2400 cpus=2 mem_mib=236 disk_mib=64 disk_rec=3 disk_bad=1", true,
			Heartbeat{Counter: 12, UpMS: 2400, CPUs: 2, MemMiB: 236, DiskMiB: 64, DiskRecords: 3, DiskBad: 1}},
		{"\x1b[0mgodwit-guest hb=1 up_ms=0 cpus=1 mem_mib=100 disk_mib=0 disk_rec=0 disk_bad=0\r", true,
			Heartbeat{Counter: 1, CPUs: 1, MemMiB: 100}},
		{"godwit-guest hb=7 up_ms=1400 cpus=1 mem_mib=180 disk_mib=0 disk_rec=0 disk_bad=0 mem_bad=12", true,
			Heartbeat{Counter: 7, UpMS: 1400, CPUs: 1, MemMiB: 180, MemBad: 12}},
		{"godwit-guest hb=8 up_ms=1600 cpus=1 mem_mib=180 disk_mib=0 disk_rec=0 disk_bad=0 mem_bad=0 hot_mib=96", true,
			Heartbeat{Counter: 8, UpMS: 1600, CPUs: 1, MemMiB: 180, HotMiB: 96}},
		{"godwit-guest hb=9 up_ms=1800 cpus=1 mem_mib=180 disk_mib=64 disk_rec=2 disk_bad=0 mem_bad=0 hot_mib=0 ip=10.99.0.5", true,
			Heartbeat{Counter: 9, UpMS: 1800, CPUs: 1, MemMiB: 180, DiskMiB: 64, DiskRecords: 2, IP: "10.99.0.5"}},
		{"godwit-guest hb=9 up_ms=1800 cpus=1 mem_mib=180 disk_mib=0 disk_rec=0 disk_bad=0 mem_bad=0 hot_mib=0 ip=none", true,
			Heartbeat{Counter: 9, UpMS: 1800, CPUs: 1, MemMiB: 180}},
		{"godwit-guest hb=9 up_ms=1800 cpus=1 mem_mib=180 disk_mib=0 disk_rec=0 disk_bad=0 ip=10.99.0", false, Heartbeat{}},
		{"godwit-guest hb=3 up_ms=10 cpus=1", false, Heartbeat{}},
		{"godwit-guest start cmdline=console=ttyS0", false, Heartbeat{}},
		{"[    0.000000] Linux version 6.1", false, Heartbeat{}},
		{"godwit-guest hb=x up_ms=1 cpus=1 mem_mib=1 disk_mib=1 disk_rec=1 disk_bad=0", false, Heartbeat{}},
	} {
		got, ok := Parse(tt.line)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
	log := "boot\ngodwit-guest hb=1 up_ms=0 cpus=1 mem_mib=1 disk_mib=0 disk_rec=0 disk_bad=0\n" +
		"godwit-guest hb=2 up_ms=200 cpus=1 mem_mib=1 disk_mib=0 disk_rec=0 disk_bad=0\ngodwit-guest hb=3 up"
	if hb, ok := Last(strings.NewReader(log)); !ok || hb.Counter != 2 {
		t.Errorf("LastHeartbeat = %+v, %v; want counter 2", hb, ok)
	}
}

func TestCheck(t *testing.T) {
	line := func(n int, extra string) string {
		return fmt.Sprintf("godwit-guest hb=%d up_ms=0 cpus=1 mem_mib=100 disk_mib=64 disk_rec=3 %s\n", n, extra)
	}
	healthy := "[    0.1] booting\n" + line(1, "disk_bad=0 mem_bad=0") + line(2, "disk_bad=0 mem_bad=0") + line(3, "disk_bad=0 mem_bad=0")
	h := Check([]byte(healthy))
	if h.Beats != 3 || h.First.Counter != 1 || h.Last.Counter != 3 || len(h.Problems(0)) != 0 {
		t.Fatalf("healthy console: %+v, problems %v", h, h.Problems(0))
	}
	if p := h.Problems(2); len(p) != 1 || !strings.Contains(p[0], "restarted (1 after 2)") {
		t.Errorf("counter behind its source's: %v", p)
	}
	for _, tt := range []struct {
		name, console, want string
	}{
		{"oops", line(1, "disk_bad=0") + "[   9.1] Oops: general protection fault, probably for non-canonical address\n" + line(2, "disk_bad=0"), `console shows "[   9.1] Oops: general`},
		{"end trace", line(1, "disk_bad=0") + "---[ end trace 0000000000000000 ]---\n", "end trace"},
		{"go runtime", line(1, "disk_bad=0") + "fatal error: bad sweepgen in refill\n", "bad sweepgen"},
		{"restart", line(5, "disk_bad=0") + line(6, "disk_bad=0") + line(1, "disk_bad=0"), "restarted 1 time"},
		{"skip", line(5, "disk_bad=0") + line(9, "disk_bad=0"), "3 heartbeat(s) missing"},
		{"mem_bad", line(1, "disk_bad=0 mem_bad=0") + line(2, "disk_bad=0 mem_bad=7"), "7 page(s)"},
		{"disk_bad", line(1, "disk_bad=2"), "2 disk record(s)"},
	} {
		p := Check([]byte(tt.console)).Problems(0)
		if !strings.Contains(strings.Join(p, "; "), tt.want) {
			t.Errorf("%s: problems %v; want %q", tt.name, p, tt.want)
		}
	}
}
