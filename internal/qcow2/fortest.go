package qcow2

import "encoding/binary"

// MinimalHeader is a minimal version 3 qcow2 header (64 KiB clusters,
// 1 GiB) with the given incompatible feature bits, naming backing as its
// backing file when it is not empty: enough for Check, for the tests of
// the packages that check images on their way in.
func MinimalHeader(backing string, incompat uint64) []byte {
	be := binary.BigEndian
	b := make([]byte, 112+8) // the header, then the extensions' end marker
	copy(b, "QFI\xfb")
	be.PutUint32(b[4:], 3)
	be.PutUint32(b[20:], 16)
	be.PutUint64(b[24:], 1<<30)
	be.PutUint64(b[72:], incompat)
	be.PutUint32(b[96:], 4)
	be.PutUint32(b[100:], 112)
	if backing != "" {
		be.PutUint64(b[8:], uint64(len(b)))
		be.PutUint32(b[16:], uint32(len(backing)))
		b = append(b, backing...)
	}
	return b
}
