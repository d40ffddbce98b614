package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/qcow2"
)

// imageStore keeps image files under dir/<name>/<role>. A file lands
// there only complete and checksummed: uploads go to a temporary
// directory renamed into place once the record is written.
type imageStore struct {
	dir string
}

func newImageStore(dir string) (*imageStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
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
var bzImageHdr = []byte("HdrS") // at offset 0x202 of an x86 bzImage

func checkMagic(role string, head []byte) error {
	switch role {
	case api.RoleDisk:
		if !bytes.HasPrefix(head, qcow2.Magic) {
			return errs.Invalid("disk file is not qcow2; convert it with: qemu-img convert -O qcow2 IN OUT.qcow2")
		}
	case api.RoleKernel:
		if len(head) < 0x206 || !bytes.Equal(head[0x202:0x206], bzImageHdr) {
			return errs.Invalid("kernel file is not an x86 bzImage (e.g. /boot/vmlinuz-*)")
		}
	}
	return nil
}

// NextFile returns an image upload's next file: its role (kernel, initrd
// or disk) and its bytes, or io.EOF after the last one.
type NextFile func() (role string, r io.Reader, err error)

// ImportImage stores an image: its name and command line in meta, its
// files as next yields them, each streamed to disk with its signature
// checked and its SHA-256 computed on the way.
func (c *Service) ImportImage(ctx context.Context, meta api.ImportImageMeta, next NextFile) (api.Image, error) {
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
		role, part, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return api.Image{}, uploadError("read upload", err)
		}
		if role != api.RoleKernel && role != api.RoleInitrd && role != api.RoleDisk {
			return api.Image{}, errs.Invalid("unknown image part %q; use kernel, initrd or disk", role)
		}
		if _, dup := im.File(role); dup {
			return api.Image{}, errs.Invalid("image part %q given twice", role)
		}
		f, err := saveFile(filepath.Join(tmp, role), role, part, c.uploadLimit(role))
		if err != nil {
			return api.Image{}, err
		}
		im.Files = append(im.Files, f)
	}
	if _, ok := im.File(api.RoleDisk); ok {
		if err := c.inspectDisk(ctx, meta.Name, filepath.Join(tmp, api.RoleDisk)); err != nil {
			return api.Image{}, err
		}
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

// uploadLimit is the most bytes an uploaded file of role may have.
func (c *Service) uploadLimit(role string) int64 {
	if role == api.RoleDisk {
		return c.cfg.MaxDiskUpload
	}
	return c.cfg.MaxKernelUpload
}

// UploadLimit is the most bytes an image upload may have in all (a disk
// and a kernel and an initrd at their limits, plus room for the meta
// part and the multipart framing), and the error that refuses more.
func (c *Service) UploadLimit() (int64, error) {
	limit := c.cfg.MaxDiskUpload + 2*c.cfg.MaxKernelUpload + 2<<20
	return limit, errs.TooLarge("the upload is larger than the limit of %s for an image's files in all; make the image smaller, or raise the limits with godwit serve --max-disk-upload and --max-kernel-upload",
		humanBytes(limit))
}

// uploadError is what a failed read of an upload answers: the reader's
// own error when it says what happened (the controller's limits), else
// an invalid request.
func uploadError(what string, err error) error {
	if errors.Is(err, errs.ErrTooLarge) || errors.Is(err, errs.ErrInvalid) {
		return err
	}
	return errs.Invalid("%s: %v", what, err)
}

// saveFile streams one uploaded file to path, checking its signature and
// computing its size and SHA-256; a file of more than max bytes is
// refused (413). A disk's qcow2 header is checked once it is all there
// (internal/qcow2): an image that names another file, or uses features
// QEMU may not handle safely, is refused.
func saveFile(path, role string, r io.Reader, max int64) (api.ImageFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return api.ImageFile{}, err
	}
	defer f.Close()
	head := make([]byte, 0x206)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return api.ImageFile{}, uploadError("read "+role, err)
	}
	head = head[:n]
	if n == 0 {
		return api.ImageFile{}, errs.Invalid("%s file is empty", role)
	}
	if err := checkMagic(role, head); err != nil {
		return api.ImageFile{}, err
	}
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(io.MultiReader(bytes.NewReader(head), r), max+1))
	if err != nil {
		return api.ImageFile{}, uploadError("upload of "+role+" broke off", err)
	}
	if size > max {
		flag := "--max-kernel-upload"
		if role == api.RoleDisk {
			flag = "--max-disk-upload"
		}
		return api.ImageFile{}, errs.TooLarge("the %s file is larger than the upload limit of %s; make it smaller, or raise the limit with godwit serve %s",
			role, humanBytes(max), flag)
	}
	if role == api.RoleDisk {
		if err := qcow2.Check(f); err != nil {
			return api.ImageFile{}, err
		}
	}
	if err := f.Sync(); err != nil {
		return api.ImageFile{}, err
	}
	return api.ImageFile{Role: role, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// diskSHA256 is the checksum of an image's disk file; "" without one.
func diskSHA256(im api.Image) string {
	f, _ := im.File(api.RoleDisk)
	return f.SHA256
}

// checkBase refuses to layer a VM's disk on an image whose disk file is
// not the one the VM recorded: the name was deleted and imported again
// with other content, and the VM's disk read on top of another base is
// garbage, or someone else's data. The agent checks the same again on
// its own copy.
func checkBase(vm api.VM, im api.Image) error {
	if vm.ImageSHA256 == "" {
		return nil
	}
	if got := diskSHA256(im); got != vm.ImageSHA256 {
		return errs.Conflict("image %q now holds another disk (sha256 %s) than the base vm %q is layered on (sha256 %s); import the original again under that name, or rebuild the vm from an image (godwit rebuild %s --image IMAGE), which replaces its disk",
			im.Name, short(got), vm.Name, short(vm.ImageSHA256), vm.Name)
	}
	return nil
}

// short is a checksum cut for a message.
func short(sum string) string {
	if sum == "" {
		return "none"
	}
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}

// humanBytes writes a limit briefly: 64 GiB, 256 MiB, 1000 bytes.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func (c *Service) imageByName(ctx context.Context, name string) (api.Image, error) {
	im, err := c.store.Image(ctx, name)
	if errors.Is(err, errs.ErrNotFound) {
		return api.Image{}, errs.NotFound("image %q not found; list images with: godwit image list", name)
	}
	return im, err
}

// Images lists the images.
func (c *Service) Images(ctx context.Context) ([]api.Image, error) { return c.store.Images(ctx) }

// Image returns one image, or a not-found error that says how to list them.
func (c *Service) Image(ctx context.Context, name string) (api.Image, error) {
	return c.imageByName(ctx, name)
}

// DeleteImage removes an image's record and its files; it is refused
// (conflict) while a VM uses the image, naming the first few of them.
func (c *Service) DeleteImage(ctx context.Context, name string) error {
	c.imageUse.Lock()
	defer c.imageUse.Unlock()
	if _, err := c.imageByName(ctx, name); err != nil {
		return err
	}
	if err := c.store.DeleteImage(ctx, name); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(c.images.dir, name)); err != nil {
		c.log.Error("remove image files", "image", name, "err", err)
	}
	c.log.Info("image deleted", "image", name)
	return nil
}

// OpenImageFile opens one file of an image (role kernel, initrd or disk)
// for an agent to download; the caller closes it.
func (c *Service) OpenImageFile(ctx context.Context, name, role string) (*os.File, api.Image, api.ImageFile, error) {
	im, err := c.imageByName(ctx, name)
	if err != nil {
		return nil, im, api.ImageFile{}, err
	}
	ff, ok := im.File(role)
	if !ok {
		return nil, im, ff, errs.NotFound("image %q has no %s file", im.Name, role)
	}
	f, err := os.Open(c.images.path(im.Name, role))
	if err != nil {
		return nil, im, ff, fmt.Errorf("open image file: %w", err)
	}
	return f, im, ff, nil
}
