// Command godwit-guest is the test guest's payload: a static program run
// as PID 1 of a busybox initramfs (after /init mounted /proc, /sys, /dev
// and loaded the virtio modules). It prints a heartbeat line to the serial
// console several times a second, dirties a working set of memory at a
// rate set on the kernel command line, writes checksummed records to its
// disk and verifies them at boot, onlines hotplugged CPUs and memory, and
// powers off on the ACPI power button.
//
// At boot it looks for a cloud-init NoCloud seed (internal/seed: an ISO
// 9660 disk labelled cidata), mounts it read-only, sets the hostname from
// its meta-data and configures each NIC its network-config names (found
// by MAC: renamed, MTU, static address, link up, default route) with
// busybox ip. Its data disk is the first virtio disk that is not the seed.
// It answers ping (the kernel does) and serves a TCP stream on port 7777:
// each connection receives "godwit-stream seq=<n> up_ms=<ms>" every 10 ms.
//
// Kernel command line settings: dirty_mb=N (hot working set, MiB),
// dirty_rate_mb=N (MB/s of pages dirtied), hb_hz=N (heartbeats a second),
// panic_after_s=N (panic the kernel N seconds after start, on purpose),
// spoof=mac|ip (send a gratuitous ARP and a broadcast UDP datagram to
// port 7778 once a second from another MAC, or from another IPv4
// address, for port security tests), marker=S (keep S in a MiB of memory
// and write it into the disk's last MiB, for tests that look for guest
// data on the wire).
//
// The heartbeat line, parsed by internal/guestlog (ip: the first NIC's
// address, or none):
//
//	godwit-guest hb=<n> up_ms=<ms> cpus=<n> mem_mib=<n> disk_mib=<n> disk_rec=<n> disk_bad=<n> mem_bad=<n> hot_mib=<n> ip=<addr>
package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
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

	boot := time.Now()
	devs := blockDevices()
	seedDev := findSeed(devs)
	// The stream listens on every address, configured or not yet.
	if ln, err := net.Listen("tcp", ":"+strconv.Itoa(streamPort)); err == nil {
		go serveStream(ln, boot)
	} else {
		fmt.Fprintf(out, "godwit-guest stream: %v\n", err)
	}
	nics := setupFromSeed(seedDev, out)
	ip := heartbeatIP(nics)
	if cfg.spoof != "" {
		var first nic
		if len(nics) > 0 {
			first = nics[0]
		}
		go spoof(cfg.spoof, first, out)
	}

	var data *disk // declared before the disk's state, which shadows the type
	var disk diskState
	dataDev := ""
	for _, d := range devs {
		if d != seedDev {
			dataDev = d
			break
		}
	}
	if dataDev != "" {
		if d, err := openDisk(dataDev); err == nil {
			data = d
			disk.sizeMiB = d.sizeMiB()
			valid, bad := d.scan()
			disk.valid.Store(int64(valid))
			disk.bad = bad
			go d.writeLoop(valid, &disk.valid)
		}
	}
	if cfg.marker != "" {
		plantMarker(cfg.marker, data, out)
	}

	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(cfg.hbHz))
	defer tick.Stop()
	for n := int64(1); ; n++ {
		onlineHotplugged()
		diskMiB := disk.sizeMiB
		if disk.sizeMiB > 0 {
			diskMiB = blockDeviceMiB(filepath.Base(dataDev), diskMiB) // grows online (block_resize)
		}
		line := fmt.Sprintf("godwit-guest hb=%d up_ms=%d cpus=%d mem_mib=%d disk_mib=%d disk_rec=%d disk_bad=%d mem_bad=%d hot_mib=%d ip=%s\n",
			n, time.Since(start).Milliseconds(), onlineCPUs(), hostinfo.MemTotalMiB(), diskMiB, disk.valid.Load(), disk.bad, memBad.Load(), hotMiB.Load(), ip)
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
