package qemu

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/driver"
)

// The driver cuts a console log past its cap to about its last half,
// logs it, and leaves a log within the cap alone; Console still reads it
// by logical offset.
func TestConsoleCap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "console.log")
	var logs bytes.Buffer
	d := &Driver{log: slog.New(slog.NewTextHandler(&logs, nil)), vms: map[string]*vm{}}
	v := &vm{dir: dir, st: vmState{Launch: launch{Spec: driver.VMSpec{ID: goldenID, Name: "chatty"}, Console: path}}}
	d.vms[goldenID] = v

	const max = 4 << 20
	line := strings.Repeat("x", 63) + "\n"
	if err := os.WriteFile(path, []byte(strings.Repeat(line, max/64)), 0o600); err != nil {
		t.Fatal(err)
	}
	d.capConsole(v, max)
	if fi, _ := os.Stat(path); fi.Size() != max {
		t.Errorf("a log at its cap was cut to %d bytes", fi.Size())
	}
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(strings.Repeat(line, (1<<20)/64) + "the end\n")
	f.Close()
	d.capConsole(v, max)
	fi, _ := os.Stat(path)
	if fi.Size() > max/2+(1<<20) || fi.Size() < max/2 {
		t.Errorf("after the cap the log is %d bytes; want about %d", fi.Size(), max/2)
	}
	if !strings.Contains(logs.String(), "cut_bytes=3145728") || !strings.Contains(logs.String(), "vm=chatty") {
		t.Errorf("the cut was not logged: %s", logs.String())
	}
	rc, err := d.Console(t.Context(), goldenID, 5<<20)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "the end\n" {
		t.Errorf("console from logical offset 5 MiB = %q; want the last line", b)
	}
}
