package main

import (
	"strconv"
	"strings"
)

type config struct {
	dirtyMiB    int
	dirtyRateMB int
	hbHz        int
	panicAfterS int    // panic the kernel this long after start; 0: never
	spoof       string // spoofMAC or spoofIP: send spoofed frames; "": none
	marker      string // plant this string in memory and on disk; "": none
}

// parseCmdline reads the guest's settings from the kernel command line;
// missing or malformed values keep their defaults.
func parseCmdline(s string) config {
	c := config{hbHz: 5}
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		if k == "marker" {
			if len(v) <= maxMarker {
				c.marker = v
			}
			continue
		}
		if k == "spoof" {
			if v == spoofMAC || v == spoofIP {
				c.spoof = v
			}
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			continue
		}
		switch k {
		case "dirty_mb":
			c.dirtyMiB = n
		case "dirty_rate_mb":
			c.dirtyRateMB = n
		case "panic_after_s":
			c.panicAfterS = n
		case "hb_hz":
			if n > 0 && n <= 1000 {
				c.hbHz = n
			}
		}
	}
	return c
}
