package qemu

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
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
// QEMU 9 and later print each block's host address (HVA) in
// x-query-ramblock, and the block is the anonymous mapping that starts
// there. QEMU 7.2 gives names and sizes only, so each block is matched to
// the private, writable, non-executable mapping of exactly its size in
// /proc/PID/smaps: guest RAM is mapped on its own, with a guard page
// after it, so it never merges with a neighbour. Under TCG the code
// buffer is a large mapping too, but executable. A block that matches no
// mapping, or several, gives no figure at all rather than a wrong one.

// ramBlock is one line of x-query-ramblock.
type ramBlock struct {
	name  string
	total int64  // bytes: the block's maximum length, the mapping's size
	hva   uint64 // host address of the mapping; 0 where QEMU does not say (before 9.0)
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

// parseRAMBlocks reads x-query-ramblock's text: a header naming the
// columns, then per block its name, page size (two words), offset, used
// and total length in hex, and since QEMU 9 the host address (HVA) and
// whether the block is read-only.
func parseRAMBlocks(text string) ([]ramBlock, error) {
	var blocks []ramBlock
	after := 5 // fields after the name: psize (2), offset, used, total
	hvaCol := -1
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "Block" && f[1] == "Name" {
			cols := f[2:] // PSize Offset Used Total [HVA RO]
			after = len(cols) + 1
			if i := slices.Index(cols, "HVA"); i >= 0 {
				hvaCol = i + 1 // psize is two words
			}
			continue
		}
		if len(f) < after+1 {
			continue
		}
		name := strings.Join(f[:len(f)-after], " ")
		rest := f[len(f)-after:]
		total, err := strconv.ParseInt(strings.TrimPrefix(rest[4], "0x"), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("ram block %q: total %q: %w", name, rest[4], err)
		}
		b := ramBlock{name: name, total: total}
		if hvaCol >= 0 {
			if b.hva, err = strconv.ParseUint(strings.TrimPrefix(rest[hvaCol], "0x"), 16, 64); err != nil {
				return nil, fmt.Errorf("ram block %q: hva %q: %w", name, rest[hvaCol], err)
			}
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("no ram blocks in %q", text)
	}
	return blocks, nil
}

// mapping is one anonymous mapping in smaps.
type mapping struct {
	start     uint64
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
				maps = append(maps, mapping{start: a, size: int64(b - a), perms: f[1]})
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

// residentOf sums the resident bytes of the guest RAM blocks. A block
// with a host address is the writable anonymous mapping that starts
// there; a block without one (QEMU before 9.0) is matched to the one
// writable, private, non-executable anonymous mapping of its size, and
// blocks of equal size to as many mappings.
func residentOf(blocks []ramBlock, maps []mapping) (int64, error) {
	want := map[int64]int{} // size → guest RAM blocks of that size, no address
	var sum int64
	guest := 0
	for _, b := range blocks {
		if !guestRAMBlock(b.name) {
			continue
		}
		guest++
		if b.hva == 0 {
			want[b.total]++
			continue
		}
		i := slices.IndexFunc(maps, func(m mapping) bool { return m.start == b.hva && m.perms == "rw-p" })
		if i < 0 {
			return 0, fmt.Errorf("ram block %s: no writable anonymous mapping at %#x", b.name, b.hva)
		}
		sum += maps[i].rss
	}
	if guest == 0 {
		return 0, fmt.Errorf("no guest ram block among %d blocks", len(blocks))
	}
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
