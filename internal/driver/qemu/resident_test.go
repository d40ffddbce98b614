package qemu

import (
	"strings"
	"testing"
)

// x-query-ramblock of QEMU 7.2 for a 256 MiB guest with a 768 MiB
// virtio-mem backend (captured from the test guest).
const ramBlockText = `              Block Name    PSize              Offset               Used              Total
    0000:00:04.0/vm0-mem    4 KiB  0x0000000000000000 0x0000000030000000 0x0000000030000000
                  pc.ram    4 KiB  0x0000000030000000 0x0000000010000000 0x0000000010000000
   0000:00:02.0/vga.vram    4 KiB  0x0000000040080000 0x0000000001000000 0x0000000001000000
    /rom@etc/acpi/tables    4 KiB  0x0000000041100000 0x0000000000020000 0x0000000000200000
                 pc.bios    4 KiB  0x0000000040000000 0x0000000000040000 0x0000000000040000
`

// smaps of the same QEMU, cut down: the two RAM mappings, the TCG code
// buffer (1 GiB less a page, executable), a file mapping and a heap.
const smapsText = `55d0c0a00000-55d0c0b00000 rw-p 00000000 00:00 0                          [heap]
Size:               1024 kB
Rss:                 900 kB
7fe573e00000-7fe583e00000 rw-p 00000000 00:00 0 
Size:             262144 kB
Rss:               95232 kB
AnonHugePages:     61440 kB
7fe58be00000-7fe5bbe00000 rw-p 00000000 00:00 0 
Size:             786432 kB
Rss:                   0 kB
7fe5bc000000-7fe5fbfff000 rwxp 00000000 00:00 0 
Size:            1048572 kB
Rss:              131072 kB
7fe600000000-7fe600100000 r--p 00000000 08:01 1234                       /usr/lib/x86_64-linux-gnu/libc.so.6
Size:               1024 kB
Rss:                1024 kB
`

func TestResidentRAM(t *testing.T) {
	blocks, err := parseRAMBlocks(ramBlockText)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 5 || blocks[0].name != "0000:00:04.0/vm0-mem" || blocks[1].name != "pc.ram" || blocks[1].total != 256<<20 || blocks[3].total != 2<<20 {
		t.Fatalf("blocks %+v", blocks)
	}
	maps, err := parseSmaps(strings.NewReader(smapsText))
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 3 { // the heap and the file mapping have names
		t.Fatalf("mappings %+v", maps)
	}
	got, err := residentOf(blocks, maps)
	if err != nil || got != 95232<<10 {
		t.Errorf("resident %d, %v; want the boot RAM's 93 MiB plus the empty virtio-mem backend's 0", got, err)
	}

	// A second writable mapping of pc.ram's size: which one is the RAM
	// cannot be told, so no figure rather than a wrong one.
	twin := append(maps, mapping{size: 256 << 20, rss: 1 << 20, perms: "rw-p"})
	if got, err := residentOf(blocks, twin); err == nil {
		t.Errorf("two candidate mappings gave %d; want an error", got)
	}
	// No mapping of the size (the code buffer's 1 GiB is executable).
	if got, err := residentOf([]ramBlock{{name: "pc.ram", total: 1048572 << 10}}, maps); err == nil {
		t.Errorf("matched the code buffer: %d", got)
	}
	if _, err := parseRAMBlocks("Block Name PSize Offset Used Total\n"); err == nil {
		t.Error("no blocks parsed without an error")
	}
}

// x-query-ramblock of QEMU 10.0 (captured here): each block's host
// address (HVA) and whether it is read-only follow the total.
const ramBlockText10 = `              Block Name    PSize              Offset               Used              Total                HVA  RO
    0000:00:04.0/vm0-mem    4 KiB  0x0000000000000000 0x0000000030000000 0x0000000030000000 0x00007fe58be00000  rw
                  pc.ram    4 KiB  0x0000000030000000 0x0000000010000000 0x0000000010000000 0x00007fe573e00000  rw
    /rom@etc/acpi/tables    4 KiB  0x0000000041100000 0x0000000000020000 0x0000000000200000 0x00007f5040a00000  ro
`

func TestResidentRAMByAddress(t *testing.T) {
	blocks, err := parseRAMBlocks(ramBlockText10)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 3 || blocks[1].name != "pc.ram" || blocks[1].total != 256<<20 || blocks[1].hva != 0x7fe573e00000 || blocks[2].total != 2<<20 {
		t.Fatalf("blocks %+v", blocks)
	}
	maps, err := parseSmaps(strings.NewReader(smapsText))
	if err != nil {
		t.Fatal(err)
	}
	// A second mapping of pc.ram's size no longer confuses: the address
	// says which one is the RAM.
	twin := append(maps, mapping{start: 0x7ff000000000, size: 256 << 20, rss: 1 << 20, perms: "rw-p"})
	got, err := residentOf(blocks, twin)
	if err != nil || got != 95232<<10 {
		t.Errorf("resident %d, %v; want the boot RAM's 93 MiB plus the empty virtio-mem backend's 0", got, err)
	}
	// A block whose address starts no mapping gives no figure.
	blocks[1].hva = 0x1000
	if got, err := residentOf(blocks, maps); err == nil {
		t.Errorf("unmapped address gave %d; want an error", got)
	}
}
