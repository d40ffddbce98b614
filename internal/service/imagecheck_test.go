package service

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/qcow2"
)

func newTestService(t *testing.T, cfg Config) *Service {
	t.Helper()
	cfg.DataDir = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// files yields one file per role, as an upload's parts.
func files(parts ...[2]string) NextFile {
	return func() (string, io.Reader, error) {
		if len(parts) == 0 {
			return "", nil, io.EOF
		}
		p := parts[0]
		parts = parts[1:]
		return p[0], strings.NewReader(p[1]), nil
	}
}

// A disk whose qcow2 header names another file, or that QEMU may not
// open safely, is refused at import, and nothing of it stays.
func TestImportRefusesUnsafeDisks(t *testing.T) {
	c := newTestService(t, Config{})
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		disk []byte
		msg  string
	}{
		{"backing file", qcow2.MinimalHeader("/etc/shadow", 0), `names a backing file ("/etc/shadow")`},
		{"data file", qcow2.MinimalHeader("", 1<<2), "external file"},
		{"unknown feature", qcow2.MinimalHeader("", 1<<9), "incompatible feature bits 9"},
		{"corrupt", qcow2.MinimalHeader("", 1<<1), "marked corrupt"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ImportImage(ctx, api.ImportImageMeta{Name: "bad"}, files([2]string{api.RoleDisk, string(tt.disk)}))
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "qemu-img") {
				t.Errorf("import = %v; want invalid containing %q and how to fix it", err, tt.msg)
			}
		})
	}
	if ims, _ := c.Images(ctx); len(ims) != 0 {
		t.Errorf("refused imports left records: %+v", ims)
	}
	if left, _ := os.ReadDir(c.images.dir); len(left) != 0 {
		t.Errorf("refused imports left files: %v", left)
	}
}

func TestJudgeInfo(t *testing.T) {
	for _, tt := range []struct{ name, json, msg string }{
		{"qcow2", `{"format":"qcow2","virtual-size":1073741824,"format-specific":{"type":"qcow2","data":{"compat":"1.1"}}}`, ""},
		{"raw", `{"format":"raw","virtual-size":1024}`, `as "raw", not qcow2`},
		{"backing", `{"format":"qcow2","backing-filename":"/etc/shadow","full-backing-filename":"/etc/shadow"}`, `backing file ("/etc/shadow")`},
		{"data file", `{"format":"qcow2","format-specific":{"type":"qcow2","data":{"data-file":"/dev/sda"}}}`, `external file ("/dev/sda")`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := judgeInfo([]byte(tt.json))
			if (tt.msg == "") != (err == nil) || (err != nil && (!errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tt.msg))) {
				t.Errorf("judgeInfo = %v; want %q", err, tt.msg)
			}
		})
	}
}

// qemu-img, under its limits, reads a good image, and refuses one with a
// data file by itself (inspectDisk is called here without the header
// check that would refuse it first), or one it cannot parse. Without
// qemu-img the step is skipped.
func TestInspectDisk(t *testing.T) {
	ctx := context.Background()
	c := newTestService(t, Config{QEMUImg: "/nonexistent/qemu-img"})
	if err := c.inspectDisk(ctx, "x", "/nonexistent/disk"); err != nil {
		t.Errorf("without qemu-img: %v; want the step skipped", err)
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img is not installed (apt install qemu-utils)")
	}
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit is not installed (util-linux)")
	}
	c = newTestService(t, Config{})
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v: %s", args, err, out)
		}
	}
	run("create", "-q", "-f", "qcow2", p("good.qcow2"), "64M")
	run("create", "-q", "-f", "qcow2", "-o", "data_file="+p("data.raw"), p("data.qcow2"), "64M")
	garbage := append(qcow2.MinimalHeader("", 0), make([]byte, 4096)...)
	binary.BigEndian.PutUint64(garbage[40:], 1<<60) // the L1 table far past the end
	binary.BigEndian.PutUint32(garbage[36:], 1<<20)
	os.WriteFile(p("garbage.qcow2"), garbage, 0o600)
	for _, tt := range []struct{ file, msg string }{
		{"good.qcow2", ""},
		{"data.qcow2", `external file ("` + p("data.raw") + `")`},
		{"garbage.qcow2", "qemu-img cannot read the disk image"},
	} {
		err := c.inspectDisk(ctx, "x", p(tt.file))
		if (tt.msg == "") != (err == nil) || (err != nil && (!errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tt.msg))) {
			t.Errorf("%s: inspectDisk = %v; want %q", tt.file, err, tt.msg)
		}
	}
}
