package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
)

// markerRAM is how much guest memory holds the marker: every page of it,
// many times over, so a memory stream carrying any of these pages
// carries the marker whole, wherever a page boundary falls.
const markerRAM = 1 << 20

// markerHeld keeps the marker's pages reachable, so the collector never
// frees them and they stay in guest RAM for the guest's life.
var markerHeld []byte

// maxMarker bounds marker= so that one copy fits a disk record.
const maxMarker = 256

// plantMarker puts s in guest memory and, when the guest has a data disk,
// in its last MiB (which disk records never use), so that a test can
// look for it in what leaves the host during a migration: a plain
// migration carries it, an encrypted one must not. It reports what it
// did on out, without the marker (the console is read by the same test).
func plantMarker(s string, d *disk, out io.Writer) {
	fill := func(b []byte) {
		rep := strings.Repeat(s+"\n", len(b)/(len(s)+1)+1)
		copy(b, rep)
	}
	markerHeld = make([]byte, markerRAM)
	fill(markerHeld)
	runtime.KeepAlive(markerHeld)
	where := "ram"
	if d != nil {
		b := alignedBuf()
		fill(b)
		if _, err := d.f.WriteAt(b, d.capacity()*recSize); err != nil {
			fmt.Fprintf(out, "godwit-guest marker: write disk: %v\n", err)
		} else {
			where += ",disk"
		}
	}
	fmt.Fprintf(out, "godwit-guest marker planted in %s\n", where)
}
