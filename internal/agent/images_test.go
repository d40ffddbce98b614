package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/qcow2"
)

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// controllerServing plays the controller's image file endpoint, serving
// files by image name.
func controllerServing(t *testing.T, disks map[string][]byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/images/"), "/files/disk")
		b, ok := disks[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func diskImage(name string, b []byte) api.Image {
	return api.Image{Name: name, Kind: api.ImageDisk, Files: []api.ImageFile{{Role: api.RoleDisk, Size: int64(len(b)), SHA256: sum(b)}}}
}

// The agent checks a base image's qcow2 header itself: a disk that names
// a backing or data file is refused when it is fetched (nothing stays in
// the cache) and when a cached copy is about to be used.
func TestImageCacheRefusesUnsafeBase(t *testing.T) {
	good, backing, data := qcow2.MinimalHeader("", 0), qcow2.MinimalHeader("/etc/shadow", 0), qcow2.MinimalHeader("", 1<<2)
	dir := t.TempDir()
	c := &imageCache{client: api.NewHTTPClient(api.HTTPOptions{}), controller: controllerServing(t, map[string][]byte{"good": good, "backing": backing, "data": data}),
		localDir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx := context.Background()

	p, err := c.Path(ctx, diskImage("good", good), api.RoleDisk, api.PoolLocal, "")
	if err != nil || p != filepath.Join(dir, sum(good)+".qcow2") {
		t.Fatalf("good image: %q, %v", p, err)
	}
	for name, b := range map[string][]byte{"backing": backing, "data": data} {
		_, err := c.Path(ctx, diskImage(name, b), api.RoleDisk, api.PoolLocal, "")
		if err == nil || !strings.Contains(err.Error(), "qemu-img convert") {
			t.Errorf("%s: Path = %v; want refused, saying how to convert it", name, err)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("the cache holds %v; want only the good image", left)
	}

	// A file in the cache under its checksum, put there by someone else.
	if err := os.WriteFile(filepath.Join(dir, sum(backing)+".qcow2"), backing, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Path(ctx, diskImage("backing", backing), api.RoleDisk, api.PoolLocal, ""); err == nil || !strings.Contains(err.Error(), "backing file") {
		t.Errorf("cached unsafe base: Path = %v; want refused", err)
	}
}

// A disk copied from another host may name its base, nothing else.
func TestCheckCopiedDisk(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name    string
		disk    []byte
		layered bool
		ok      bool
	}{
		{"overlay", qcow2.MinimalHeader("/old/host/base.qcow2", 0), true, true},
		{"overlay with a data file", qcow2.MinimalHeader("/old/host/base.qcow2", 1<<2), true, false},
		{"plain qcow2 with a data file", qcow2.MinimalHeader("", 1<<2), false, false},
		{"raw disk of the fake driver", make([]byte, 4096), false, true},
		{"raw disk that should be layered", make([]byte, 4096), true, false},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
		os.WriteFile(p, tt.disk, 0o600)
		if err := checkCopiedDisk(p, tt.layered); (err == nil) != tt.ok {
			t.Errorf("%s: checkCopiedDisk = %v; want ok %v", tt.name, err, tt.ok)
		}
	}
}

// A disk is layered only on the base its VM recorded: the agent refuses
// an image whose disk file has another checksum, and a cached base whose
// bytes no longer match its name (it hashes a base once, then again only
// when the file changes).
func TestImageCacheKeepsTheRecordedBase(t *testing.T) {
	first, second := qcow2.MinimalHeader("", 0), qcow2.MinimalHeader("", 1<<4) // extended L2: another valid image
	dir := t.TempDir()
	c := &imageCache{client: api.NewHTTPClient(api.HTTPOptions{}), controller: controllerServing(t, map[string][]byte{"base": second}),
		localDir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx := context.Background()

	_, err := c.Path(ctx, diskImage("base", second), api.RoleDisk, api.PoolLocal, sum(first))
	if !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "another disk") {
		t.Errorf("image with another disk than the recorded base: %v; want a conflict", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("a refused base was fetched: %v", left)
	}
	p, err := c.Path(ctx, diskImage("base", second), api.RoleDisk, api.PoolLocal, sum(second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Path(ctx, diskImage("base", second), api.RoleDisk, api.PoolLocal, sum(second)); err != nil {
		t.Errorf("cached base: %v", err)
	}

	// Other bytes under the base's name (another valid header: the
	// checksum, not the header check, must catch it).
	if err := os.WriteFile(p, first, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = c.Path(ctx, diskImage("base", second), api.RoleDisk, api.PoolLocal, sum(second))
	if !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "not the "+sum(second)+" its name says") {
		t.Errorf("changed base: %v; want refused", err)
	}

	// A checksum that is no SHA-256 never becomes a path.
	bad := diskImage("base", second)
	bad.Files[0].SHA256 = "../../etc/passwd"
	if _, err := c.Path(ctx, bad, api.RoleDisk, api.PoolLocal, ""); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("checksum with a path in it: %v; want invalid", err)
	}
}
