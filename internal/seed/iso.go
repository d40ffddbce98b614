package seed

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf16"
)

// The image's layout, in 2048-byte logical sectors (ECMA-119; Joliet is
// the supplementary volume descriptor with a UCS-2 escape sequence):
//
//	0-15  system area (zero)
//	16    primary volume descriptor
//	17    supplementary (Joliet) volume descriptor
//	18    volume descriptor set terminator
//	19-20 primary path tables, L (little-endian) and M (big-endian)
//	21-22 Joliet path tables, L and M
//	23    primary root directory
//	24    Joliet root directory
//	25-   file data, each file from a sector of its own
const (
	sectorSize = 2048
	lbaPVD     = 16
	lbaSVD     = 17
	lbaTerm    = 18
	lbaPrimL   = 19
	lbaPrimM   = 20
	lbaJolL    = 21
	lbaJolM    = 22
	lbaPrimDir = 23
	lbaJolDir  = 24
	lbaData    = 25
)

// recorded is every timestamp in the image: fixed, so the image is
// deterministic. 2020-01-01 00:00:00 UTC.
var (
	recordedDir = [7]byte{120, 1, 1, 0, 0, 0, 0} // years since 1900, month, day, h, m, s, GMT offset
	recordedVD  = [17]byte{'2', '0', '2', '0', '0', '1', '0', '1', '0', '0', '0', '0', '0', '0', '0', '0', 0}
	// unsetVD is the "not specified" date (the expiration date).
	unsetVD = [17]byte{'0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', 0}
)

// jolietEscape marks a supplementary volume descriptor as Joliet level 3
// (UCS-2 names).
var jolietEscape = []byte("%/E")

// Directory record flags.
const flagDirectory = 0x02

// isoFile is one file at the root: its ISO 9660 name (d-characters, 8.3,
// ";1"), its Joliet name (without a version, as genisoimage writes it;
// readers strip a ";1" anyway) and its data.
type isoFile struct {
	plain  string
	joliet string
	data   []byte
	lba    uint32
}

// buildISO lays out the image described above.
func buildISO(label string, files []isoFile) ([]byte, error) {
	files = append([]isoFile(nil), files...)
	next := uint64(lbaData)
	for i := range files {
		if err := checkPlainName(files[i].plain); err != nil {
			return nil, err
		}
		if uint64(len(files[i].data)) > math.MaxUint32 {
			return nil, fmt.Errorf("seed: %s is too large for an ISO 9660 extent (%d bytes)", files[i].joliet, len(files[i].data))
		}
		files[i].lba = uint32(next)
		next += (uint64(len(files[i].data)) + sectorSize - 1) / sectorSize
	}
	if next > math.MaxUint32 {
		return nil, fmt.Errorf("seed: image too large")
	}
	total := uint32(next)

	primDir, err := directory(lbaPrimDir, files, func(f isoFile) []byte { return []byte(f.plain) })
	if err != nil {
		return nil, err
	}
	jolDir, err := directory(lbaJolDir, files, func(f isoFile) []byte { return ucs2(f.joliet) })
	if err != nil {
		return nil, err
	}

	img := make([]byte, int(total)*sectorSize)
	put := func(lba uint32, b []byte) { copy(img[int(lba)*sectorSize:], b) }
	put(lbaPVD, volumeDescriptor(1, label, total, lbaPrimL, lbaPrimM, lbaPrimDir))
	put(lbaSVD, volumeDescriptor(2, label, total, lbaJolL, lbaJolM, lbaJolDir))
	put(lbaTerm, append([]byte{255}, "CD001\x01"...))
	put(lbaPrimL, pathTable(lbaPrimDir, binary.LittleEndian))
	put(lbaPrimM, pathTable(lbaPrimDir, binary.BigEndian))
	put(lbaJolL, pathTable(lbaJolDir, binary.LittleEndian))
	put(lbaJolM, pathTable(lbaJolDir, binary.BigEndian))
	put(lbaPrimDir, primDir)
	put(lbaJolDir, jolDir)
	for _, f := range files {
		put(f.lba, f.data)
	}
	return img, nil
}

// checkPlainName accepts an ISO 9660 level 1 file identifier:
// d-characters, at most 8 before the dot and 3 after it, version ";1".
func checkPlainName(s string) error {
	base, ok := strings.CutSuffix(s, ";1")
	name, ext, dot := strings.Cut(base, ".")
	if !ok || !dot || len(name) == 0 || len(name) > 8 || len(ext) > 3 {
		return fmt.Errorf("seed: %q is not an ISO 9660 level 1 file name", s)
	}
	for _, c := range name + ext {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("seed: %q holds a character that is not a d-character", s)
		}
	}
	return nil
}

// directory returns the root directory's sector: ".", "..", then the
// files sorted by their identifier (as ECMA-119 9.3 orders them; for
// Joliet, by the UCS-2 code units, which the byte order of big-endian
// UCS-2 gives).
func directory(self uint32, files []isoFile, id func(isoFile) []byte) ([]byte, error) {
	sorted := append([]isoFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return string(id(sorted[i])) < string(id(sorted[j])) })
	d := dirRecord([]byte{0}, self, sectorSize, flagDirectory)
	d = append(d, dirRecord([]byte{1}, self, sectorSize, flagDirectory)...)
	for _, f := range sorted {
		d = append(d, dirRecord(id(f), f.lba, uint32(len(f.data)), 0)...)
	}
	if len(d) > sectorSize {
		return nil, fmt.Errorf("seed: root directory needs %d bytes, more than a sector", len(d))
	}
	return d, nil
}

// dirRecord is a directory record (ECMA-119 9.1) without extended
// attributes or system use.
func dirRecord(id []byte, lba, size uint32, flags byte) []byte {
	n := 33 + len(id)
	if len(id)%2 == 0 {
		n++ // padding: records have an even length
	}
	r := make([]byte, n)
	r[0] = byte(n)
	both32(r[2:], lba)
	both32(r[10:], size)
	copy(r[18:25], recordedDir[:])
	r[25] = flags
	both16(r[28:], 1) // volume sequence number
	r[32] = byte(len(id))
	copy(r[33:], id)
	return r
}

// volumeDescriptor is the primary (typ 1) or the Joliet supplementary
// (typ 2) volume descriptor (ECMA-119 8.4 and 8.5); the Joliet one holds
// its identifiers in UCS-2.
func volumeDescriptor(typ byte, label string, total, pathL, pathM, root uint32) []byte {
	joliet := typ == 2
	text := func(dst []byte, s string) {
		if joliet {
			for i := range dst {
				dst[i] = 0
				if i%2 == 1 {
					dst[i] = ' '
				}
			}
			copy(dst, ucs2(s))
			return
		}
		for i := range dst {
			dst[i] = ' '
		}
		copy(dst, s)
	}
	v := make([]byte, sectorSize)
	v[0] = typ
	copy(v[1:], "CD001")
	v[6] = 1
	text(v[8:40], "")     // system identifier
	text(v[40:72], label) // volume identifier
	both32(v[80:], total) // volume space size
	if joliet {
		copy(v[88:], jolietEscape)
	}
	both16(v[120:], 1)          // volume set size
	both16(v[124:], 1)          // volume sequence number
	both16(v[128:], sectorSize) // logical block size
	both32(v[132:], pathTableSize)
	binary.LittleEndian.PutUint32(v[140:], pathL)
	binary.BigEndian.PutUint32(v[148:], pathM)
	copy(v[156:190], dirRecord([]byte{0}, root, sectorSize, flagDirectory))
	text(v[190:318], "")                    // volume set identifier
	text(v[318:446], "")                    // publisher
	text(v[446:574], "")                    // data preparer
	text(v[574:702], "GODWIT NOCLOUD SEED") // application
	text(v[702:739], "")                    // copyright file
	text(v[739:776], "")                    // abstract file
	text(v[776:813], "")                    // bibliographic file
	copy(v[813:], recordedVD[:])            // creation
	copy(v[830:], recordedVD[:])            // modification
	copy(v[847:], unsetVD[:])               // expiration
	copy(v[864:], recordedVD[:])            // effective
	v[881] = 1                              // file structure version
	return v
}

// pathTableSize is the size of a path table holding the root alone.
const pathTableSize = 10

// pathTable is a path table (ECMA-119 9.4) with the root directory alone,
// in the given byte order (L: little-endian, M: big-endian).
func pathTable(root uint32, order binary.ByteOrder) []byte {
	t := make([]byte, pathTableSize)
	t[0] = 1 // length of the directory identifier
	order.PutUint32(t[2:], root)
	order.PutUint16(t[6:], 1) // parent: the root itself
	// t[8] = 0: the root's identifier; t[9]: padding
	return t
}

// ucs2 encodes s as big-endian UCS-2, as Joliet stores names.
func ucs2(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.BigEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// both16 and both32 write a number in both byte orders, little-endian
// first (ECMA-119 7.2.3 and 7.3.3).
func both16(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

func both32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}
