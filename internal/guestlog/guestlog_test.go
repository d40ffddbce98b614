package guestlog

import (
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
