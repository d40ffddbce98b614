// Command godwit-guest is the test guest's payload: a static program run
// as PID 1 of a busybox initramfs (after /init mounted /proc, /sys, /dev
// and loaded the virtio modules). It prints a heartbeat line to the serial
// console several times a second, dirties a working set of memory at a
// rate set on the kernel command line, writes checksummed records to its
// disk and verifies them at boot, onlines hotplugged CPUs and memory, and
// powers off on the ACPI power button.
//
// Kernel command line settings: dirty_mb=N (hot working set, MiB),
// dirty_rate_mb=N (MB/s of pages dirtied), hb_hz=N (heartbeats a second),
// panic_after_s=N (panic the kernel N seconds after start, on purpose).
//
// The heartbeat line, parsed by internal/guestlog:
//
//	godwit-guest hb=<n> up_ms=<ms> cpus=<n> mem_mib=<n> disk_mib=<n> disk_rec=<n> disk_bad=<n> mem_bad=<n> hot_mib=<n>
package main

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/godwit/godwit/internal/hostinfo"
)

func main() {
	cmdline, _ := os.ReadFile("/proc/cmdline")
	cfg := parseCmdline(string(cmdline))
	out := os.Stdout
	fmt.Fprintf(out, "godwit-guest start cmdline=%s\n", trimLine(string(cmdline)))

	var memBad, hotMiB atomic.Int64
	go dirty(cfg.dirtyMiB, cfg.dirtyRateMB, &memBad, &hotMiB)
	go watchPowerButton()
	if cfg.panicAfterS > 0 {
		go panicAfter(time.Duration(cfg.panicAfterS) * time.Second)
	}

	var disk diskState
	if d, err := openDisk("/dev/vda"); err == nil {
		disk.sizeMiB = d.sizeMiB()
		valid, bad := d.scan()
		disk.valid.Store(int64(valid))
		disk.bad = bad
		go d.writeLoop(valid, &disk.valid)
	}

	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(cfg.hbHz))
	defer tick.Stop()
	for n := int64(1); ; n++ {
		onlineHotplugged()
		diskMiB := disk.sizeMiB
		if disk.sizeMiB > 0 {
			diskMiB = blockDeviceMiB("vda", diskMiB) // grows online (block_resize)
		}
		line := fmt.Sprintf("godwit-guest hb=%d up_ms=%d cpus=%d mem_mib=%d disk_mib=%d disk_rec=%d disk_bad=%d mem_bad=%d hot_mib=%d\n",
			n, time.Since(start).Milliseconds(), onlineCPUs(), hostinfo.MemTotalMiB(), diskMiB, disk.valid.Load(), disk.bad, memBad.Load(), hotMiB.Load())
		_, _ = out.WriteString(line) // one write per line: lines never interleave
		<-tick.C
	}
}

type diskState struct {
	sizeMiB int
	valid   atomic.Int64
	bad     int
}

func trimLine(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}
