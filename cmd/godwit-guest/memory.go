package main

import (
	"sync/atomic"
	"time"
)

const pageSize = 4096

// dirtyTick is how often the dirtier wakes; small enough that the rate
// is smooth as the migration's dirty tracking sees it.
const dirtyTick = 10 * time.Millisecond

// pagesPerTick is how many pages to dirty each tick for a rate in MB/s
// (10^6 bytes, as QEMU and the figures count), carrying the
// fraction over in *carry so the long-run rate is exact.
func pagesPerTick(rateMB int, carry *float64) int {
	want := float64(rateMB)*1e6*dirtyTick.Seconds()/pageSize + *carry
	n := int(want)
	*carry = want - float64(n)
	return n
}

// dirty allocates a working set of mib MiB, fills it so none of it is a
// zero page, then writes one byte per page, cycling through the set, at
// rateMB MB/s of pages. Each write first checks that the page still holds
// what this loop wrote there the cycle before: a page that does not was
// lost by a migration (its last write never reached the destination), and
// is counted in *bad, which the heartbeat reports as mem_bad.
//
// *filled counts the MiB filled so far (the heartbeat's hot_mib): until
// it reaches mib the guest writes memory as fast as it can, not at
// rateMB, so whoever measures the guest's dirty rate waits for it.
func dirty(mib, rateMB int, bad, filled *atomic.Int64) {
	if mib <= 0 {
		return
	}
	mem := make([]byte, mib<<20)
	fill(mem, filled)
	if rateMB <= 0 {
		select {} // keep the set resident and untouched
	}
	pages := len(mem) / pageSize
	tick := time.NewTicker(dirtyTick)
	defer tick.Stop()
	var carry float64
	p := 0
	prev, gen := byte(1), byte(2) // the fill left 1 at each page's start
	for range tick.C {
		for n := pagesPerTick(rateMB, &carry); n > 0; n-- {
			if mem[p*pageSize] != prev {
				bad.Add(1)
			}
			mem[p*pageSize] = gen
			if p++; p == pages {
				p, prev, gen = 0, gen, gen+1
			}
		}
	}
}

// fill writes the pattern every page starts the dirty loop with (byte i
// of a MiB is i|1, so a page's first byte is 1), a MiB at a time by
// copying the first: under TCG a byte loop over a large set takes tens of
// seconds, a copy a fraction of that.
func fill(mem []byte, filled *atomic.Int64) {
	const mib = 1 << 20
	first := mem[:mib]
	for i := range first {
		first[i] = byte(i) | 1
	}
	filled.Store(1)
	for off := mib; off < len(mem); off += mib {
		copy(mem[off:off+mib], first)
		filled.Add(1)
	}
}
