// Package guestlog parses what the test guest (cmd/godwit-guest) prints on
// its serial console: the heartbeat lines that tests, the fake driver and
// benchmarks read to see that a guest runs, and whether it rebooted.
package guestlog

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Heartbeat is one line the test guest prints:
//
//	godwit-guest hb=12 up_ms=2400 cpus=1 mem_mib=236 disk_mib=64 disk_rec=3 disk_bad=0 mem_bad=0
type Heartbeat struct {
	Counter     int64
	UpMS        int64
	CPUs        int
	MemMiB      int
	DiskMiB     int
	DiskRecords int
	DiskBad     int
	// MemBad counts pages of the guest's dirty set found not holding what
	// the guest last wrote there: writes a migration lost.
	MemBad int64
	// HotMiB is how much of its dirty set the guest has filled (newer
	// guests only): it dirties at its set rate once the whole set is.
	HotMiB int64
}

// ParseHeartbeat parses one heartbeat line; ok is false for other lines.
func Parse(line string) (hb Heartbeat, ok bool) {
	i := strings.Index(line, "godwit-guest hb=")
	if i < 0 {
		return hb, false
	}
	seen := 0
	for _, f := range strings.Fields(line[i+len("godwit-guest "):]) {
		k, v, found := strings.Cut(f, "=")
		if !found {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return hb, false
		}
		switch k {
		case "hb":
			hb.Counter = n
		case "up_ms":
			hb.UpMS = n
		case "cpus":
			hb.CPUs = int(n)
		case "mem_mib":
			hb.MemMiB = int(n)
		case "disk_mib":
			hb.DiskMiB = int(n)
		case "disk_rec":
			hb.DiskRecords = int(n)
		case "disk_bad":
			hb.DiskBad = int(n)
		case "mem_bad":
			hb.MemBad = n // newer guests only: not counted in seen
			continue
		case "hot_mib":
			hb.HotMiB = n // newer guests only
			continue
		default:
			continue
		}
		seen++
	}
	// A line cut short by a reset or the read's end has fewer fields.
	return hb, seen == 7
}

// LastHeartbeat returns the last complete heartbeat line in r.
func Last(r io.Reader) (Heartbeat, bool) {
	var last Heartbeat
	found := false
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		if hb, ok := Parse(s.Text()); ok {
			last, found = hb, true
		}
	}
	return last, found
}

// First returns the first complete heartbeat line in r (zero if none).
func First(r io.Reader) Heartbeat {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		if hb, ok := Parse(s.Text()); ok {
			return hb
		}
	}
	return Heartbeat{}
}
