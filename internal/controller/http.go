package controller

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/http"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/audit"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/httpx"
	"github.com/godwit/godwit/internal/nova"
	"github.com/godwit/godwit/internal/store"
	"github.com/godwit/godwit/internal/ui"
	"github.com/godwit/godwit/internal/version"
)

// Handler returns the controller's HTTP API.
//
// Every response is JSON; every failure is an *api.Error whose status
// comes from the sentinel it wraps (httpx.Error). Every route goes
// through its rule in the policy table (policy.go): who may call it, and
// how a member is kept to its project.
func (c *Controller) Handler() http.Handler {
	m := routes{http.NewServeMux(), c}
	s, in := c.svc, c.intents
	m.HandleFunc("GET /v1/version", get(c, func(ctx context.Context, r *http.Request) (api.Version, error) {
		return api.Version{Version: version.Version, Store: s.StoreKind(), Auth: c.tls != nil}, nil
	}))

	m.HandleFunc("GET "+api.OpenAPIPath, c.openAPI)

	m.HandleFunc("GET /v1/hosts", get(c, func(ctx context.Context, r *http.Request) ([]api.Host, error) { return s.Hosts(ctx) }))
	m.HandleFunc("GET /v1/hosts/{name}", get(c, func(ctx context.Context, r *http.Request) (api.Host, error) {
		return s.Host(ctx, r.PathValue("name"))
	}))
	m.HandleFunc("POST /v1/hosts/{name}/enable", get(c, func(ctx context.Context, r *http.Request) (api.Host, error) {
		return s.SetHostEnabled(ctx, r.PathValue("name"), true)
	}))
	m.HandleFunc("POST /v1/hosts/{name}/disable", get(c, func(ctx context.Context, r *http.Request) (api.Host, error) {
		return s.SetHostEnabled(ctx, r.PathValue("name"), false)
	}))
	m.HandleFunc("POST /v1/internal/heartbeat", call(c, required, http.StatusOK, c.heartbeat))
	m.HandleFunc("POST /v1/hosts/{name}/join-token", call(c, optional, http.StatusOK, c.addHost))
	m.HandleFunc("POST /v1/hosts/{name}/revoke", get(c, c.revokeHost))
	m.HandleFunc("POST /v1/join", call(c, required, http.StatusOK, c.join))

	m.HandleFunc("GET /v1/vms", get(c, func(ctx context.Context, r *http.Request) ([]api.VM, error) {
		project, err := listProject(ctx, r.URL.Query().Get("project"))
		if err != nil {
			return nil, err
		}
		return s.VMs(ctx, store.VMFilter{Host: r.URL.Query().Get("host"), Project: project})
	}))
	m.HandleFunc("POST /v1/vms", call(c, required, http.StatusCreated, func(ctx context.Context, r *http.Request, req api.CreateVMRequest) (api.VM, error) {
		if err := ownProject(ctx, &req.Project); err != nil {
			return api.VM{}, err
		}
		return s.CreateVM(ctx, req)
	}))
	m.HandleFunc("GET /v1/vms/{name}", get(c, func(ctx context.Context, r *http.Request) (api.VM, error) { return s.VM(ctx, r.PathValue("name")) }))
	m.HandleFunc("PATCH /v1/vms/{name}", call(c, required, http.StatusOK, func(ctx context.Context, r *http.Request, req api.UpdateVMRequest) (api.VM, error) {
		return s.UpdateVM(ctx, r.PathValue("name"), req)
	}))
	m.HandleFunc("DELETE /v1/vms/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.DeleteVM(r.Context(), r.PathValue("name")); err != nil {
			c.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /v1/vms/{name}/{action}", call(c, optional, http.StatusOK, func(ctx context.Context, r *http.Request, req api.VMActionRequest) (api.VM, error) {
		return s.VMAction(ctx, r.PathValue("name"), r.PathValue("action"), req)
	}))
	m.HandleFunc("POST /v1/vms/{name}/lock", call(c, optional, http.StatusOK, func(ctx context.Context, r *http.Request, req api.LockVMRequest) (api.VM, error) {
		return s.LockVM(ctx, r.PathValue("name"), req.Reason)
	}))
	m.HandleFunc("POST /v1/vms/{name}/unlock", call(c, none, http.StatusOK, func(ctx context.Context, r *http.Request, _ struct{}) (api.VM, error) {
		return s.UnlockVM(ctx, r.PathValue("name"))
	}))
	m.HandleFunc("GET /v1/vms/{name}/console", c.console)
	m.HandleFunc("POST /v1/vms/{name}/migrate", c.migrate)

	m.HandleFunc("GET /v1/images", get(c, func(ctx context.Context, r *http.Request) ([]api.Image, error) { return s.Images(ctx) }))
	m.HandleFunc(importImageRoute, c.importImage)
	m.HandleFunc("GET /v1/images/{name}", get(c, func(ctx context.Context, r *http.Request) (api.Image, error) {
		return s.Image(ctx, r.PathValue("name"))
	}))
	m.HandleFunc("DELETE /v1/images/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.DeleteImage(r.Context(), r.PathValue("name")); err != nil {
			c.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("GET /v1/images/{name}/files/{role}", c.imageFile)

	m.HandleFunc("GET /v1/networks", get(c, func(ctx context.Context, r *http.Request) ([]api.Network, error) { return s.Networks(ctx) }))
	m.HandleFunc("POST /v1/networks", call(c, required, http.StatusCreated, func(ctx context.Context, r *http.Request, req api.CreateNetworkRequest) (api.Network, error) {
		return s.CreateNetwork(ctx, req)
	}))
	m.HandleFunc("GET /v1/networks/{name}", get(c, func(ctx context.Context, r *http.Request) (api.Network, error) {
		return s.Network(ctx, r.PathValue("name"))
	}))
	m.HandleFunc("DELETE /v1/networks/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.DeleteNetwork(r.Context(), r.PathValue("name")); err != nil {
			c.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	m.HandleFunc("GET /v1/migrations", get(c, func(ctx context.Context, r *http.Request) ([]api.Migration, error) {
		ms, err := s.Migrations(ctx, store.MigrationFilter{VM: r.URL.Query().Get("vm"), Active: r.URL.Query().Get("active") == "true"})
		return scoped(ctx, ms, func(m api.Migration) string { return m.Project }), err
	}))
	m.HandleFunc("GET /v1/migrations/{id}", get(c, func(ctx context.Context, r *http.Request) (api.Migration, error) {
		return s.Migration(ctx, r.PathValue("id"))
	}))
	// Abort rolls back in the background and ends in state cancelled.
	m.HandleFunc("POST /v1/migrations/{id}/abort", call(c, none, http.StatusAccepted, func(ctx context.Context, r *http.Request, _ struct{}) (api.Migration, error) {
		return s.AbortMigration(ctx, r.PathValue("id"))
	}))
	m.HandleFunc("POST /v1/migrations/{id}/complete", call(c, none, http.StatusAccepted, func(ctx context.Context, r *http.Request, _ struct{}) (api.Migration, error) {
		return s.CompleteMigration(ctx, r.PathValue("id"))
	}))

	m.HandleFunc("GET /v1/cluster/settings", get(c, func(ctx context.Context, r *http.Request) (api.ClusterSettingsReply, error) { return s.Settings(ctx) }))
	m.HandleFunc("PATCH /v1/cluster/settings", call(c, required, http.StatusOK, func(ctx context.Context, r *http.Request, u api.ClusterSettingsUpdate) (api.ClusterSettingsReply, error) {
		return s.UpdateSettings(ctx, u)
	}))

	m.HandleFunc("GET /v1/intents", get(c, func(ctx context.Context, r *http.Request) ([]api.Intent, error) {
		is, err := in.Intents(ctx, store.IntentFilter{Target: r.URL.Query().Get("target"), Active: r.URL.Query().Get("active") == "true"})
		return scoped(ctx, is, func(i api.Intent) string { return i.Project }), err
	}))
	m.HandleFunc("GET /v1/intents/{id}", get(c, func(ctx context.Context, r *http.Request) (api.Intent, error) {
		return in.Intent(ctx, r.PathValue("id"))
	}))
	m.HandleFunc("POST /v1/intents/{id}/cancel", call(c, optional, http.StatusAccepted, func(ctx context.Context, r *http.Request, req api.CancelIntentRequest) (api.Intent, error) {
		return in.CancelIntent(ctx, r.PathValue("id"), req)
	}))
	// A held resize's or cold migration's end: confirm keeps it, revert goes
	// back (202: it runs on).
	m.HandleFunc("POST /v1/intents/{id}/confirm", call(c, none, http.StatusAccepted, func(ctx context.Context, r *http.Request, _ struct{}) (api.Intent, error) {
		return in.ConfirmResize(ctx, r.PathValue("id"))
	}))
	m.HandleFunc("POST /v1/intents/{id}/revert", call(c, none, http.StatusAccepted, func(ctx context.Context, r *http.Request, _ struct{}) (api.Intent, error) {
		return in.RevertResize(ctx, r.PathValue("id"))
	}))
	m.HandleFunc("POST /v1/hosts/{name}/drain", intentKind(c, optional, in.Drain))
	m.HandleFunc("POST /v1/hosts/{name}/evacuate", intentKind(c, optional, in.Evacuate))
	m.HandleFunc("POST /v1/vms/{name}/resize", intentKind(c, required, in.Resize))
	m.HandleFunc("POST /v1/vms/{name}/rebuild", intentKind(c, optional, in.Rebuild))
	m.HandleFunc("GET /v1/events", c.events)
	c.authRoutes(m)
	c.flavorRoutes(m)
	c.keyPairRoutes(m)
	// Prometheus's scrape: an admin's token in a cluster with a CA
	// (bearer_token_file in its scrape config), anyone's without.
	m.HandleFunc("GET /metrics", c.cfg.Metrics.Handler().ServeHTTP)

	for _, rt := range (&nova.API{Svc: s, Intents: in}).Routes() {
		m.HandleFunc(rt.Pattern, rt.Handler)
	}

	m.HandleFunc("GET /{$}", ui.Redirect)
	m.HandleFunc("GET /ui/{file...}", ui.Handler)
	return httpx.Mux(m.ServeMux)
}

// migrate starts a migration, or with dry_run plans one (an intent in
// state planned, nothing started). A held one (hold) is an intent's
// operation; the reply is its migration all the same, naming the intent.
func (c *Controller) migrate(w http.ResponseWriter, r *http.Request) {
	req, ok := decode[api.MigrateRequest](c, required, w, r)
	if !ok {
		return
	}
	if req.DryRun {
		plan, err := c.intents.PlanMigrate(r.Context(), r.PathValue("name"), req)
		reply(c, w, r, http.StatusOK, plan, err)
		return
	}
	m, err := c.intents.Migrate(r.Context(), r.PathValue("name"), req)
	// The kind that runs, for the audit record (none asked: godwit chose).
	kind := req.Kind
	if err == nil {
		kind = m.Kind
	}
	audit.NoteAction(r.Context(), string(kind))
	reply(c, w, r, http.StatusAccepted, m, err)
}

// importImageRoute is the one route whose body is not JSON.
const importImageRoute = "POST /v1/images"

// importImage reads a multipart upload: a "meta" JSON part first, then
// file parts named kernel, initrd and disk, which the service streams to
// disk (each under its own limit). The whole body is bounded too, and
// cut off when it stalls (uploadBody).
func (c *Controller) importImage(w http.ResponseWriter, r *http.Request) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		c.fail(w, r, errs.Invalid("upload an image as multipart/form-data with a meta part and kernel, initrd or disk files (godwit image import does this)"))
		return
	}
	limit, tooLarge := c.svc.UploadLimit()
	if r.ContentLength > limit {
		c.fail(w, r, tooLarge)
		return
	}
	mr := multipart.NewReader(uploadBody(w, r, limit, tooLarge, c.cfg.UploadIdle), params["boundary"])
	part, err := mr.NextPart()
	if limited(err) {
		c.fail(w, r, err)
		return
	}
	if err != nil || part.FormName() != "meta" {
		c.fail(w, r, errs.Invalid("the first part of an image upload must be the JSON \"meta\" part"))
		return
	}
	var meta api.ImportImageMeta
	mb, err := io.ReadAll(io.LimitReader(part, httpx.MaxBody))
	if limited(err) {
		c.fail(w, r, err)
		return
	}
	if err := httpx.DecodeBytes(mb, &meta); err != nil {
		c.fail(w, r, err)
		return
	}
	im, err := c.svc.ImportImage(r.Context(), meta, func() (string, io.Reader, error) {
		p, err := mr.NextPart()
		if err != nil {
			return "", nil, err
		}
		return p.FormName(), p, nil
	})
	reply(c, w, r, http.StatusCreated, im, err)
}

// console proxies a VM's serial console from its agent.
func (c *Controller) console(w http.ResponseWriter, r *http.Request) {
	offset, err := httpx.Offset(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	body, err := c.svc.Console(r.Context(), r.PathValue("name"), offset, r.URL.Query().Get("follow") == "true")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	defer body.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	httpx.CopyFlushing(w, body)
}

// imageFile serves one image file to an agent (with Range support, so an
// interrupted download can resume).
func (c *Controller) imageFile(w http.ResponseWriter, r *http.Request) {
	f, im, ff, err := c.svc.OpenImageFile(r.Context(), r.PathValue("name"), r.PathValue("role"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	defer f.Close()
	w.Header().Set("X-Godwit-Sha256", ff.SHA256)
	http.ServeContent(w, r, r.PathValue("role"), im.CreatedAt, f)
}
