package driver

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// lines returns numbered lines from..to-1, each 64 bytes.
func lines(from, to int) []byte {
	var b bytes.Buffer
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "line %058d\n", i)
	}
	return b.Bytes()
}

func appendTo(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func readFrom(t *testing.T, path string, offset int64) ([]byte, int64) {
	t.Helper()
	r, err := OpenLog(path, offset)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b, r.Start()
}

// A log past its limit keeps its tail, and stays readable by logical
// offset: an offset past the cut reads on where it was, one that was cut
// reads from the oldest kept byte, one past the end reads nothing — with
// the in-place collapse and with the copying fallback.
func TestCapLog(t *testing.T) {
	for _, collapse := range []bool{true, false} {
		t.Run(fmt.Sprintf("collapse=%v", collapse), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "console.log")
			const max, keep = 4 << 20, 2 << 20
			if n, err := capLog(path, max, keep, collapse); n != 0 || err != nil {
				t.Fatalf("cap of a missing log = %d, %v", n, err)
			}
			all := lines(0, (5<<20)/64) // 5 MiB
			appendTo(t, path, all)
			n, err := capLog(path, max, keep, collapse)
			if err != nil {
				t.Fatal(err)
			}
			if n != 3<<20 {
				t.Errorf("cut %d bytes; want 3 MiB (whole MiBs, leaving at least %d)", n, keep)
			}
			got, _ := os.ReadFile(path)
			if !bytes.Equal(got, all[n:]) {
				t.Fatalf("after the cut the log holds %d bytes, not the last %d of what was written", len(got), len(all)-int(n))
			}
			// Within the limit now: nothing more is cut.
			if again, err := capLog(path, max, keep, collapse); again != 0 || err != nil {
				t.Errorf("a second cap cut %d (%v); want nothing", again, err)
			}
			more := lines(len(all)/64, len(all)/64+100)
			appendTo(t, path, more)
			whole := append(append([]byte{}, all...), more...)

			b, start := readFrom(t, path, int64(len(all)))
			if start != int64(len(all)) || !bytes.Equal(b, more) {
				t.Errorf("read from the old end: start %d, %d bytes; want %d, the %d new ones", start, len(b), len(all), len(more))
			}
			b, start = readFrom(t, path, 1000)
			if start != n || !bytes.Equal(b, whole[n:]) {
				t.Errorf("read from a cut offset: start %d, %d bytes; want %d, the kept tail", start, len(b), n)
			}
			b, start = readFrom(t, path, 1<<40)
			if start != int64(len(whole)) || len(b) != 0 {
				t.Errorf("read from past the end: start %d, %d bytes; want %d, nothing", start, len(b), len(whole))
			}
			// A log with no cut is read by plain byte offsets.
			fresh := filepath.Join(t.TempDir(), "console.log")
			appendTo(t, fresh, lines(0, 10))
			if b, start := readFrom(t, fresh, 64); start != 64 || len(b) != 9*64 {
				t.Errorf("uncut log from 64: start %d, %d bytes", start, len(b))
			}
			if b, start := readFrom(t, fresh, 10000); start != 640 || len(b) != 0 {
				t.Errorf("uncut log from past its end: start %d, %d bytes; want 640, nothing", start, len(b))
			}
		})
	}
	if _, err := CapLog(filepath.Join(t.TempDir(), "x"), 10, 10); err == nil {
		t.Error("keep >= max was accepted")
	}
}
