// Package guestlog parses what the test guest (cmd/godwit-guest) prints on
// its serial console: the heartbeat lines that tests, the fake driver and
// benchmarks read to see that a guest runs, and whether it rebooted.
package guestlog

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Heartbeat is one line the test guest prints:
//
//	godwit-guest hb=12 up_ms=2400 cpus=1 mem_mib=236 disk_mib=64 disk_rec=3 disk_bad=0 mem_bad=0 hot_mib=0 ip=10.99.0.5
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
	// IP is the address of the guest's first NIC, as its cloud-init seed
	// configured it (newer guests only); "" when it reported none.
	IP string
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
		if k == "ip" { // newer guests only: not counted in seen
			if v != "none" {
				a, err := netip.ParseAddr(v)
				if err != nil {
					return hb, false
				}
				hb.IP = a.String()
			}
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

// troubleMarkers are what a Linux kernel in trouble prints on its
// console (an oops, a BUG, a general protection fault, a panic, the end
// of a warning's or oops's trace), and what the Go runtime of the test
// guest's own program prints when it dies ("fatal error:", e.g. "bad
// sweepgen in refill" on memory a migration lost).
var troubleMarkers = []string{"Oops", "BUG:", "kernel BUG at", "general protection fault", "Kernel panic", "---[ end trace", "fatal error: "}

// Health is what a guest's console says of its health.
type Health struct {
	First, Last Heartbeat // the first and last complete heartbeats (zero: none)
	Beats       int       // complete heartbeat lines
	// Restarts counts the times the heartbeat counter went back: the
	// guest booted again (a reboot, or a panic with panic=-1).
	Restarts int
	// Skips counts heartbeats missing within one boot (a counter that
	// jumps by more than one): lines a move lost, or a guest that stopped
	// printing while its clock ran on.
	Skips int64
	// Trouble is the first line of kernel trouble on the console ("" when
	// none), and TroubleAt its byte offset.
	Trouble   string
	TroubleAt int
	// MemBad and DiskBad are the most pages of the dirty set and disk
	// records the guest ever reported wrong: writes lost.
	MemBad  int64
	DiskBad int
}

// Check reads a whole console log.
func Check(console []byte) Health {
	var h Health
	h.TroubleAt = -1
	for _, m := range troubleMarkers {
		if i := strings.Index(string(console), m); i >= 0 && (h.TroubleAt < 0 || i < h.TroubleAt) {
			h.TroubleAt = i
		}
	}
	if h.TroubleAt >= 0 {
		start := strings.LastIndexByte(string(console[:h.TroubleAt]), '\n') + 1
		line, _, _ := strings.Cut(string(console[start:]), "\n")
		h.Trouble = strings.TrimSpace(line)
	}
	s := bufio.NewScanner(strings.NewReader(string(console)))
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		hb, ok := Parse(s.Text())
		if !ok {
			continue
		}
		if h.Beats == 0 {
			h.First = hb
		} else if hb.Counter < h.Last.Counter {
			h.Restarts++
		} else if hb.Counter > h.Last.Counter+1 {
			h.Skips += hb.Counter - h.Last.Counter - 1
		}
		h.Last = hb
		h.Beats++
		h.MemBad = max(h.MemBad, hb.MemBad)
		h.DiskBad = max(h.DiskBad, hb.DiskBad)
	}
	return h
}

// Problems lists what is wrong with a guest that should have run on
// without a restart since a heartbeat counter of from (0: from its
// boot): trouble on its console, a restart, missing heartbeats, lost
// writes. Empty when healthy.
func (h Health) Problems(from int64) []string {
	var why []string
	if h.Trouble != "" {
		why = append(why, fmt.Sprintf("the console shows %q", h.Trouble))
	}
	if h.Restarts > 0 {
		why = append(why, fmt.Sprintf("the guest restarted %d time(s)", h.Restarts))
	}
	if h.Beats > 0 && h.First.Counter < from {
		why = append(why, fmt.Sprintf("the heartbeat counter restarted (%d after %d)", h.First.Counter, from))
	}
	if h.Skips > 0 {
		why = append(why, fmt.Sprintf("%d heartbeat(s) missing", h.Skips))
	}
	if h.MemBad > 0 {
		why = append(why, fmt.Sprintf("%d page(s) of the dirty set lost their last write (mem_bad)", h.MemBad))
	}
	if h.DiskBad > 0 {
		why = append(why, fmt.Sprintf("%d disk record(s) wrong (disk_bad)", h.DiskBad))
	}
	return why
}
