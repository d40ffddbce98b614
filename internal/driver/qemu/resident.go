package qemu

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// The memory a migration's first pass sends is the guest's non-zero
// memory: QEMU sends a zero page as a marker of a few bytes. Guest RAM the
// guest never touched is not resident in QEMU's process, so the resident
// part of the guest's RAM blocks is an upper bound of the non-zero memory
// (a page the guest zeroed, or the rest of a transparent huge page it
// touched, counts too), and far closer to it than the RAM size for a
// guest that uses a fraction of its memory. The engine predicts from it.
//
// QEMU does not say where a RAM block is mapped (x-query-ramblock gives
// names and sizes only), so each block is matched to the private,
// writable, non-executable mapping of exactly its size in
// /proc/PID/smaps: guest RAM is mapped on its own, with a guard page
// after it, so it never merges with a neighbour. Under TCG the code
// buffer is a large mapping too, but executable. A block that matches no
// mapping, or several, gives no figure at all rather than a wrong one.

// ramBlock is one line of x-query-ramblock.
type ramBlock struct {
	name  string
	total int64 // bytes: the block's maximum length, the mapping's size
}

// residentRAM returns the bytes of v's guest RAM resident in its QEMU
// process, or 0 when they cannot be told apart (v.mu held).
func (d *Driver) residentRAM(ctx context.Context, v *vm) int64 {
	var out struct {
		Text string `json:"human-readable-text"`
	}
	if err := d.qmpRun(ctx, v, "x-query-ramblock", nil, &out); err != nil {
		d.log.Debug("no resident memory figure", "vm", v.st.Launch.Spec.Name, "err", err)
		return 0
	}
	blocks, err := parseRAMBlocks(out.Text)
	if err != nil {
		d.log.Debug("no resident memory figure", "vm", v.st.Launch.Spec.Name, "err", err)
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", v.st.PID))
	if err != nil {
		return 0
	}
	defer f.Close()
	maps, err := parseSmaps(f)
	if err != nil {
		return 0
	}
	n, err := residentOf(blocks, maps)
	if err != nil {
		d.log.Debug("no resident memory figure", "vm", v.st.Launch.Spec.Name, "err", err)
		return 0
	}
	return n
}

// guestRAMBlock says whether a block holds guest RAM: the boot memory and
// the backends of memory devices (godwit's virtio-mem backend is
// "<device>-mem"). ROMs and video memory are small and mostly zero.
func guestRAMBlock(name string) bool {
	return name == "pc.ram" || strings.HasSuffix(name, "-mem")
}

// parseRAMBlocks reads x-query-ramblock's text: a header, then per block
// its name, page size (two words), offset, used and total length in hex.
func parseRAMBlocks(text string) ([]ramBlock, error) {
	var blocks []ramBlock
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[0] == "Block" {
			continue
		}
		name := strings.Join(f[:len(f)-5], " ")
		total, err := strconv.ParseInt(strings.TrimPrefix(f[len(f)-1], "0x"), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("ram block %q: total %q: %w", name, f[len(f)-1], err)
		}
		blocks = append(blocks, ramBlock{name: name, total: total})
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("no ram blocks in %q", text)
	}
	return blocks, nil
}

// mapping is one anonymous mapping in smaps.
type mapping struct {
	size, rss int64 // bytes
	perms     string
}

// parseSmaps reads the size, permissions and resident bytes of every
// mapping without a backing file.
func parseSmaps(r io.Reader) ([]mapping, error) {
	var maps []mapping
	var cur *mapping
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := s.Text()
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			cur = nil
			lo, hi, ok := strings.Cut(f[0], "-")
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			if !ok || err1 != nil || err2 != nil {
				continue
			}
			if len(f) == 5 { // no path: anonymous
				maps = append(maps, mapping{size: int64(b - a), perms: f[1]})
				cur = &maps[len(maps)-1]
			}
			continue
		}
		if cur != nil && len(f) >= 2 && f[0] == "Rss:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("smaps rss %q: %w", line, err)
			}
			cur.rss = kb << 10
		}
	}
	return maps, s.Err()
}

// residentOf sums the resident bytes of the guest RAM blocks, each
// matched to the one writable, private, non-executable anonymous mapping
// of its size; blocks of equal size are matched to as many mappings.
func residentOf(blocks []ramBlock, maps []mapping) (int64, error) {
	want := map[int64]int{} // size → guest RAM blocks of that size
	for _, b := range blocks {
		if guestRAMBlock(b.name) {
			want[b.total]++
		}
	}
	if len(want) == 0 {
		return 0, fmt.Errorf("no guest ram block among %d blocks", len(blocks))
	}
	var sum int64
	for size, n := range want {
		var found []mapping
		for _, m := range maps {
			if m.size == size && m.perms == "rw-p" {
				found = append(found, m)
			}
		}
		if len(found) != n {
			return 0, fmt.Errorf("%d guest ram block(s) of %d MiB, %d mapping(s) of that size", n, size>>20, len(found))
		}
		for _, m := range found {
			sum += m.rss
		}
	}
	return sum, nil
}
