package agent

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver/fake"
	"github.com/godwit/godwit/internal/hostapi"
)

// What the agent and its driver write for a VM — its directory and
// state, disk, console log, seed, the agent's lock, lease renewal record
// and shared-pool marker — is the owner's alone, whatever the umask.
func TestFileModes(t *testing.T) {
	state, shared := t.TempDir(), t.TempDir()
	d, err := fake.New(fake.Config{StateDir: filepath.Join(state, "fake"), BootDelay: time.Millisecond, HeartbeatHz: 50,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	a, err := New(context.Background(), Config{Name: "h1", Driver: "fake", StateDir: state, SharedDir: shared, NoLease: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	a.drv.Close()
	a.drv = d
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	c := hostapi.NewAgent(srv.URL, 10*time.Second)
	const id = "0b5c7c4e-2f57-4a0e-9d8a-7e1f6c2b9a10"
	if _, err := c.CreateVM(context.Background(), hostapi.CreateVM{ID: id, Name: "m", VCPUs: 1, MemoryMiB: 128, DiskMiB: 16,
		Pool: "local", UserData: "#cloud-config\n", Start: true}); err != nil {
		t.Fatal(err)
	}
	if err := writeRenewal(state, renewal{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, root := range []string{state, shared} {
		err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err != nil || path == root {
				return err
			}
			fi, err := e.Info()
			if err != nil {
				return err
			}
			n++
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s has mode %v; want no access for group or others", path, fi.Mode().Perm())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 8 {
		t.Errorf("checked %d files; the vm's files were not written where expected", n)
	}
}
