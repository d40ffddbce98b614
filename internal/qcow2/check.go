package qcow2

import (
	"fmt"
	"io"
	"strings"

	"github.com/godwit/godwit/internal/errs"
)

// MaxVirtualSize bounds the disk a guest may see: 64 TiB, more than any
// image godwit imports should claim, and far below sizes whose L1 tables
// QEMU would have to allocate in memory.
const MaxVirtualSize = 64 << 40

// knownIncompatible are the incompatible feature bits Check may accept.
const knownIncompatible = IncompatDirty | IncompatCorrupt | IncompatExternalData | IncompatCompressionType | IncompatExtendedL2

// convert is the fix most refusals point to: qemu-img convert writes a
// self-contained qcow2 with only features QEMU's defaults use.
const convert = "qemu-img convert -O qcow2 IN OUT.qcow2"

// Check reads the header of the qcow2 image in r and refuses an image
// that is unsafe or unusable as a base image: one that names a backing
// file or an external data file (QEMU would open a file the image chose),
// is marked corrupt, is encrypted, sets an incompatible feature bit that
// is not known here, uses a compression type other than zlib and zstd,
// is of a version other than 2 or 3, has clusters outside 512 B–2 MiB, or
// claims a virtual size above MaxVirtualSize. Its errors match
// errs.ErrInvalid and say how to make the image acceptable.
func Check(r io.ReaderAt) error {
	h, err := Read(r)
	if err != nil {
		return err
	}
	return h.Check()
}

// CheckOverlay is Check for a VM's own disk, which is layered on its
// image: it may name a backing file (the caller points it at its own
// copy of the base), but nothing else Check refuses.
func CheckOverlay(r io.ReaderAt) error {
	h, err := Read(r)
	if err != nil {
		return err
	}
	return h.check(true)
}

// Check judges a header read by Read, as the function Check does.
func (h *Header) Check() error { return h.check(false) }

func (h *Header) check(backingOK bool) error {
	switch h.Version {
	case 2, 3:
	case 1:
		return errs.Invalid("the disk image is qcow version 1, which godwit does not take; convert it with: %s", convert)
	default:
		return errs.Invalid("the disk image is qcow2 version %d; godwit takes versions 2 and 3: convert it with: %s", h.Version, convert)
	}
	if h.ClusterBits < 9 || h.ClusterBits > maxClusterBits {
		return errs.Invalid("the disk image's cluster size is 2^%d bytes, outside 512 B to 2 MiB; convert it with: %s", h.ClusterBits, convert)
	}
	if h.VirtualSize > MaxVirtualSize {
		return errs.Invalid("the disk image's virtual size is %d bytes, more than godwit's limit of 64 TiB; shrink it (qemu-img resize --shrink) or make a smaller image", h.VirtualSize)
	}
	if h.BackingFileOffset != 0 && !backingOK {
		return errs.Invalid("the disk image names a backing file (%q); flatten it with: %s", h.BackingFile, convert)
	}
	if h.HasDataFile || h.IncompatibleFeatures&IncompatExternalData != 0 {
		return errs.Invalid("the disk image keeps its data in an external file (%q); make it self-contained with: %s", h.DataFile, convert)
	}
	if unknown := h.IncompatibleFeatures &^ knownIncompatible; unknown != 0 {
		return errs.Invalid("the disk image uses qcow2 features godwit does not know (incompatible feature bits %s); convert it with: %s", h.bitNames(unknown), convert)
	}
	if h.IncompatibleFeatures&IncompatCorrupt != 0 {
		return errs.Invalid("the disk image is marked corrupt; repair it with: qemu-img check -r all IN, or convert it from a good copy")
	}
	switch {
	case h.IncompatibleFeatures&IncompatCompressionType == 0 && h.CompressionType != CompressionZlib:
		return errs.Invalid("the disk image sets compression type %d without its feature bit; it is damaged: convert it from a good copy", h.CompressionType)
	case h.IncompatibleFeatures&IncompatCompressionType != 0 && h.HeaderLength <= v3HeaderLen:
		return errs.Invalid("the disk image's header is too short for the compression type it announces; it is damaged: convert it from a good copy")
	case h.CompressionType != CompressionZlib && h.CompressionType != CompressionZstd:
		return errs.Invalid("the disk image uses compression type %d; godwit takes zlib and zstd: convert it with: qemu-img convert -O qcow2 -o compression_type=zlib IN OUT.qcow2", h.CompressionType)
	}
	if h.CryptMethod != CryptNone {
		return errs.Invalid("the disk image is encrypted (%s); godwit boots unencrypted images: decrypt it into a plain qcow2 with qemu-img convert", cryptName(h.CryptMethod))
	}
	if h.RefcountOrder > 6 {
		return errs.Invalid("the disk image's refcount order %d is invalid (at most 6); it is damaged", h.RefcountOrder)
	}
	return nil
}

// bitNames lists set bits of the incompatible field, each with the
// image's own name for it when it has one.
func (h *Header) bitNames(bits uint64) string {
	var out []string
	for i := 0; i < 64; i++ {
		if bits&(1<<i) == 0 {
			continue
		}
		s := fmt.Sprintf("%d", i)
		if n := h.featureName(FeatureIncompatible, i); n != "" {
			s += fmt.Sprintf(" %q", n)
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func cryptName(m uint32) string {
	switch m {
	case CryptAES:
		return "AES"
	case CryptLUKS:
		return "LUKS"
	}
	return fmt.Sprintf("method %d", m)
}
