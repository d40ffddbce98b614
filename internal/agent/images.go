package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// downloadHeaderTimeout bounds the wait for a download's reply headers: the
// controller (an image file) and a source agent (a stopped VM's disk)
// answer at once and then stream, so a longer silence is a stuck server.
// The stream itself has no limit: a large file takes as long as it takes.
const downloadHeaderTimeout = time.Minute

// downloadClient fetches image files and disks.
var downloadClient = api.NewHTTPClient(api.HTTPOptions{ResponseHeaderTimeout: downloadHeaderTimeout})

// imageCache holds image files fetched from the controller, named by
// their SHA-256 so a file is fetched once and never confused with another
// version. Base disks of shared-pool VMs are cached in the shared pool,
// since every host that may run such a VM must see its backing file.
type imageCache struct {
	controller string
	localDir   string
	sharedDir  string
	log        *slog.Logger

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (c *imageCache) lock(key string) func() {
	c.mu.Lock()
	if c.locks == nil {
		c.locks = map[string]*sync.Mutex{}
	}
	l, ok := c.locks[key]
	if !ok {
		l = &sync.Mutex{}
		c.locks[key] = l
	}
	c.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Path returns the local path of an image file, fetching it first if
// needed. pool is where a disk's base must live (local or shared).
func (c *imageCache) Path(ctx context.Context, im api.Image, role, pool string) (string, error) {
	f, ok := im.File(role)
	if !ok {
		return "", errs.Invalid("image %q has no %s file", im.Name, role)
	}
	dir := c.localDir
	if role == api.RoleDisk && pool == api.PoolShared {
		if c.sharedDir == "" {
			return "", errs.Invalid("this host has no shared pool")
		}
		dir = filepath.Join(c.sharedDir, "images")
	}
	path := filepath.Join(dir, f.SHA256)
	if role == api.RoleDisk {
		path += ".qcow2"
	}
	defer c.lock(path)()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	c.log.Info("fetching image file", "image", im.Name, "role", role, "size", f.Size)
	if err := c.fetch(ctx, im.Name, role, f.SHA256, path); err != nil {
		return "", fmt.Errorf("fetch %s of image %q: %w", role, im.Name, err)
	}
	return path, nil
}

// fetch downloads to a temporary file, checks the checksum and renames
// into place, so a crash or a concurrent fetch never leaves half a file
// under the final name.
func (c *imageCache) fetch(ctx context.Context, name, role, sum, path string) error {
	u := c.controller + "/v1/images/" + url.PathEscape(name) + "/files/" + role
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := downloadClient.Do(req)
	if err != nil {
		return errs.Unavailable("controller unreachable: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("controller answered %s", resp.Status)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fetch-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), resp.Body); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("checksum mismatch: got %s, want %s", got, sum)
	}
	return os.Rename(tmp.Name(), path)
}
