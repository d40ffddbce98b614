package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/errs"
)

// image describes a hand-built qcow2 header: enough of a file for Read
// and Check, written without qemu-img.
type image struct {
	version      uint32
	clusterBits  uint32
	size         uint64
	crypt        uint32
	backing      string
	incompat     uint64
	compat       uint64
	autoclear    uint64
	compression  int // -1: header of 104 bytes, without the field
	dataFileExt  string
	hasDataExt   bool
	featureNames []FeatureName
	extraExt     []uint32 // types of empty extensions to add
}

// good is a version 3 image as qemu-img writes one by default.
func good() image {
	return image{version: 3, clusterBits: 16, size: 1 << 30, compression: 0}
}

func (im image) bytes() []byte {
	be := binary.BigEndian
	hdrLen := uint32(v3HeaderLen)
	if im.compression >= 0 {
		hdrLen = 112
	}
	if im.version == 2 || im.version == 1 {
		hdrLen = v2HeaderLen
	}
	b := make([]byte, hdrLen)
	copy(b, Magic)
	be.PutUint32(b[4:], im.version)
	be.PutUint32(b[20:], im.clusterBits)
	be.PutUint64(b[24:], im.size)
	be.PutUint32(b[32:], im.crypt)
	if hdrLen >= v3HeaderLen {
		be.PutUint64(b[72:], im.incompat)
		be.PutUint64(b[80:], im.compat)
		be.PutUint64(b[88:], im.autoclear)
		be.PutUint32(b[96:], 4)
		be.PutUint32(b[100:], hdrLen)
	}
	if hdrLen > v3HeaderLen {
		b[104] = byte(im.compression)
	}
	ext := func(typ uint32, data []byte) {
		var h [8]byte
		be.PutUint32(h[:], typ)
		be.PutUint32(h[4:], uint32(len(data)))
		b = append(b, h[:]...)
		b = append(b, data...)
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
	}
	if im.hasDataExt {
		ext(ExtExternalData, []byte(im.dataFileExt))
	}
	if len(im.featureNames) > 0 {
		var t []byte
		for _, f := range im.featureNames {
			e := make([]byte, 48)
			e[0], e[1] = byte(f.Type), f.Bit
			copy(e[2:], f.Name)
			t = append(t, e...)
		}
		ext(ExtFeatureNames, t)
	}
	for _, typ := range im.extraExt {
		ext(typ, nil)
	}
	b = append(b, make([]byte, 8)...) // the end marker
	if im.backing != "" {
		off := len(b)
		b = append(b, im.backing...)
		be.PutUint64(b[8:], uint64(off))
		be.PutUint32(b[16:], uint32(len(im.backing)))
	}
	return b
}

func TestReadHeader(t *testing.T) {
	im := good()
	im.backing = "/etc/shadow"
	im.incompat = IncompatDirty | IncompatExternalData
	im.compat, im.autoclear = 1, 2
	im.hasDataExt, im.dataFileExt = true, "/dev/sda"
	im.featureNames = []FeatureName{{FeatureIncompatible, 0, "dirty bit"}, {FeatureCompatible, 0, "lazy refcounts"}}
	h, err := Read(bytes.NewReader(im.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 3 || h.ClusterBits != 16 || h.ClusterSize() != 65536 || h.VirtualSize != 1<<30 || h.HeaderLength != 112 {
		t.Errorf("fixed fields: %+v", h)
	}
	if h.BackingFile != "/etc/shadow" || h.BackingFileSize != 11 || h.BackingFileOffset == 0 {
		t.Errorf("backing file %q (offset %d, size %d)", h.BackingFile, h.BackingFileOffset, h.BackingFileSize)
	}
	if h.IncompatibleFeatures != 5 || h.CompatibleFeatures != 1 || h.AutoclearFeatures != 2 {
		t.Errorf("features %#x %#x %#x", h.IncompatibleFeatures, h.CompatibleFeatures, h.AutoclearFeatures)
	}
	if !h.HasDataFile || h.DataFile != "/dev/sda" {
		t.Errorf("data file %v %q", h.HasDataFile, h.DataFile)
	}
	if len(h.FeatureNames) != 2 || h.FeatureNames[1] != (FeatureName{FeatureCompatible, 0, "lazy refcounts"}) {
		t.Errorf("feature names %+v", h.FeatureNames)
	}
	if len(h.Extensions) != 2 || h.Extensions[0].Type != ExtExternalData || h.Extensions[1].Type != ExtFeatureNames {
		t.Errorf("extensions %+v", h.Extensions)
	}

	v2 := image{version: 2, clusterBits: 16, size: 1 << 20, backing: "base.qcow2"}
	h, err = Read(bytes.NewReader(v2.bytes()))
	if err != nil || h.Version != 2 || h.HeaderLength != v2HeaderLen || h.RefcountOrder != 4 || h.BackingFile != "base.qcow2" {
		t.Errorf("version 2: %+v, %v", h, err)
	}
}

func TestCheck(t *testing.T) {
	with := func(f func(*image)) []byte {
		im := good()
		f(&im)
		return im.bytes()
	}
	for _, tt := range []struct {
		name string
		file []byte
		msg  string // "" for an image Check accepts
	}{
		{"good", good().bytes(), ""},
		{"version 2", image{version: 2, clusterBits: 16, size: 1 << 30}.bytes(), ""},
		{"version 3 without compression field", with(func(im *image) { im.compression = -1 }), ""},
		{"dirty", with(func(im *image) { im.incompat = IncompatDirty }), ""},
		{"extended l2", with(func(im *image) { im.incompat = IncompatExtendedL2 }), ""},
		{"zstd", with(func(im *image) { im.incompat, im.compression = IncompatCompressionType, CompressionZstd }), ""},
		{"lazy refcounts and bitmaps", with(func(im *image) { im.compat, im.autoclear = 1, 1; im.extraExt = []uint32{ExtBitmaps} }), ""},
		{"64 TiB", with(func(im *image) { im.size = MaxVirtualSize }), ""},
		{"feature names", with(func(im *image) { im.featureNames = []FeatureName{{FeatureIncompatible, 0, "dirty bit"}} }), ""},

		{"backing file", with(func(im *image) { im.backing = "/etc/shadow" }), `names a backing file ("/etc/shadow"); flatten it with: qemu-img convert -O qcow2 IN OUT.qcow2`},
		{"backing file in version 2", image{version: 2, clusterBits: 16, size: 1 << 20, backing: "/dev/sda"}.bytes(), `backing file ("/dev/sda")`},
		{"data file bit", with(func(im *image) { im.incompat = IncompatExternalData }), "external file"},
		{"data file extension", with(func(im *image) { im.hasDataExt, im.dataFileExt = true, "/etc/passwd" }), `external file ("/etc/passwd")`},
		{"data file bit and extension", with(func(im *image) {
			im.incompat, im.hasDataExt, im.dataFileExt = IncompatExternalData, true, "/dev/sda"
		}), "make it self-contained"},
		{"unknown incompatible bit", with(func(im *image) { im.incompat = 1 << 5 }), "incompatible feature bits 5"},
		{"unknown bit named by the image", with(func(im *image) {
			im.incompat = 1<<63 | IncompatDirty
			im.featureNames = []FeatureName{{FeatureIncompatible, 63, "future thing"}}
		}), `bits 63 "future thing"`},
		{"corrupt", with(func(im *image) { im.incompat = IncompatCorrupt }), "marked corrupt"},
		{"compression type 2", with(func(im *image) { im.incompat, im.compression = IncompatCompressionType, 2 }), "compression type 2"},
		{"compression type without its bit", with(func(im *image) { im.compression = CompressionZstd }), "without its feature bit"},
		{"compression bit in a short header", with(func(im *image) { im.incompat, im.compression = IncompatCompressionType, -1 }), "too short"},
		{"version 1", image{version: 1, clusterBits: 16, size: 1 << 20}.bytes(), "qcow version 1"},
		{"version 4", with(func(im *image) { im.version = 4 }), "version 4"},
		{"small clusters", with(func(im *image) { im.clusterBits = 8 }), "2^8 bytes"},
		{"huge clusters", with(func(im *image) { im.clusterBits = 22 }), "2^22 bytes"},
		{"absurd size", with(func(im *image) { im.size = MaxVirtualSize + 1 }), "64 TiB"},
		{"encrypted", with(func(im *image) { im.crypt = CryptLUKS }), "encrypted (LUKS)"},
		{"not qcow2", bytes.Repeat([]byte("x"), 4096), "not qcow2"},
		{"empty", nil, "not qcow2"},
		{"cut short", good().bytes()[:40], "cut short"},
		{"version 3 cut short", good().bytes()[:80], "cut short"},
		{"extension past the cluster", func() []byte {
			b := with(func(im *image) { im.hasDataExt, im.dataFileExt = true, "x" })
			binary.BigEndian.PutUint32(b[112+4:], 1<<20)
			return b
		}(), "runs past"},
		{"extension cut short", with(func(im *image) { im.extraExt = []uint32{ExtBitmaps, ExtBitmaps} })[:124], "cut short"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(bytes.NewReader(tt.file))
			switch {
			case tt.msg == "" && err != nil:
				t.Errorf("Check = %v; want nil", err)
			case tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)):
				t.Errorf("Check = %v; want an error containing %q", err, tt.msg)
			case err != nil && !errors.Is(err, errs.ErrInvalid):
				t.Errorf("Check = %v; want it to match errs.ErrInvalid", err)
			}
		})
	}
}

// A VM's own disk may name a backing file (its base), nothing else.
func TestCheckOverlay(t *testing.T) {
	im := good()
	im.backing = "/var/lib/godwit/agent/images/abc.qcow2"
	if err := CheckOverlay(bytes.NewReader(im.bytes())); err != nil {
		t.Errorf("overlay with a backing file: %v", err)
	}
	im.hasDataExt, im.dataFileExt = true, "/etc/shadow"
	if err := CheckOverlay(bytes.NewReader(im.bytes())); err == nil || !strings.Contains(err.Error(), "external file") {
		t.Errorf("overlay with a data file: %v; want refused", err)
	}
}
