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
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/qcow2"
)

// downloadHeaderTimeout bounds the wait for a download's reply headers: the
// controller (an image file) and a source agent (a stopped VM's disk)
// answer at once and then stream, so a longer silence is a stuck server.
// The stream itself has no limit: a large file takes as long as it takes.
const downloadHeaderTimeout = time.Minute

// imageCache holds image files fetched from the controller, named by
// their SHA-256 so a file is fetched once and never confused with another
// version: an image deleted and imported again under its name with other
// content is another file here, and a VM's disk, layered on the file of
// the checksum its record names (hostapi.CreateVM.BaseSHA256), never
// finds another base under that path. Base disks of shared-pool VMs are
// cached in the shared pool, since every host that may run such a VM
// must see its backing file.
type imageCache struct {
	client     *http.Client // to the controller
	controller string
	localDir   string
	sharedDir  string
	log        *slog.Logger

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	// verified are the cached base files whose bytes were found to
	// match their name, as they were then: hashed again once changed.
	verified map[string]fileStamp
}

// fileStamp tells whether a file changed since it was looked at.
type fileStamp struct {
	ino, size int64
	mod       time.Time
}

func stampOf(fi os.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mod: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = int64(sys.Ino)
	}
	return st
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
// needed. pool is where a disk's base must live (local or shared). base,
// when set, is the checksum the VM's disk must be layered on: a disk
// file with another is refused.
func (c *imageCache) Path(ctx context.Context, im api.Image, role, pool, base string) (string, error) {
	f, ok := im.File(role)
	if !ok {
		return "", errs.Invalid("image %q has no %s file", im.Name, role)
	}
	if role == api.RoleDisk && base != "" && f.SHA256 != base {
		return "", errs.Conflict("image %q now holds another disk (sha256 %s) than the base this vm is layered on (sha256 %s); import the original again under that name, or rebuild the vm from an image",
			im.Name, f.SHA256, base)
	}
	if !sha256RE.MatchString(f.SHA256) {
		return "", errs.Invalid("image %q: %s checksum %q is not a SHA-256 in hex", im.Name, role, f.SHA256)
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
		if role == api.RoleDisk {
			// Checked again at every use: the file may predate the
			// check, or the shared pool may hold another host's copy.
			if err := c.verify(path, f.SHA256); err != nil {
				return "", fmt.Errorf("base image %q (%s): %w", im.Name, path, err)
			}
		}
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	c.log.Info("fetching image file", "image", im.Name, "role", role, "size", f.Size)
	if err := c.fetch(ctx, im.Name, role, f.SHA256, path); err != nil {
		return "", fmt.Errorf("fetch %s of image %q: %w", role, im.Name, err)
	}
	if fi, err := os.Stat(path); err == nil && role == api.RoleDisk {
		c.markVerified(path, stampOf(fi)) // hashed on the way in
	}
	return path, nil
}

// sha256RE is what a file checksum from the controller must look like:
// it names a file here.
var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// verify checks a cached base file before a disk is layered on it: its
// qcow2 header (checkBase), and that its bytes still have the checksum
// that names it — hashed once per agent run and again whenever the file
// changes, since a base is large and stays put.
func (c *imageCache) verify(path, sum string) error {
	if err := checkBase(path); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	st := stampOf(fi)
	c.mu.Lock()
	done := c.verified[path] == st
	c.mu.Unlock()
	if done {
		return nil
	}
	got, _, err := fileSHA256(path)
	if err != nil {
		return err
	}
	if got != sum {
		return errs.Conflict("the file's sha256 is %s, not the %s its name says: it was changed on disk; remove it so that it is fetched again", got, sum)
	}
	c.markVerified(path, st)
	return nil
}

// markVerified notes that path, as st describes it, has the bytes its
// name says.
func (c *imageCache) markVerified(path string, st fileStamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.verified == nil {
		c.verified = map[string]fileStamp{}
	}
	c.verified[path] = st
}

// checkBase refuses a disk file as a base image unless its qcow2 header
// is safe (internal/qcow2): the agent does not trust the controller's
// check of the copy it serves.
func checkBase(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return qcow2.Check(f)
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
	resp, err := c.client.Do(req)
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
	if role == api.RoleDisk {
		if err := checkBase(tmp.Name()); err != nil {
			return err
		}
	}
	return os.Rename(tmp.Name(), path)
}
