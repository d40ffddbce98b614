package testguest

import (
	"fmt"
	"io"
)

// cpioWriter writes a "newc" cpio archive, the format the kernel unpacks
// as an initramfs. Only what an initramfs needs: directories, regular
// files and symlinks, all owned by root.
type cpioWriter struct {
	w    io.Writer
	ino  int
	err  error
	done bool
}

const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
)

func (c *cpioWriter) header(name string, mode, size int) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := 1
	if mode&modeDir != 0 {
		nlink = 2
	}
	// 13 fields of 8 hex digits after the magic; see the kernel's
	// Documentation/driver-api/early-userspace/buffer-format.rst.
	_, c.err = fmt.Fprintf(c.w, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%s\x00",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0, name)
	c.pad(110 + len(name) + 1)
}

// pad aligns to 4 bytes after n bytes written.
func (c *cpioWriter) pad(n int) {
	if c.err == nil && n%4 != 0 {
		_, c.err = c.w.Write(make([]byte, 4-n%4))
	}
}

func (c *cpioWriter) dir(name string) { c.header(name, modeDir|0o755, 0) }

func (c *cpioWriter) file(name string, perm int, data []byte) {
	c.header(name, modeFile|perm, len(data))
	if c.err == nil {
		_, c.err = c.w.Write(data)
	}
	c.pad(len(data))
}

func (c *cpioWriter) symlink(name, target string) {
	c.header(name, modeSymlink|0o777, len(target))
	if c.err == nil {
		_, c.err = io.WriteString(c.w, target)
	}
	c.pad(len(target))
}

// close writes the trailer.
func (c *cpioWriter) close() error {
	c.header("TRAILER!!!", 0, 0)
	return c.err
}
