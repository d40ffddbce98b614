package controller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/httpx"
)

// imageStore keeps image files under dir/<name>/<role>. A file lands
// there only complete and checksummed: uploads go to a temporary
// directory renamed into place once the record is written.
type imageStore struct {
	dir string
}

func newImageStore(dir string) (*imageStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create image directory: %w", err)
	}
	// Leftovers of uploads interrupted by a crash.
	tmps, _ := filepath.Glob(filepath.Join(dir, ".upload-*"))
	for _, t := range tmps {
		_ = os.RemoveAll(t)
	}
	return &imageStore{dir: dir}, nil
}

func (s *imageStore) path(name, role string) string { return filepath.Join(s.dir, name, role) }

// File signatures checked at import, so a wrong file is refused at once
// rather than failing at boot on some host later.
var (
	qcow2Magic = []byte("QFI\xfb")
	bzImageHdr = []byte("HdrS") // at offset 0x202 of an x86 bzImage
)

func checkMagic(role string, head []byte) error {
	switch role {
	case api.RoleDisk:
		if !bytes.HasPrefix(head, qcow2Magic) {
			return errs.Invalid("disk file is not qcow2; convert it with: qemu-img convert -O qcow2 IN OUT.qcow2")
		}
	case api.RoleKernel:
		if len(head) < 0x206 || !bytes.Equal(head[0x202:0x206], bzImageHdr) {
			return errs.Invalid("kernel file is not an x86 bzImage (e.g. /boot/vmlinuz-*)")
		}
	}
	return nil
}

// importImage reads a multipart upload: a "meta" JSON part first, then
// file parts named kernel, initrd and disk, streamed to disk with their
// SHA-256 computed on the way.
func (c *Controller) importImage(w http.ResponseWriter, r *http.Request) {
	im, err := c.ImportImage(r.Context(), r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusCreated, im)
}

// ImportImage stores the image uploaded in r.
func (c *Controller) ImportImage(ctx context.Context, r *http.Request) (api.Image, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return api.Image{}, errs.Invalid("upload an image as multipart/form-data with a meta part and kernel, initrd or disk files (godwit image import does this)")
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "meta" {
		return api.Image{}, errs.Invalid("the first part of an image upload must be the JSON \"meta\" part")
	}
	var meta api.ImportImageMeta
	mb, _ := io.ReadAll(io.LimitReader(part, httpx.MaxBody))
	if err := httpx.DecodeBytes(mb, &meta); err != nil {
		return api.Image{}, err
	}
	if err := api.ValidateName("image", meta.Name); err != nil {
		return api.Image{}, errs.Invalid("%v", err)
	}
	if len(meta.Cmdline) > maxCmdline {
		return api.Image{}, errs.Invalid("cmdline is %d bytes; at most %d", len(meta.Cmdline), maxCmdline)
	}
	if _, err := c.store.Image(ctx, meta.Name); err == nil {
		return api.Image{}, errs.Conflict("image %q already exists; delete it first or choose another name", meta.Name)
	}

	tmp, err := os.MkdirTemp(c.images.dir, ".upload-")
	if err != nil {
		return api.Image{}, err
	}
	defer os.RemoveAll(tmp) // a no-op after the rename below
	im := api.Image{Name: meta.Name, Cmdline: meta.Cmdline, CreatedAt: time.Now().UTC()}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return api.Image{}, errs.Invalid("read upload: %v", err)
		}
		role := part.FormName()
		if role != api.RoleKernel && role != api.RoleInitrd && role != api.RoleDisk {
			return api.Image{}, errs.Invalid("unknown image part %q; use kernel, initrd or disk", role)
		}
		if _, dup := im.File(role); dup {
			return api.Image{}, errs.Invalid("image part %q given twice", role)
		}
		f, err := saveFile(filepath.Join(tmp, role), role, part)
		if err != nil {
			return api.Image{}, err
		}
		im.Files = append(im.Files, f)
	}
	if im.Kind, err = imageKind(im); err != nil {
		return api.Image{}, err
	}
	sort.Slice(im.Files, func(i, j int) bool { return im.Files[i].Role < im.Files[j].Role })
	if err := c.store.CreateImage(ctx, im); err != nil {
		return api.Image{}, err
	}
	if err := os.Rename(tmp, filepath.Join(c.images.dir, im.Name)); err != nil {
		_ = c.store.DeleteImage(context.WithoutCancel(ctx), im.Name)
		return api.Image{}, fmt.Errorf("store image files: %w", err)
	}
	c.log.Info("image imported", "image", im.Name, "kind", im.Kind)
	return im, nil
}

func imageKind(im api.Image) (string, error) {
	_, k := im.File(api.RoleKernel)
	_, i := im.File(api.RoleInitrd)
	_, d := im.File(api.RoleDisk)
	switch {
	case i && !k:
		return "", errs.Invalid("an initrd needs a kernel; add --kernel")
	case k && d:
		return api.ImageKernelDisk, nil
	case k:
		return api.ImageKernel, nil
	case d:
		return api.ImageDisk, nil
	}
	return "", errs.Invalid("an image needs a kernel (with an optional initrd), a qcow2 disk, or both")
}

// saveFile streams one uploaded file to path, checking its signature and
// computing its size and SHA-256.
func saveFile(path, role string, r io.Reader) (api.ImageFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return api.ImageFile{}, err
	}
	defer f.Close()
	head := make([]byte, 0x206)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return api.ImageFile{}, errs.Invalid("read %s: %v", role, err)
	}
	head = head[:n]
	if n == 0 {
		return api.ImageFile{}, errs.Invalid("%s file is empty", role)
	}
	if err := checkMagic(role, head); err != nil {
		return api.ImageFile{}, err
	}
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), io.MultiReader(bytes.NewReader(head), r))
	if err != nil {
		return api.ImageFile{}, errs.Invalid("upload of %s broke off: %v", role, err)
	}
	if err := f.Sync(); err != nil {
		return api.ImageFile{}, err
	}
	return api.ImageFile{Role: role, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func (c *Controller) listImages(w http.ResponseWriter, r *http.Request) {
	ims, err := c.store.Images(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusOK, ims)
}

func (c *Controller) imageByName(ctx context.Context, name string) (api.Image, error) {
	im, err := c.store.Image(ctx, name)
	if errors.Is(err, errs.ErrNotFound) {
		return api.Image{}, errs.NotFound("image %q not found; list images with: godwit image list", name)
	}
	return im, err
}

func (c *Controller) getImage(w http.ResponseWriter, r *http.Request) {
	im, err := c.imageByName(r.Context(), r.PathValue("name"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusOK, im)
}

func (c *Controller) deleteImage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := c.imageByName(r.Context(), name); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.store.DeleteImage(r.Context(), name); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := os.RemoveAll(filepath.Join(c.images.dir, name)); err != nil {
		c.log.Error("remove image files", "image", name, "err", err)
	}
	c.log.Info("image deleted", "image", name)
	w.WriteHeader(http.StatusNoContent)
}

// imageFile serves one image file to an agent (with Range support, so an
// interrupted download can resume).
func (c *Controller) imageFile(w http.ResponseWriter, r *http.Request) {
	im, err := c.imageByName(r.Context(), r.PathValue("name"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	role := r.PathValue("role")
	ff, ok := im.File(role)
	if !ok {
		c.fail(w, r, errs.NotFound("image %q has no %s file", im.Name, role))
		return
	}
	f, err := os.Open(c.images.path(im.Name, role))
	if err != nil {
		c.fail(w, r, fmt.Errorf("open image file: %w", err))
		return
	}
	defer f.Close()
	w.Header().Set("X-Godwit-Sha256", ff.SHA256)
	http.ServeContent(w, r, role, im.CreatedAt, f)
}
