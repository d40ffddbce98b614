package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// onlineCPUs counts the CPUs the kernel runs on now.
func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return 0
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, found := strings.Cut(r, "-")
		a, _ := strconv.Atoi(lo)
		if !found {
			n++
			continue
		}
		z, _ := strconv.Atoi(hi)
		n += z - a + 1
	}
	return n
}

// blockDeviceMiB is the size the kernel sees now of block device name
// (it follows an online resize), or def when it cannot be read.
func blockDeviceMiB(name string, def int) int {
	b, err := os.ReadFile("/sys/block/" + name + "/size")
	if err != nil {
		return def
	}
	sectors, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return def
	}
	return int(sectors * 512 >> 20)
}

// onlineHotplugged brings hotplugged CPUs and memory blocks online; a
// plain busybox system has no udev rules to do it. Memory goes online as
// movable so it can be unplugged again.
func onlineHotplugged() {
	cpus, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/online")
	for _, p := range cpus {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "0" {
			_ = os.WriteFile(p, []byte("1"), 0o644)
		}
	}
	mems, _ := filepath.Glob("/sys/devices/system/memory/memory[0-9]*/state")
	for _, p := range mems {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "offline" {
			_ = os.WriteFile(p, []byte("online_movable"), 0o644)
		}
	}
}

// Input event constants (linux/input-event-codes.h).
const (
	evKey        = 1
	keyPower     = 116
	inputEventSz = 24 // struct input_event on 64-bit: timeval(16) type(2) code(2) value(4)
)

// watchPowerButton powers the guest off when the ACPI power button is
// pressed (QEMU's system_powerdown), so a graceful stop works without
// acpid.
func watchPowerButton() {
	seen := map[string]bool{}
	for {
		devs, _ := filepath.Glob("/dev/input/event*")
		for _, d := range devs {
			if !seen[d] {
				seen[d] = true
				go readEvents(d)
			}
		}
		time.Sleep(time.Second)
	}
}

func readEvents(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, inputEventSz)
	for {
		if _, err := f.Read(buf); err != nil {
			return
		}
		typ := binary.LittleEndian.Uint16(buf[16:])
		code := binary.LittleEndian.Uint16(buf[18:])
		val := int32(binary.LittleEndian.Uint32(buf[20:]))
		if typ == evKey && code == keyPower && val == 1 {
			os.Stdout.WriteString("godwit-guest power button: powering off\n")
			syscall.Sync()
			_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
		}
	}
}

// panicAfter panics the guest kernel on purpose after d (panic_after_s=N),
// for tests of how the host sees a guest panic: sysrq 'c' calls panic()
// as a kernel bug would, so the pvpanic driver tells QEMU. Writing to
// /proc/sysrq-trigger works as root whatever kernel.sysrq allows.
func panicAfter(d time.Duration) {
	time.Sleep(d)
	os.Stdout.WriteString("godwit-guest panic_after_s: panicking the kernel\n")
	syscall.Sync()
	if err := os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0); err != nil {
		os.Stdout.WriteString("godwit-guest panic_after_s: " + err.Error() + " (is CONFIG_MAGIC_SYSRQ set?)\n")
	}
}
