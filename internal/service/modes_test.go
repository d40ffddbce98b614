package service

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/godwit/godwit/api"
)

// The controller's data directory, and the image files in it, are the
// owner's alone whatever the umask.
func TestDataModes(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "controller")
	c, err := New(ctx, Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kernel := make([]byte, 4096)
	copy(kernel[0x202:], "HdrS")
	sent := false
	if _, err := c.ImportImage(ctx, api.ImportImageMeta{Name: "guest"}, func() (string, io.Reader, error) {
		if sent {
			return "", nil, io.EOF
		}
		sent = true
		return api.RoleKernel, bytes.NewReader(kernel), nil
	}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, c.images.path("guest", api.RoleKernel): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v; want %v", path, fi.Mode().Perm(), want)
		}
	}
}
