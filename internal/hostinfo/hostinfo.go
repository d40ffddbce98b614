// Package hostinfo reads facts about the machine it runs on from /proc,
// /sys and /boot: memory, CPU model and flags, filesystem sizes, the
// newest installed kernel. The agent reports them; the guest program and
// the tools that boot kernels use them too.
package hostinfo

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// NewestKernel returns the newest /boot/vmlinuz-*, or "".
func NewestKernel() string {
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Strings(ks)
	if len(ks) == 0 {
		return ""
	}
	return ks[len(ks)-1]
}

// MemTotalMiB is MemTotal from /proc/meminfo, in MiB.
func MemTotalMiB() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fs := strings.Fields(s.Text()); len(fs) >= 2 && fs[0] == "MemTotal:" {
			kb, _ := strconv.Atoi(fs[1])
			return kb >> 10
		}
	}
	return 0
}

// CPUInfo returns the first CPU's model name and flags.
func CPUInfo() (model string, flags []string) {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "", nil
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() && (model == "" || flags == nil) {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			if model == "" {
				model = strings.TrimSpace(v)
			}
		case "flags":
			if flags == nil {
				flags = strings.Fields(v)
			}
		}
	}
	return model, flags
}

// FsMiB returns the size and the space available to users of the
// filesystem holding path, in MiB.
func FsMiB(path string) (total, free int) {
	var st syscall.Statfs_t
	if syscall.Statfs(path, &st) != nil {
		return 0, 0
	}
	return int(st.Blocks * uint64(st.Bsize) >> 20), int(st.Bavail * uint64(st.Bsize) >> 20)
}

// QEMUPIDs lists the QEMU processes whose command line mentions s (a VM's
// UUID, a state directory): what tests and the benchmark check for, and
// stop by PID, after a run.
func QEMUPIDs(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), "qemu-system") && strings.Contains(string(b), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}
