package driver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Console logs. A driver keeps a VM's serial console in a file that QEMU
// appends to for as long as the VM lives on the host, so a chatty guest
// would fill the disk: CapLog cuts the file's head once it passes a
// limit, keeping its tail. Readers hold logical offsets — bytes since the
// log began, the cut ones included — so that an offset stays valid across
// a cut: the file's first byte is at logical offset <log>.cut (the number
// of bytes cut so far, absent before the first cut).
//
// The cut is in place, with the file open in QEMU: fallocate's
// COLLAPSE_RANGE removes the head under the file's lock, so output
// written during the cut is neither lost nor reordered. Where the
// filesystem has no collapse (tmpfs, NFS, btrfs) the tail is copied out
// and appended back after a truncate: what the guest writes in that
// instant may be lost or land before the kept tail. Cuts and opens take
// a flock on the log, so a reader never computes its position from a cut
// count that does not match the file; a reader already streaming when a
// cut happens may skip or repeat part of what it reads next.

// logCutSuffix names the file that records how much of a log was cut.
const logCutSuffix = ".cut"

// cutAlign is the granularity of a cut: collapse ranges must be whole
// filesystem blocks, and a MiB is a multiple of every common block size.
const cutAlign = 1 << 20

// fallocFlCollapseRange is Linux's FALLOC_FL_COLLAPSE_RANGE.
const fallocFlCollapseRange = 0x08

// LogReader reads a console log from a position; Start is the logical
// offset of its first byte: where the caller asked to start or, when that
// was cut (or lies past the end), where reading really starts.
type LogReader struct {
	*os.File
	start int64
}

// Start is the logical offset of the first byte the reader returns.
func (l *LogReader) Start() int64 { return l.start }

// OpenLog opens a console log for reading from logical offset on;
// drivers that keep the console in a file implement Console with it. An
// offset whose bytes were cut reads from the oldest kept byte; one past
// the log's end reads nothing yet (drivertest's contract), as before
// logs were cut: a cut never moves the end, so no offset a reader was
// given falls past it.
func OpenLog(path string, offset int64) (*LogReader, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	cut := readCut(path)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	pos := min(max(offset-cut, 0), fi.Size())
	if _, err := f.Seek(pos, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return &LogReader{File: f, start: cut + pos}, nil
}

// CapLog cuts the head of the log at path when it is larger than max
// bytes, keeping about its last keep bytes (keep < max), and returns how
// many bytes it cut. A missing log is no error.
func CapLog(path string, max, keep int64) (int64, error) { return capLog(path, max, keep, true) }

// capLog is CapLog, with the in-place collapse or (for tests) without.
func capLog(path string, max, keep int64, collapse bool) (int64, error) {
	if keep < 0 || keep >= max {
		return 0, fmt.Errorf("console log cap: keep %d must be less than the limit %d", keep, max)
	}
	// Appending, as QEMU does: the fallback's write lands at the end
	// whatever QEMU wrote since the truncate.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return 0, err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	fi, err := f.Stat()
	if err != nil || fi.Size() <= max {
		return 0, err
	}
	n := (fi.Size() - keep) / cutAlign * cutAlign
	if n <= 0 {
		return 0, nil
	}
	if err := cutHead(f, n, collapse); err != nil {
		return 0, fmt.Errorf("cut console log %s: %w", path, err)
	}
	return n, writeCut(path, readCut(path)+n)
}

// cutHead removes the first n bytes of f, by a collapse when asked and
// the filesystem has it, else by copying.
func cutHead(f *os.File, n int64, collapse bool) error {
	err := error(syscall.EOPNOTSUPP)
	if collapse {
		err = syscall.Fallocate(int(f.Fd()), fallocFlCollapseRange, 0, n)
	}
	if err == nil || !(errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS)) {
		return err
	}
	// No collapse here: copy the tail out, truncate, append it back.
	tail, err := io.ReadAll(io.NewSectionReader(f, n, 1<<62))
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = f.Write(tail)
	return err
}

// readCut returns how many bytes of the log at path were cut so far.
func readCut(path string) int64 {
	b, err := os.ReadFile(path + logCutSuffix)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func writeCut(path string, n int64) error {
	tmp := path + logCutSuffix + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(n, 10)+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path+logCutSuffix)
}
