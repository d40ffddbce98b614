package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"time"

	"github.com/godwit/godwit/internal/errs"
)

// A disk image is checked twice at import: its qcow2 header by
// internal/qcow2 while it is saved (saveFile), then, once that has
// passed, by qemu-img info, a second reader that knows every corner of
// the format. qemu-img parses what an uploader wrote, so it runs under
// limits: address space, CPU time and a wall-clock timeout, as Nova runs
// it. It never sees an image that names another file: the header check
// refuses those first, and info opens no backing file.
const (
	qemuImgMemory  = 1 << 30 // bytes of address space
	qemuImgCPU     = 30      // seconds of CPU
	qemuImgTimeout = time.Minute
	qemuImgMaxOut  = 1 << 20 // bytes of JSON read from it
)

// qemuImgInfo is what the import reads of qemu-img info --output=json.
type qemuImgInfo struct {
	Format          string `json:"format"`
	BackingFilename string `json:"backing-filename"`
	FullBacking     string `json:"full-backing-filename"`
	FormatSpecific  struct {
		Data struct {
			DataFile string `json:"data-file"`
		} `json:"data"`
	} `json:"format-specific"`
}

// inspectDisk runs qemu-img info on an uploaded disk under resource
// limits and refuses it unless qemu-img reads it as a qcow2 of its own
// (no backing file, no data file). Without qemu-img or prlimit on this
// machine the step is skipped, with a log line: the header check stands
// alone then.
func (c *Service) inspectDisk(ctx context.Context, image, path string) error {
	qemuImg := c.cfg.QEMUImg
	if qemuImg == "" {
		qemuImg = "qemu-img"
	}
	qi, err := exec.LookPath(qemuImg)
	if err != nil {
		c.log.Info("qemu-img is not installed; the disk is checked by its qcow2 header only", "image", image)
		return nil
	}
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		c.log.Warn("prlimit (util-linux) is not installed, so qemu-img cannot run under limits; the disk is checked by its qcow2 header only", "image", image)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, qemuImgTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prlimit, "--as="+strconv.Itoa(qemuImgMemory), "--cpu="+strconv.Itoa(qemuImgCPU),
		qi, "info", "--output=json", path)
	var out, stderr capped
	out.max, stderr.max = qemuImgMaxOut, 4<<10
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err = cmd.Run()
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return errs.Invalid("qemu-img took more than %v to read the disk image; it is damaged or hostile: convert it with: qemu-img convert -O qcow2 IN OUT.qcow2", qemuImgTimeout)
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return errs.Invalid("qemu-img cannot read the disk image (%v: %s); check it with: qemu-img check IN", err, bytes.TrimSpace(stderr.Bytes()))
	case out.over:
		return errs.Invalid("qemu-img describes the disk image in more than %d bytes; convert it with: qemu-img convert -O qcow2 IN OUT.qcow2", qemuImgMaxOut)
	}
	return judgeInfo(out.Bytes())
}

// judgeInfo refuses what qemu-img info says of a disk that is no
// self-contained qcow2.
func judgeInfo(out []byte) error {
	var info qemuImgInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return fmt.Errorf("read qemu-img info: %w", err)
	}
	switch {
	case info.Format != "qcow2":
		return errs.Invalid("qemu-img reads the disk image as %q, not qcow2; convert it with: qemu-img convert -O qcow2 IN OUT.qcow2", info.Format)
	case info.BackingFilename != "" || info.FullBacking != "":
		return errs.Invalid("the disk image names a backing file (%q); flatten it with: qemu-img convert -O qcow2 IN OUT.qcow2", info.BackingFilename)
	case info.FormatSpecific.Data.DataFile != "":
		return errs.Invalid("the disk image keeps its data in an external file (%q); make it self-contained with: qemu-img convert -O qcow2 IN OUT.qcow2", info.FormatSpecific.Data.DataFile)
	}
	return nil
}

// capped is a buffer that keeps the first max bytes written to it and
// notes whether more came.
type capped struct {
	bytes.Buffer
	max  int
	over bool
}

func (w *capped) Write(p []byte) (int, error) {
	if room := w.max - w.Len(); len(p) > room {
		w.over = true
		if room > 0 {
			w.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return w.Buffer.Write(p)
}
