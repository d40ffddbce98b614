package seed

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf16"
)

// A small ISO 9660 reader, written from ECMA-119 and the Joliet
// specification rather than from the writer, to check the image's
// structure without root or tools.

type volume struct {
	typ       byte
	label     string
	joliet    bool
	spaceSize uint32
	pathL     uint32
	pathM     uint32
	pathSize  uint32
	root      entry
}

type entry struct {
	name  string
	lba   uint32
	size  uint32
	dir   bool
	order []byte // the raw identifier, for the sort order
}

// readBoth32 reads a both-byte-order number and checks its halves agree.
func readBoth32(t *testing.T, b []byte, what string) uint32 {
	t.Helper()
	le, be := binary.LittleEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
	if le != be {
		t.Errorf("%s: little-endian %d, big-endian %d", what, le, be)
	}
	return le
}

func readBoth16(t *testing.T, b []byte, what string) uint16 {
	t.Helper()
	le, be := binary.LittleEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
	if le != be {
		t.Errorf("%s: little-endian %d, big-endian %d", what, le, be)
	}
	return le
}

func decodeUCS2(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// volumes reads the volume descriptors from sector 16 to the terminator.
func volumes(t *testing.T, img []byte) []volume {
	t.Helper()
	var vs []volume
	for lba := 16; ; lba++ {
		if (lba+1)*2048 > len(img) {
			t.Fatal("no volume descriptor set terminator")
		}
		d := img[lba*2048 : (lba+1)*2048]
		if string(d[1:6]) != "CD001" || d[6] != 1 {
			t.Fatalf("sector %d is not a volume descriptor", lba)
		}
		if d[0] == 255 {
			return vs
		}
		v := volume{typ: d[0]}
		v.joliet = d[0] == 2 && d[88] == '%' && d[89] == '/' && bytes.ContainsRune([]byte("@CE"), rune(d[90]))
		if v.joliet {
			v.label = strings.TrimRight(decodeUCS2(d[40:72]), " ")
		} else {
			v.label = strings.TrimRight(string(d[40:72]), " ")
		}
		v.spaceSize = readBoth32(t, d[80:], "volume space size")
		if n := readBoth16(t, d[128:], "logical block size"); n != 2048 {
			t.Errorf("logical block size %d", n)
		}
		if n := readBoth16(t, d[120:], "volume set size"); n != 1 {
			t.Errorf("volume set size %d", n) // Linux's isofs wants 1
		}
		v.pathSize = readBoth32(t, d[132:], "path table size")
		v.pathL = binary.LittleEndian.Uint32(d[140:])
		v.pathM = binary.BigEndian.Uint32(d[148:])
		if d[156] != 34 {
			t.Errorf("root directory record is %d bytes; want 34", d[156])
		}
		v.root = parseRecord(t, d[156:190], v.joliet)
		if string(d[813:829]) != "2020010100000000" {
			t.Errorf("creation date %q", d[813:829])
		}
		vs = append(vs, v)
	}
}

func parseRecord(t *testing.T, r []byte, joliet bool) entry {
	t.Helper()
	n := int(r[0])
	idLen := int(r[32])
	if n < 34 || n%2 != 0 || 33+idLen > n {
		t.Fatalf("directory record of %d bytes with a %d-byte identifier", n, idLen)
	}
	id := r[33 : 33+idLen]
	e := entry{lba: readBoth32(t, r[2:], "extent"), size: readBoth32(t, r[10:], "data length"), dir: r[25]&2 != 0, order: id}
	if readBoth16(t, r[28:], "volume sequence number") != 1 {
		t.Error("volume sequence number is not 1")
	}
	if r[18] != 120 || r[19] != 1 || r[20] != 1 {
		t.Errorf("recording date %v; want 2020-01-01", r[18:25])
	}
	switch {
	case idLen == 1 && id[0] == 0:
		e.name = "."
	case idLen == 1 && id[0] == 1:
		e.name = ".."
	case joliet:
		e.name = decodeUCS2(id)
	default:
		e.name = string(id)
	}
	return e
}

// readDir reads a directory's records, which never cross a sector.
func readDir(t *testing.T, img []byte, d entry, joliet bool) []entry {
	t.Helper()
	var es []entry
	for sec := uint32(0); sec*2048 < d.size; sec++ {
		b := img[(d.lba+sec)*2048 : (d.lba+sec+1)*2048]
		for off := 0; off < len(b) && b[off] != 0; off += int(b[off]) {
			if off+int(b[off]) > len(b) {
				t.Fatalf("directory record at %d crosses the sector", off)
			}
			es = append(es, parseRecord(t, b[off:off+int(b[off])], joliet))
		}
	}
	return es
}

func fileData(t *testing.T, img []byte, e entry) []byte {
	t.Helper()
	end := int(e.lba)*2048 + int(e.size)
	if end > len(img) {
		t.Fatalf("%s ends at byte %d, past the image's %d", e.name, end, len(img))
	}
	return img[int(e.lba)*2048 : end]
}

// readJoliet returns the files of the Joliet root, names without ";1".
func readJoliet(t *testing.T, img []byte) map[string][]byte {
	t.Helper()
	for _, v := range volumes(t, img) {
		if !v.joliet {
			continue
		}
		files := map[string][]byte{}
		for _, e := range readDir(t, img, v.root, true) {
			if !e.dir {
				files[strings.TrimSuffix(e.name, ";1")] = fileData(t, img, e)
			}
		}
		return files
	}
	t.Fatal("no Joliet volume descriptor")
	return nil
}

func wantFiles(t *testing.T, c Config) map[string][]byte {
	t.Helper()
	meta, err := metaData(c)
	if err != nil {
		t.Fatal(err)
	}
	netcfg, err := NetworkConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{MetaDataFile: meta, UserDataFile: c.UserData, NetworkConfigFile: netcfg}
}

func compareFiles(t *testing.T, where string, got, want map[string][]byte) {
	t.Helper()
	var names []string
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(got) != len(want) {
		t.Errorf("%s holds %v; want meta-data, network-config and user-data", where, names)
	}
	for n, w := range want {
		if g, ok := got[n]; !ok {
			t.Errorf("%s has no %s (it holds %v)", where, n, names)
		} else if !bytes.Equal(g, w) {
			t.Errorf("%s: %s is %q; want %q", where, n, g, w)
		}
	}
}

var dName = regexp.MustCompile(`^[A-Z0-9_]{1,8}\.[A-Z0-9_]{0,3};1$`)

func TestImageStructure(t *testing.T) {
	c := testConfig()
	img, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	vs := volumes(t, img)
	if len(vs) != 2 || vs[0].typ != 1 || !vs[1].joliet {
		t.Fatalf("volume descriptors %+v; want the primary, then Joliet", vs)
	}
	trees := map[bool]map[string]entry{}
	for _, v := range vs {
		if v.label != "cidata" {
			t.Errorf("volume (type %d) label %q; want cidata", v.typ, v.label)
		}
		if int(v.spaceSize)*2048 != len(img) {
			t.Errorf("volume space %d sectors; the image has %d", v.spaceSize, len(img)/2048)
		}
		// The path tables hold the root alone: identifier 0, parent 1.
		for _, pt := range []struct {
			lba   uint32
			order binary.ByteOrder
		}{{v.pathL, binary.LittleEndian}, {v.pathM, binary.BigEndian}} {
			p := img[pt.lba*2048:]
			if v.pathSize != 10 || p[0] != 1 || pt.order.Uint32(p[2:]) != v.root.lba || pt.order.Uint16(p[6:]) != 1 || p[8] != 0 {
				t.Errorf("path table at %d: % x", pt.lba, p[:10])
			}
		}
		es := readDir(t, img, v.root, v.joliet)
		if len(es) < 2 || es[0].name != "." || es[1].name != ".." || es[0].lba != v.root.lba || !es[0].dir {
			t.Fatalf("root directory starts %+v; want . and .. for itself", es)
		}
		files := map[string]entry{}
		for i, e := range es[2:] {
			if i > 0 && string(es[1+i].order) >= string(e.order) {
				t.Errorf("%q comes after %q: not sorted", e.name, es[1+i].name)
			}
			if !v.joliet && !dName.MatchString(e.name) {
				t.Errorf("ISO 9660 name %q is not 8.3 d-characters with version ;1", e.name)
			}
			files[e.name] = e
		}
		trees[v.joliet] = files
	}
	got := map[string][]byte{}
	for name, e := range trees[true] {
		got[name] = fileData(t, img, e)
	}
	compareFiles(t, "the Joliet tree", got, wantFiles(t, c))
	// Both trees point at the same data.
	for plain, joliet := range map[string]string{"META_DAT.;1": MetaDataFile, "USER_DAT.;1": UserDataFile, "NETWORK_.;1": NetworkConfigFile} {
		p, j := trees[false][plain], trees[true][joliet]
		if p.lba != j.lba || p.size != j.size || p.lba == 0 {
			t.Errorf("%s is at %d (%d bytes), %s at %d (%d bytes)", plain, p.lba, p.size, joliet, j.lba, j.size)
		}
	}
	// The guest's probe: a primary volume descriptor at byte 32768 whose
	// volume identifier is cidata.
	if !bytes.Equal(img[32768:32774], []byte("\x01CD001")) || strings.TrimRight(string(img[32808:32840]), " ") != "cidata" {
		t.Error("no cidata primary volume descriptor at byte 32768")
	}
}

// TestToolsReadSeed lists the image with whichever of xorriso, isoinfo and 7z is
// installed, each reading the names cloud-init sees, and compares the
// files they extract.
func TestToolsReadSeed(t *testing.T) {
	c := testConfig()
	path := filepath.Join(t.TempDir(), "seed.iso")
	if err := WriteFile(path, c); err != nil {
		t.Fatal(err)
	}
	want := wantFiles(t, c)
	ran := 0
	if _, err := exec.LookPath("xorriso"); err == nil {
		ran++
		dir := filepath.Join(t.TempDir(), "xorriso")
		run(t, "xorriso", "-osirrox", "on", "-indev", path, "-extract", "/", dir)
		compareFiles(t, "xorriso's extraction", readTree(t, dir), want)
	}
	if _, err := exec.LookPath("isoinfo"); err == nil {
		ran++
		out := run(t, "isoinfo", "-J", "-f", "-i", path)
		got := map[string][]byte{}
		for _, l := range strings.Fields(string(out)) {
			name := strings.TrimSuffix(strings.TrimPrefix(l, "/"), ";1")
			got[name] = run(t, "isoinfo", "-J", "-x", l, "-i", path)
		}
		compareFiles(t, "isoinfo -J", got, want)
		if d := string(run(t, "isoinfo", "-d", "-i", path)); !strings.Contains(d, "Volume id: cidata") || !strings.Contains(d, "Joliet") {
			t.Errorf("isoinfo -d:\n%s", d)
		}
	}
	if _, err := exec.LookPath("7z"); err == nil {
		ran++
		dir := filepath.Join(t.TempDir(), "7z")
		run(t, "7z", "x", "-o"+dir, path)
		compareFiles(t, "7z's extraction", readTree(t, dir), want)
	}
	if ran == 0 {
		t.Skip("none of xorriso, isoinfo (genisoimage) or 7z (p7zip-full) is installed; TestImageStructure checked the image in Go")
	}
}

// The Linux kernel's isofs mounts the image and shows the three files.
func TestKernelMountsSeed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting the seed (mount -o loop) needs root")
	}
	if !kernelHasISO9660() {
		t.Skip("this kernel has no iso9660 filesystem (CONFIG_ISO9660_FS unset and no isofs module); " +
			"the test guest's kernel reads the seed in internal/testguest's TestGuestNetworkFromSeed")
	}
	c := testConfig()
	dir := t.TempDir()
	path, mnt := filepath.Join(dir, "seed.iso"), filepath.Join(dir, "mnt")
	if err := WriteFile(path, c); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop,ro", "-t", "iso9660", path, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount here (no loop devices in this container?): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	compareFiles(t, "the mounted seed", readTree(t, mnt), wantFiles(t, c))
}

func kernelHasISO9660() bool {
	has := func() bool {
		b, _ := os.ReadFile("/proc/filesystems")
		return bytes.Contains(b, []byte("\tiso9660\n"))
	}
	if has() {
		return true
	}
	_ = exec.Command("modprobe", "isofs").Run()
	return has()
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}
