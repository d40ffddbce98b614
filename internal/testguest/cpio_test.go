package testguest

import (
	"bytes"
	"testing"
)

func TestCPIOLayout(t *testing.T) {
	var b bytes.Buffer
	c := &cpioWriter{w: &b}
	c.dir("bin")
	c.file("init", 0o755, []byte("#!/bin/sh\n"))
	c.symlink("bin/sh", "busybox")
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	if len(out)%4 != 0 {
		t.Errorf("archive length %d is not 4-aligned", len(out))
	}
	for _, want := range []string{"070701", "bin\x00", "init\x00", "#!/bin/sh\n", "busybox", "TRAILER!!!\x00"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("archive lacks %q", want)
		}
	}
	// The first header: inode 1, a directory with mode 0755.
	if string(out[6:14]) != "00000001" || string(out[14:22]) != "000041ed" {
		t.Errorf("first header = %q", out[:110])
	}
}
