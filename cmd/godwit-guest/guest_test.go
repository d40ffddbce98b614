package main

import (
	"sync/atomic"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want config
	}{
		{"console=ttyS0 quiet", config{hbHz: 5}},
		{"dirty_mb=256 dirty_rate_mb=100 hb_hz=20", config{dirtyMiB: 256, dirtyRateMB: 100, hbHz: 20}},
		{"dirty_mb=-1 dirty_rate_mb=x hb_hz=0", config{hbHz: 5}},
		{"hb_hz=5000", config{hbHz: 5}},
		{"panic=-1 panic_after_s=3", config{hbHz: 5, panicAfterS: 3}},
		{"spoof=mac hb_hz=10", config{hbHz: 10, spoof: spoofMAC}},
		{"spoof=ip", config{hbHz: 5, spoof: spoofIP}},
		{"spoof=yes spoof=", config{hbHz: 5}},
		{"marker=GODWIT-MARKER-ab12", config{hbHz: 5, marker: "GODWIT-MARKER-ab12"}},
	} {
		if got := parseCmdline(tt.in); got != tt.want {
			t.Errorf("parseCmdline(%q) = %+v; want %+v", tt.in, got, tt.want)
		}
	}
}

func TestPagesPerTickKeepsTheRate(t *testing.T) {
	for _, rate := range []int{1, 50, 100, 300} {
		var carry float64
		total := 0
		ticks := int(10 * 1e9 / float64(dirtyTick)) // ten seconds
		for i := 0; i < ticks; i++ {
			total += pagesPerTick(rate, &carry)
		}
		got := float64(total*pageSize) / 10 / 1e6
		if got < float64(rate)*0.999 || got > float64(rate)*1.001 {
			t.Errorf("rate %d MB/s dirtied %.3f MB/s", rate, got)
		}
	}
}

func TestFillLeavesNoZeroPageAndCounts(t *testing.T) {
	mem := make([]byte, 3<<20)
	var filled atomic.Int64
	fill(mem, &filled)
	if got := filled.Load(); got != 3 {
		t.Fatalf("filled %d MiB of 3", got)
	}
	for p := 0; p < len(mem)/pageSize; p++ {
		if mem[p*pageSize] != 1 {
			t.Fatalf("page %d starts with %d, want 1 (what the dirty loop checks first)", p, mem[p*pageSize])
		}
	}
	for i, b := range mem {
		if b != byte(i)|1 {
			t.Fatalf("byte %d is %d, want %d", i, b, byte(i)|1)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	b := make([]byte, recSize)
	encodeRecord(b, 42, 7)
	if present, ok := verifyRecord(b, 42); !present || !ok {
		t.Fatalf("fresh record: present %v ok %v", present, ok)
	}
	if _, ok := verifyRecord(b, 43); ok {
		t.Error("record 42 verified as record 43")
	}
	b[100] ^= 1
	if present, ok := verifyRecord(b, 42); !present || ok {
		t.Errorf("corrupted record: present %v ok %v; want present, not ok", present, ok)
	}
	if present, _ := verifyRecord(make([]byte, recSize), 0); present {
		t.Error("zero block counted as a record")
	}
}
