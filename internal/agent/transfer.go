package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/httpx"
	"github.com/godwit/godwit/internal/qcow2"
	"github.com/godwit/godwit/internal/safe"
)

// Disk transfer for cold migrations of local disks: the destination pulls
// the stopped VM's disk file from the source agent over HTTP(S), with the
// transfer's token (grants.go) and from the host the controller named
// only, resuming
// with Range requests after a broken connection, and accepts it only when
// its SHA-256 matches the source's. qcow2 keeps only allocated clusters in
// the file, so what travels is what the guest wrote (plus metadata).

// importAttempts bounds the connections one import may use.
const importAttempts = 5

// partSuffix marks a disk being imported; it is renamed into place once
// verified.
const partSuffix = ".part"

// partialImport is where the import of a local disk of vm id is written.
func partialImport(pool, id string) string { return filepath.Join(pool, id+".qcow2"+partSuffix) }

// failpointWriter hits a failpoint once a first 64 KiB have gone out: the
// process dies mid-transfer.
type failpointWriter struct {
	http.ResponseWriter
	name string
	n    int64
}

func (w *failpointWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if w.n += int64(n); w.n >= 64<<10 {
		failpoint.Hit(w.name)
	}
	return n, err
}

type importJob struct {
	mu     sync.Mutex
	st     hostapi.ImportStatus
	cancel context.CancelFunc
	done   chan struct{}
}

func (j *importJob) set(f func(*hostapi.ImportStatus)) {
	j.mu.Lock()
	f(&j.st)
	j.mu.Unlock()
}

func (a *Agent) transferRoutes(m *httpx.Routes) {
	m.HandleFunc("GET /v1/vms/{id}/disk", a.serveDisk)
	m.HandleFunc("GET /v1/vms/{id}/disk/sha256", a.diskChecksum)
	m.HandleFunc("PUT /v1/vms/{id}/disk-grant", a.grantDisk)
	m.HandleFunc("DELETE /v1/vms/{id}/disk-grant", a.revokeDisk)
	m.HandleFunc("POST /v1/vms/{id}/import", a.startImport)
	m.HandleFunc("GET /v1/vms/{id}/import", a.importStatus)
}

// stoppedDisk returns the disk path of a stopped VM, to a reader with the
// token of a transfer granted for it.
func (a *Agent) stoppedDisk(r *http.Request, id string) (string, error) {
	if err := a.grants.check(r, id); err != nil {
		return "", err
	}
	st, err := a.drv.Status(r.Context(), id)
	if err != nil {
		return "", err
	}
	if st.State == driver.StateRunning || st.State == driver.StatePaused {
		return "", errs.Conflict("vm %s is %s; its disk can be copied only while it is stopped", id, st.State)
	}
	if st.Spec.Disk == nil {
		return "", errs.NotFound("vm %s has no disk", id)
	}
	return st.Spec.Disk.Path, nil
}

func (a *Agent) serveDisk(w http.ResponseWriter, r *http.Request) {
	path, err := a.stoppedDisk(r, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer f.Close()
	fi, _ := f.Stat()
	http.ServeContent(&failpointWriter{ResponseWriter: w, name: "agent/serve-disk/mid-transfer"}, r, "disk.qcow2", fi.ModTime(), f)
}

func (a *Agent) diskChecksum(w http.ResponseWriter, r *http.Request) {
	path, err := a.stoppedDisk(r, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sum, size, err := fileSHA256(path)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusOK, hostapi.DiskChecksum{Size: size, SHA256: sum})
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func (a *Agent) startImport(w http.ResponseWriter, r *http.Request) {
	var req hostapi.ImportDisk
	if err := httpx.Decode(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	if req.VM.ID != r.PathValue("id") { // the rest was validated by Decode (hostapi.ImportDisk.Validate)
		a.fail(w, r, errs.Invalid("import needs the vm's id, matching the path"))
		return
	}
	client, err := a.sourceClient(req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	spec, err := a.spec(r.Context(), req.VM)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.importMu.Lock()
	if j, ok := a.imports[req.VM.ID]; ok && j.st.Status == "active" {
		a.importMu.Unlock()
		a.fail(w, r, errs.Conflict("vm %s is already being imported", req.VM.ID))
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &importJob{st: hostapi.ImportStatus{Status: "active"}, cancel: cancel, done: make(chan struct{})}
	a.imports[req.VM.ID] = j
	a.importMu.Unlock()
	safe.Go(a.log, "disk import", func() {
		defer close(j.done)
		defer cancel()
		var err error
		if perr := safe.Run(a.log, "disk import", func() { err = a.importDisk(ctx, j, client, req.Source, spec) }); perr != nil {
			err = perr // failed, not active for ever
		}
		j.set(func(st *hostapi.ImportStatus) {
			if err != nil {
				st.Status, st.Error = "failed", err.Error()
			} else {
				st.Status = "completed"
			}
		})
		if err != nil {
			a.log.Error("disk import failed", "vm", spec.Name, "err", err)
		} else {
			a.log.Info("disk imported and verified", "vm", spec.Name, "bytes", j.st.Total, "attempts", j.st.Attempts)
		}
	})
	w.WriteHeader(http.StatusAccepted)
}

func (a *Agent) importStatus(w http.ResponseWriter, r *http.Request) {
	a.importMu.Lock()
	j, ok := a.imports[r.PathValue("id")]
	a.importMu.Unlock()
	if !ok {
		httpx.JSON(w, http.StatusOK, hostapi.ImportStatus{Status: "none"})
		return
	}
	j.mu.Lock()
	st := j.st
	j.mu.Unlock()
	httpx.JSON(w, http.StatusOK, st)
}

// cancelImport stops an import of id and waits for it (its partial file
// is removed by the import itself).
func (a *Agent) cancelImport(id string) {
	a.importMu.Lock()
	j, ok := a.imports[id]
	delete(a.imports, id)
	a.importMu.Unlock()
	if ok {
		j.cancel()
		<-j.done
	}
}

// sourceClient is the HTTP client of an import: it accepts only the
// certificate of the host the controller named, in a cluster with a CA,
// and presents the transfer's token.
func (a *Agent) sourceClient(req hostapi.ImportDisk) (*http.Client, error) {
	var tlsCfg *tls.Config
	if a.tls != nil {
		if !strings.HasPrefix(req.Source, "https://") {
			return nil, errs.Invalid("the source agent's URL %q is not https: this host has a certificate and reads disks from other hosts over mutual TLS only", req.Source)
		}
		tlsCfg = a.tls.peer(req.SourceHost)
	}
	c := api.NewHTTPClient(api.HTTPOptions{ResponseHeaderTimeout: downloadHeaderTimeout, TLS: tlsCfg})
	c.Transport = &hostapi.BearerTransport{Token: req.Token, Base: c.Transport}
	return c, nil
}

// importDisk copies the disk, verifies it, points it at this host's copy
// of its backing image, and defines the VM on it.
func (a *Agent) importDisk(ctx context.Context, j *importJob, client *http.Client, source string, spec driver.VMSpec) (err error) {
	src := hostapi.NewPeerAgent(source, client)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	want, err := src.DiskChecksum(cctx, spec.ID)
	cancel()
	if err != nil {
		return fmt.Errorf("checksum on the source: %w", err)
	}
	j.set(func(st *hostapi.ImportStatus) { st.Total = want.Size })
	part := spec.Disk.Path + partSuffix
	defer func() {
		if err != nil {
			os.Remove(part)
		}
	}()
	if err := a.download(ctx, j, client, strings.TrimSuffix(source, "/")+"/v1/vms/"+url.PathEscape(spec.ID)+"/disk", part, want.Size); err != nil {
		return err
	}
	got, size, err := fileSHA256(part)
	if err != nil {
		return err
	}
	if got != want.SHA256 || size != want.Size {
		return fmt.Errorf("the copy does not match the source: sha256 %s (%d bytes), source %s (%d bytes)", got, size, want.SHA256, want.Size)
	}
	if err := checkCopiedDisk(part, spec.Disk.Backing != ""); err != nil {
		return fmt.Errorf("the copy from the source: %w", err)
	}
	if spec.Disk.Backing != "" {
		// Same base image, this host's path to it.
		if out, err := exec.CommandContext(ctx, "qemu-img", "rebase", "-u", "-f", "qcow2", "-b", spec.Disk.Backing, "-F", "qcow2", part).CombinedOutput(); err != nil {
			return fmt.Errorf("qemu-img rebase: %v: %s", err, out)
		}
	}
	if err := os.Rename(part, spec.Disk.Path); err != nil {
		return err
	}
	return a.drv.Create(ctx, spec)
}

// checkCopiedDisk checks the header of a disk copied from another host
// before qemu-img or QEMU opens it: a qcow2 may name a backing file (its
// base, which the rebase points at this host's copy) but nothing else
// that internal/qcow2 refuses. A disk layered on a base must be a qcow2;
// another disk that is not one (the fake driver's) is left to the driver,
// which opens disks as qcow2 only.
func checkCopiedDisk(path string, layered bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	magic := make([]byte, len(qcow2.Magic))
	if _, err := io.ReadFull(f, magic); (err != nil || !bytes.Equal(magic, qcow2.Magic)) && !layered {
		return nil
	}
	return qcow2.CheckOverlay(f)
}

// download fetches url into path, resuming from what path holds after a
// broken connection.
func (a *Agent) download(ctx context.Context, j *importJob, client *http.Client, u, path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	var have int64
	var last error
	for attempt := 1; attempt <= importAttempts; attempt++ {
		j.set(func(st *hostapi.ImportStatus) { st.Attempts = attempt })
		if have >= size {
			break
		}
		if attempt > 1 {
			a.log.Warn("disk transfer broke; resuming", "from", have, "attempt", attempt, "err", last)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
		var n int64
		n, last = fetchRange(ctx, client, u, f, have, func(done int64) {
			j.set(func(st *hostapi.ImportStatus) { st.Transferred = done })
			failpoint.Hit("agent/import/mid-transfer")
		})
		have += n
		if last == nil || ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if have != size {
		return fmt.Errorf("copied %d of %d bytes after %d attempts: %v", have, size, importAttempts, last)
	}
	return f.Sync()
}

// fetchRange copies u from byte offset on into f at the same offset.
func fetchRange(ctx context.Context, client *http.Client, u string, f *os.File, offset int64, progress func(int64)) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("source answered %s: %s", resp.Status, b)
	}
	if offset > 0 && resp.StatusCode != http.StatusPartialContent {
		return 0, errors.New("source cannot resume (no range support)")
	}
	buf := make([]byte, 1<<20)
	var n int64
	for {
		m, rerr := resp.Body.Read(buf)
		if m > 0 {
			if _, err := f.WriteAt(buf[:m], offset+n); err != nil {
				return n, err
			}
			n += int64(m)
			progress(offset + n)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}
