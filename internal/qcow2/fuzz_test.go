package qcow2

import (
	"bytes"
	"errors"
	"testing"

	"github.com/godwit/godwit/internal/errs"
)

// FuzzCheck feeds arbitrary files to Read and Check. Nothing may panic;
// every refusal matches errs.ErrInvalid; and an image Check accepts has
// none of what it must refuse. Seeds: the hand-built headers below plus
// testdata/fuzz/FuzzCheck, which holds the first kilobyte of images
// qemu-img 10.0 made (plain, version 2, with a backing file, with a data
// file).
func FuzzCheck(f *testing.F) {
	bad := good()
	bad.backing, bad.hasDataExt, bad.dataFileExt = "/etc/shadow", true, "/dev/sda"
	bad.featureNames = []FeatureName{{FeatureIncompatible, 2, "external data file"}}
	for _, im := range []image{good(), {version: 2, clusterBits: 16, size: 1 << 20}, bad} {
		f.Add(im.bytes())
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		h, rerr := Read(bytes.NewReader(file))
		err := Check(bytes.NewReader(file))
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("Check = %v; want errs.ErrInvalid", err)
			}
			return
		}
		if rerr != nil {
			t.Fatalf("Check accepted what Read refused: %v", rerr)
		}
		switch {
		case h.Version != 2 && h.Version != 3:
			t.Fatalf("accepted version %d", h.Version)
		case h.BackingFileOffset != 0:
			t.Fatalf("accepted a backing file %q", h.BackingFile)
		case h.HasDataFile || h.IncompatibleFeatures&IncompatExternalData != 0:
			t.Fatalf("accepted an external data file %q", h.DataFile)
		case h.IncompatibleFeatures&^(IncompatDirty|IncompatCompressionType|IncompatExtendedL2) != 0:
			t.Fatalf("accepted incompatible features %#x", h.IncompatibleFeatures)
		case h.ClusterBits < 9 || h.ClusterBits > 21 || h.VirtualSize > MaxVirtualSize || h.CryptMethod != 0:
			t.Fatalf("accepted %+v", h)
		}
	})
}
