package agent

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/httpx"
	"github.com/godwit/godwit/internal/safe"
)

// Handler returns the agent's HTTP API, called by the controller only.
// Every {id} in a path is a VM's UUID, checked before any handler runs:
// an ID names the VM's files (its directory, disk and seed), so a "../x"
// or "..%2Fx" must never reach one.
//
// Each request is timed for the metrics under its route's pattern.
func (a *Agent) Handler() http.Handler { return a.controllerOnly(a.timed(a.routes().Handler())) }

// routes are the agent's routes (tests try each).
func (a *Agent) routes() *httpx.Routes {
	m := httpx.NewRoutes(httpx.PathRules{"id": hostapi.CheckVMID})
	m.HandleFunc("GET /v1/vms", a.listVMs)
	m.HandleFunc("PUT /v1/vms/{id}", a.createVM)
	m.HandleFunc("GET /v1/vms/{id}", a.getVM)
	m.HandleFunc("DELETE /v1/vms/{id}", a.deleteVM)
	m.HandleFunc("POST /v1/vms/{id}/{action}", a.vmAction)
	m.HandleFunc("GET /v1/vms/{id}/console", a.console)
	m.HandleFunc("POST /v1/shutdown", a.shutdownHandler)
	a.migrationRoutes(m)
	a.resizeRoutes(m)
	a.transferRoutes(m)
	return m
}

func (a *Agent) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpx.Error(w, r, a.log, err)
}

func report(st driver.Status) hostapi.VMReport {
	return hostapi.VMReport{ID: st.ID, Name: st.Name, State: string(st.State), PID: st.PID, Incoming: string(st.Incoming),
		Reason: st.Reason, LastPanic: panicReport(st.LastPanic)}
}

// panicReport is a driver's panic record on the wire.
func panicReport(p *driver.Panic) *hostapi.Panic {
	if p == nil {
		return nil
	}
	return &hostapi.Panic{At: p.At, Reason: p.Reason, Count: p.Count, Arrived: p.Arrived}
}

// reply answers with the VM's current status.
func (a *Agent) reply(w http.ResponseWriter, r *http.Request, id string) {
	st, err := a.drv.Status(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusOK, report(st))
}

func (a *Agent) listVMs(w http.ResponseWriter, r *http.Request) {
	sts, err := a.drv.List(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]hostapi.VMReport, 0, len(sts))
	for _, st := range sts {
		out = append(out, report(st))
	}
	httpx.JSON(w, http.StatusOK, out)
}

func (a *Agent) getVM(w http.ResponseWriter, r *http.Request) { a.reply(w, r, r.PathValue("id")) }

func (a *Agent) createVM(w http.ResponseWriter, r *http.Request) {
	req, spec, err := a.decodeCreate(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	log := a.log.With("vm", req.Name, "id", req.ID)
	if err := a.drv.Create(r.Context(), spec); err != nil {
		a.fail(w, r, err)
		return
	}
	log.Info("vm defined", "pool", req.Pool, "disk_mib", req.DiskMiB)
	if req.Start {
		if err := a.drv.Start(r.Context(), req.ID); err != nil {
			a.fail(w, r, err)
			return
		}
		log.Info("vm started")
	}
	failpoint.Hit("agent/create/before-reply")
	a.reply(w, r, req.ID)
}

// decodeCreate reads a CreateVM body for the VM in the path and turns it
// into a driver spec.
func (a *Agent) decodeCreate(r *http.Request) (hostapi.CreateVM, driver.VMSpec, error) {
	var req hostapi.CreateVM
	if err := httpx.Decode(r, &req); err != nil {
		return req, driver.VMSpec{}, err
	}
	if req.ID != r.PathValue("id") {
		return req, driver.VMSpec{}, errs.Invalid("vm id in path and body differ")
	}
	// req was validated by Decode (hostapi.CreateVM.Validate): its ID
	// and image hashes are fit to name files, its sizes within bounds.
	spec, err := a.spec(r.Context(), req)
	return req, spec, err
}

// spec turns the controller's request, validated, into a driver spec
// with host paths, fetching the image files this host lacks.
func (a *Agent) spec(ctx context.Context, req hostapi.CreateVM) (driver.VMSpec, error) {
	spec := driver.VMSpec{
		ID: req.ID, Name: req.Name, VCPUs: req.VCPUs, MemoryMiB: req.MemoryMiB,
		// A migration's destination gets the source's current sizes and
		// ceilings, so it starts with the same hot-plugged devices.
		MaxVCPUs: req.MaxVCPUs, MaxMemoryMiB: req.MaxMemoryMiB, BootMemoryMiB: req.BootMemoryMiB,
		Cmdline: strings.TrimSpace(req.Image.Cmdline + " " + req.Cmdline),
		OnPanic: req.OnPanic,
	}
	var err error
	if spec.NICs, spec.Seed, err = a.network(req); err != nil {
		return spec, err
	}
	if _, ok := req.Image.File(api.RoleKernel); ok {
		if spec.Kernel, err = a.images.Path(ctx, req.Image, api.RoleKernel, "", ""); err != nil {
			return spec, err
		}
	}
	if _, ok := req.Image.File(api.RoleInitrd); ok {
		if spec.Initrd, err = a.images.Path(ctx, req.Image, api.RoleInitrd, "", ""); err != nil {
			return spec, err
		}
	}
	if req.DiskMiB > 0 {
		d := &driver.Disk{SizeMiB: req.DiskMiB}
		switch req.Pool {
		case api.PoolLocal:
			d.Path = filepath.Join(a.localPool(), req.ID+".qcow2")
		case api.PoolShared:
			if a.cfg.SharedDir == "" {
				return spec, errs.Invalid("host %s has no shared pool", a.cfg.Name)
			}
			dir := filepath.Join(a.cfg.SharedDir, "vms")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return spec, err
			}
			d.Path, d.Shared = filepath.Join(dir, req.ID+".qcow2"), true
		default:
			return spec, errs.Invalid("unknown pool %q", req.Pool)
		}
		if _, ok := req.Image.File(api.RoleDisk); ok {
			if d.Backing, err = a.images.Path(ctx, req.Image, api.RoleDisk, req.Pool, req.BaseSHA256); err != nil {
				return spec, err
			}
		}
		spec.Disk = d
	}
	return spec, nil
}

func (a *Agent) vmAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	var err error
	switch action {
	case "start":
		if err = a.grants.drop(id); err == nil { // its disk changes now: no move copies it
			err = a.drv.Start(r.Context(), id)
		}
	case "reboot":
		err = a.drv.Reboot(r.Context(), id)
	case "stop":
		var req hostapi.StopVM
		if r.ContentLength != 0 {
			if err := httpx.Decode(r, &req); err != nil {
				a.fail(w, r, err)
				return
			}
		}
		err = a.drv.Stop(r.Context(), id, driver.StopOptions{Force: req.Force, Timeout: time.Duration(req.TimeoutSeconds) * time.Second})
	default:
		err = errs.NotFound("unknown action %q", action)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("vm "+action, "id", id)
	failpoint.Hit("agent/" + action + "/before-reply")
	a.reply(w, r, id)
}

func (a *Agent) deleteVM(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a.cancelImport(id)
	if err := a.grants.drop(id); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.drv.Delete(r.Context(), id); err != nil && !errors.Is(err, errs.ErrNotFound) {
		a.fail(w, r, err)
		return
	}
	// What an import cut short by an agent crash left (a running import
	// removes its own on cancel).
	if err := os.Remove(partialImport(a.localPool(), id)); err != nil && !os.IsNotExist(err) {
		a.fail(w, r, err)
		return
	}
	a.removeSeed(id)
	a.log.Info("vm deleted", "id", id)
	failpoint.Hit("agent/delete/before-reply")
	w.WriteHeader(http.StatusNoContent)
}

// console streams the console log; with follow it polls for new output
// until the client goes away or the VM is deleted.
func (a *Agent) console(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	offset, err := httpx.Offset(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	follow := r.URL.Query().Get("follow") == "true"
	started := false
	for {
		rc, err := a.drv.Console(r.Context(), id, offset)
		if err != nil {
			if !started {
				a.fail(w, r, err)
			}
			return
		}
		if lr, ok := rc.(interface{ Start() int64 }); ok {
			// Where reading really starts: the driver may have cut
			// the log's head, or begun it anew.
			offset = lr.Start()
		}
		if !started {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		cw := &countWriter{w: w}
		httpx.CopyFlushing(cw, rc)
		rc.Close()
		offset += cw.n
		if !follow {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type countWriter struct {
	w http.ResponseWriter
	n int64
}

func (c *countWriter) Header() http.Header  { return c.w.Header() }
func (c *countWriter) WriteHeader(code int) { c.w.WriteHeader(code) }
func (c *countWriter) Flush()               { c.w.(http.Flusher).Flush() }
func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// shutdownHandler stops the agent, and first its VMs when asked (godwit
// up does on Ctrl-C; a plain agent restart never stops VMs).
func (a *Agent) shutdownHandler(w http.ResponseWriter, r *http.Request) {
	var req hostapi.ShutdownRequest
	if r.ContentLength != 0 {
		if err := httpx.Decode(r, &req); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if req.StopVMs {
		a.stopAll(r.Context())
	}
	w.WriteHeader(http.StatusNoContent)
	a.shutdownOnce.Do(func() { close(a.shutdown) })
}

func (a *Agent) stopAll(ctx context.Context) {
	sts, err := a.drv.List(ctx)
	if err != nil {
		a.log.Error("list vms to stop", "err", err)
		return
	}
	var wg sync.WaitGroup
	for _, st := range sts {
		if st.PID == 0 { // a guest held paused at a panic (crashed) has a process too
			continue
		}
		wg.Add(1)
		safe.Go(a.log, "stop for shutdown", func() {
			defer wg.Done()
			if err := a.drv.Stop(ctx, st.ID, driver.StopOptions{Timeout: 15 * time.Second}); err != nil {
				a.log.Error("stop vm", "vm", st.Name, "err", err)
				return
			}
			a.log.Info("vm stopped for shutdown", "vm", st.Name)
		})
	}
	wg.Wait()
}
