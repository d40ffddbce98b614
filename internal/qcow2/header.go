// Package qcow2 reads the header of a qcow2 disk image (versions 2 and 3,
// as QEMU's docs/interop/qcow2.txt lays it out) and refuses, in Check,
// the images that are unsafe to hand to QEMU: an image that names a
// backing file or an external data file makes QEMU open a file the image
// chose, so a guest could read the host's files through its disk.
//
// It reads only the fixed header, the backing file name and the header
// extensions of the first cluster, never the L1/L2 tables or the data,
// so checking a large image costs a few reads. It is pure Go: nothing
// here runs qemu-img, since what Check refuses must never reach it.
package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/godwit/godwit/internal/errs"
)

// Magic opens every qcow file (version 1 too, which Check refuses).
var Magic = []byte("QFI\xfb")

// Header extension types.
const (
	ExtEnd            uint32 = 0x00000000
	ExtBackingFormat  uint32 = 0xe2792aca
	ExtFeatureNames   uint32 = 0x6803f857
	ExtBitmaps        uint32 = 0x23852875
	ExtEncryption     uint32 = 0x0537be77
	ExtExternalData   uint32 = 0x44415441 // "DATA": the external data file's name
	maxExtensions            = 1024       // more is no image QEMU wrote
	maxFeatureNameLen        = 46
)

// Incompatible feature bits: an image with a bit set that its reader does
// not know must not be opened.
const (
	IncompatDirty           uint64 = 1 << 0 // refcounts may be stale; QEMU repairs them
	IncompatCorrupt         uint64 = 1 << 1 // QEMU found the metadata inconsistent
	IncompatExternalData    uint64 = 1 << 2 // guest data lives in another file
	IncompatCompressionType uint64 = 1 << 3 // the compression type field is set
	IncompatExtendedL2      uint64 = 1 << 4 // subclusters
)

// Compression types (header byte 104).
const (
	CompressionZlib = 0
	CompressionZstd = 1
)

// Encryption methods (crypt_method).
const (
	CryptNone = 0
	CryptAES  = 1
	CryptLUKS = 2
)

const (
	v2HeaderLen = 72  // a version 2 header ends before the feature fields
	v3HeaderLen = 104 // the shortest version 3 header
	// maxBackingNameLen is the spec's limit on a backing file name.
	maxBackingNameLen = 1023
	// maxClusterBits bounds what Read loads of the first cluster, where
	// the extensions live (QEMU's own limit is 2 MiB clusters).
	maxClusterBits = 21
)

// Header is what the first cluster of a qcow2 image says about it.
type Header struct {
	Version uint32
	// BackingFileOffset and BackingFileSize locate the backing file's
	// name; an offset of 0 means none. BackingFile is the name read
	// there (cut at maxBackingNameLen, empty if it cannot be read).
	BackingFileOffset uint64
	BackingFileSize   uint32
	BackingFile       string
	ClusterBits       uint32
	VirtualSize       uint64 // bytes the guest sees
	CryptMethod       uint32
	// Feature bits (version 3; zero in version 2).
	IncompatibleFeatures uint64
	CompatibleFeatures   uint64
	AutoclearFeatures    uint64
	RefcountOrder        uint32 // version 3; version 2 is always 4 (16-bit refcounts)
	HeaderLength         uint32 // where the extensions start
	CompressionType      uint8  // only when HeaderLength > 104
	// Extensions are the header extensions in file order, the end
	// marker excluded.
	Extensions []Extension
	// DataFile is the external data file's name, when the image has the
	// extension that names one (HasDataFile).
	DataFile    string
	HasDataFile bool
	// BackingFormat is the backing file's format, from its extension.
	BackingFormat string
	// FeatureNames is the image's own table of feature names, if any.
	FeatureNames []FeatureName
}

// Extension is one header extension: its type and its data's length.
type Extension struct {
	Type   uint32
	Length uint32
}

// FeatureType says which bit field a feature name belongs to.
type FeatureType uint8

// Feature name table types.
const (
	FeatureIncompatible FeatureType = 0
	FeatureCompatible   FeatureType = 1
	FeatureAutoclear    FeatureType = 2
)

// FeatureName is one entry of an image's feature name table.
type FeatureName struct {
	Type FeatureType
	Bit  uint8
	Name string
}

// ClusterSize is 1 << ClusterBits.
func (h *Header) ClusterSize() uint64 { return 1 << h.ClusterBits }

// Read reads a qcow2 header from r. Its errors match errs.ErrInvalid and
// say what is wrong with the file. It checks only what it needs to read
// on; Check judges whether the image is safe.
func Read(r io.ReaderAt) (*Header, error) {
	fixed := make([]byte, v3HeaderLen)
	n, err := r.ReadAt(fixed, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read the disk image header: %w", err)
	}
	if n < 4 || !bytes.Equal(fixed[:4], Magic) {
		return nil, errs.Invalid("the disk image is not qcow2; convert it with: qemu-img convert -O qcow2 IN OUT.qcow2")
	}
	if n < v2HeaderLen {
		return nil, errs.Invalid("the disk image's qcow2 header is cut short (%d bytes); it is damaged or incomplete", n)
	}
	be := binary.BigEndian
	h := &Header{
		Version:           be.Uint32(fixed[4:]),
		BackingFileOffset: be.Uint64(fixed[8:]),
		BackingFileSize:   be.Uint32(fixed[16:]),
		ClusterBits:       be.Uint32(fixed[20:]),
		VirtualSize:       be.Uint64(fixed[24:]),
		CryptMethod:       be.Uint32(fixed[32:]),
		RefcountOrder:     4,
		HeaderLength:      v2HeaderLen,
	}
	switch h.Version {
	case 2:
	case 3:
		if n < v3HeaderLen {
			return nil, errs.Invalid("the disk image's qcow2 version 3 header is cut short (%d bytes); it is damaged or incomplete", n)
		}
		h.IncompatibleFeatures = be.Uint64(fixed[72:])
		h.CompatibleFeatures = be.Uint64(fixed[80:])
		h.AutoclearFeatures = be.Uint64(fixed[88:])
		h.RefcountOrder = be.Uint32(fixed[96:])
		h.HeaderLength = be.Uint32(fixed[100:])
	default:
		return h, nil // nothing more is known of it; Check says so
	}
	if h.BackingFileOffset != 0 {
		h.BackingFile = readName(r, h.BackingFileOffset, h.BackingFileSize)
	}
	if h.ClusterBits < 9 || h.ClusterBits > maxClusterBits {
		return h, nil // Check refuses it; reading on would trust the size
	}
	if h.Version == 3 && (h.HeaderLength < v3HeaderLen || h.HeaderLength%8 != 0 || uint64(h.HeaderLength) > h.ClusterSize()) {
		return h, errs.Invalid("the disk image's qcow2 header length %d is invalid; it is damaged", h.HeaderLength)
	}
	if h.HeaderLength > v3HeaderLen {
		var b [1]byte
		if _, err := r.ReadAt(b[:], v3HeaderLen); err != nil {
			return h, errs.Invalid("the disk image's qcow2 header is cut short; it is damaged or incomplete")
		}
		h.CompressionType = b[0]
	}
	if err := h.readExtensions(r); err != nil {
		return h, err
	}
	return h, nil
}

// readName reads the backing file name; "" when it cannot be read (the
// offset is still set, which is what Check refuses).
func readName(r io.ReaderAt, off uint64, size uint32) string {
	if size > maxBackingNameLen {
		size = maxBackingNameLen
	}
	if off > 1<<62 {
		return ""
	}
	b := make([]byte, size)
	n, _ := r.ReadAt(b, int64(off))
	return string(b[:n])
}

// readExtensions reads the header extensions: they follow the header in
// the first cluster, each a type, a length and data padded to 8 bytes,
// up to an end marker.
func (h *Header) readExtensions(r io.ReaderAt) error {
	cluster := make([]byte, h.ClusterSize())
	n, err := r.ReadAt(cluster, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the disk image's first cluster: %w", err)
	}
	cluster = cluster[:n]
	be := binary.BigEndian
	off := uint64(h.HeaderLength)
	for {
		if off+8 > uint64(len(cluster)) {
			// The end of the cluster (or of a shorter file, which QEMU
			// reads on as zeros) ends the extensions too, unless bytes
			// of another one are cut there.
			if off < uint64(len(cluster)) && len(bytes.Trim(cluster[off:], "\x00")) > 0 {
				return errs.Invalid("the disk image's qcow2 header extensions are cut short; it is damaged")
			}
			return nil
		}
		typ, length := be.Uint32(cluster[off:]), be.Uint32(cluster[off+4:])
		if typ == ExtEnd {
			return nil
		}
		if len(h.Extensions) == maxExtensions {
			return errs.Invalid("the disk image has more than %d qcow2 header extensions; it is damaged", maxExtensions)
		}
		data := off + 8
		end := data + uint64(length)
		if end > uint64(len(cluster)) {
			return errs.Invalid("the disk image's qcow2 header extension %#x runs past its first cluster; it is damaged", typ)
		}
		h.Extensions = append(h.Extensions, Extension{Type: typ, Length: length})
		d := cluster[data:end]
		switch typ {
		case ExtExternalData:
			h.HasDataFile, h.DataFile = true, cstring(d)
		case ExtBackingFormat:
			h.BackingFormat = cstring(d)
		case ExtFeatureNames:
			for i := 0; i+48 <= len(d); i += 48 {
				h.FeatureNames = append(h.FeatureNames, FeatureName{Type: FeatureType(d[i]), Bit: d[i+1], Name: cstring(d[i+2 : i+48])})
			}
		}
		off = (end + 7) &^ 7
	}
}

// cstring is b up to its first NUL.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// featureName returns the image's own name for a feature bit of type t,
// or "".
func (h *Header) featureName(t FeatureType, bit int) string {
	for _, f := range h.FeatureNames {
		if f.Type == t && int(f.Bit) == bit {
			return f.Name
		}
	}
	return ""
}
