package main

import (
	"crypto/sha256"
	"encoding/binary"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Disk records: 4 KiB blocks written in order from block 0. Each holds a
// header (magic, index, sequence, checksum) and a pattern derived from its
// index, so the guest can verify at boot everything it wrote before, and a
// host can compare images.
const (
	recSize  = 4096
	recMagic = 0x676f64776974 // "godwit"
	hdrSize  = 8 + 8 + 8 + 32
)

type disk struct {
	f    *os.File
	size int64
}

func openDisk(path string) (*disk, error) {
	// O_DIRECT|O_SYNC: each record reaches the host's image when written,
	// so a host-side checksum or a move right after sees it.
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_DIRECT|syscall.O_SYNC, 0)
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, 2)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &disk{f: f, size: size}, nil
}

func (d *disk) sizeMiB() int { return int(d.size >> 20) }

// capacity is how many records fit; the last MiB is left alone.
func (d *disk) capacity() int64 {
	n := (d.size - 1<<20) / recSize
	if n < 1 {
		n = 1
	}
	return n
}

// encodeRecord fills b (recSize bytes) with record i of sequence seq.
func encodeRecord(b []byte, i, seq uint64) {
	for j := hdrSize; j < recSize; j++ {
		b[j] = byte(uint64(j)*31 + i*7 + 1)
	}
	binary.LittleEndian.PutUint64(b[0:], recMagic)
	binary.LittleEndian.PutUint64(b[8:], i)
	binary.LittleEndian.PutUint64(b[16:], seq)
	sum := checksum(b)
	copy(b[24:hdrSize], sum[:])
}

func checksum(b []byte) [32]byte {
	h := sha256.New()
	h.Write(b[:24])
	h.Write(b[hdrSize:])
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// verifyRecord reports whether b holds a record (magic present) and
// whether it is intact and is record i.
func verifyRecord(b []byte, i uint64) (present, ok bool) {
	if binary.LittleEndian.Uint64(b[0:]) != recMagic {
		return false, false
	}
	sum := checksum(b)
	return true, binary.LittleEndian.Uint64(b[8:]) == i && string(sum[:]) == string(b[24:hdrSize])
}

// alignedBuf returns a recSize buffer aligned for O_DIRECT.
func alignedBuf() []byte {
	raw := make([]byte, 2*recSize)
	off := int(recSize - uintptr(unsafe.Pointer(&raw[0]))%recSize)
	if off == recSize {
		off = 0
	}
	return raw[off : off+recSize]
}

// scan counts the records from block 0 up to the first block without one;
// bad counts records whose checksum or index is wrong.
func (d *disk) scan() (valid, bad int) {
	b := alignedBuf()
	for i := int64(0); i < d.capacity(); i++ {
		if _, err := d.f.ReadAt(b, i*recSize); err != nil {
			break
		}
		present, ok := verifyRecord(b, uint64(i))
		if !present {
			break
		}
		if ok {
			valid++
		} else {
			bad++
		}
	}
	return valid, bad
}

// writeLoop appends a record about once a second from index next on,
// wrapping to 0 at capacity (later boots then count the full disk).
func (d *disk) writeLoop(next int, valid *atomic.Int64) {
	b := alignedBuf()
	seq := uint64(time.Now().UnixNano())
	for i := int64(next); ; i++ {
		if i >= d.capacity() {
			i = 0
		}
		seq++
		encodeRecord(b, uint64(i), seq)
		if _, err := d.f.WriteAt(b, i*recSize); err == nil && i >= valid.Load() {
			valid.Store(i + 1)
		}
		time.Sleep(time.Second)
	}
}
