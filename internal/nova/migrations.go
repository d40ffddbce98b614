package nova

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

// Migrations are godwit's migrations. Nova numbers its migrations; a
// godwit migration's number is taken from its ID (the first 31 bits of
// its UUID), and from 2.59 its UUID is shown as well.

func (a *API) migrationRoutes() []Route {
	v := ComputePrefix + "/v2.1"
	return []Route{
		{"GET " + v + "/os-migrations", versioned(a.listMigrations)},
		{"GET " + v + "/servers/{server_id}/migrations", versioned(a.serverMigrations)},
		{"GET " + v + "/servers/{server_id}/migrations/{migration_id}", versioned(a.serverMigration)},
		{"POST " + v + "/servers/{server_id}/migrations/{migration_id}/action", versioned(a.forceComplete)},
		{"DELETE " + v + "/servers/{server_id}/migrations/{migration_id}", versioned(a.abortMigration)},
	}
}

// number is a migration's Nova ID.
func number(id string) int64 {
	n, err := strconv.ParseUint(strings.ReplaceAll(id, "-", "")[:8], 16, 32)
	if err != nil {
		return 0
	}
	return int64(n & 0x7fffffff)
}

// novaStatus is a migration's state in Nova's words.
func novaStatus(m api.Migration) string {
	switch m.State {
	case api.MigQueued, api.MigScheduling:
		return "queued"
	case api.MigPreparing, api.MigWaitingLink:
		return "preparing"
	case api.MigTransferring:
		return "running"
	case api.MigSwitchingOver, api.MigFinishing:
		return "post-migrating"
	case api.MigCompleted:
		return "completed"
	case api.MigCancelled:
		return "cancelled"
	case api.MigRolledBack:
		return "failed"
	}
	return "error"
}

func migrationType(m api.Migration) string {
	if m.Kind == api.KindLive {
		return "live-migration"
	}
	return "migration"
}

func (a *API) migrationView(r *http.Request, v Microversion, m api.Migration, withProgress bool) map[string]any {
	out := map[string]any{
		"id": number(m.ID), "status": novaStatus(m), "instance_uuid": m.VMID,
		"source_compute": m.Source, "source_node": m.Source, "dest_compute": nilIfEmpty(m.Destination), "dest_node": nilIfEmpty(m.Destination),
		"dest_host":            nilIfEmpty(m.Destination),
		"old_instance_type_id": 0, "new_instance_type_id": 0,
		"created_at": stamp(m.CreatedAt), "updated_at": stamp(m.UpdatedAt),
	}
	if v.AtLeast(23) {
		out["migration_type"] = migrationType(m)
		if m.Kind == api.KindLive && !m.State.Final() {
			out["links"] = link(r, "/servers/"+m.VMID+"/migrations/"+strconv.FormatInt(number(m.ID), 10))
		}
	}
	if v.AtLeast(59) {
		out["uuid"] = m.ID
	}
	if withProgress {
		// servers/{id}/migrations: a live migration's memory and disk.
		p := m.Progress
		delete(out, "old_instance_type_id")
		delete(out, "new_instance_type_id")
		delete(out, "migration_type")
		delete(out, "links")
		out["server_uuid"] = m.VMID
		delete(out, "instance_uuid")
		out["memory_total_bytes"], out["memory_processed_bytes"], out["memory_remaining_bytes"] = p.MemoryTotal, p.MemoryTransferred, p.MemoryRemaining
		out["disk_total_bytes"], out["disk_processed_bytes"], out["disk_remaining_bytes"] = p.DiskTotal, p.DiskTransferred, p.DiskTotal-p.DiskTransferred
	}
	return out
}

// listMigrations is GET /os-migrations (admins), filtered as Nova
// filters it.
func (a *API) listMigrations(w http.ResponseWriter, r *http.Request, v Microversion) {
	ms, err := a.Svc.Migrations(r.Context(), store.MigrationFilter{})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	out := []map[string]any{}
	for _, m := range ms {
		switch {
		case q.Get("instance_uuid") != "" && q.Get("instance_uuid") != m.VMID,
			q.Get("status") != "" && q.Get("status") != novaStatus(m),
			q.Get("source_compute") != "" && q.Get("source_compute") != m.Source,
			v.AtLeast(23) && q.Get("migration_type") != "" && q.Get("migration_type") != migrationType(m):
			continue
		}
		out = append(out, a.migrationView(r, v, m, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"migrations": out})
}

// serverMigration finds a server's migration by its number (or, from
// 2.59, its UUID).
func (a *API) serverMigrationOf(r *http.Request) (api.VM, api.Migration, error) {
	vm, err := a.vmByID(r, r.PathValue("server_id"))
	if err != nil {
		return vm, api.Migration{}, err
	}
	id := r.PathValue("migration_id")
	ms, err := a.Svc.Migrations(r.Context(), store.MigrationFilter{VM: vm.Name})
	if err != nil {
		return vm, api.Migration{}, err
	}
	for _, m := range ms {
		if m.VMID == vm.ID && (m.ID == id || strconv.FormatInt(number(m.ID), 10) == id) {
			return vm, m, nil
		}
	}
	return vm, api.Migration{}, errs.NotFound("Migration %s for server %s could not be found.", id, vm.ID)
}

// serverMigrations lists a server's live migrations in progress.
func (a *API) serverMigrations(w http.ResponseWriter, r *http.Request, v Microversion) {
	if !v.AtLeast(23) {
		writeStatus(w, r, http.StatusNotFound, "servers/{id}/migrations is served from microversion 2.23")
		return
	}
	vm, err := a.vmByID(r, r.PathValue("server_id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	ms, err := a.Svc.Migrations(r.Context(), store.MigrationFilter{VM: vm.Name, Active: true})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := []map[string]any{}
	for _, m := range ms {
		if m.VMID == vm.ID && m.Kind == api.KindLive {
			out = append(out, a.migrationView(r, v, m, true))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"migrations": out})
}

func (a *API) serverMigration(w http.ResponseWriter, r *http.Request, v Microversion) {
	if !v.AtLeast(23) {
		writeStatus(w, r, http.StatusNotFound, "servers/{id}/migrations is served from microversion 2.23")
		return
	}
	_, m, err := a.serverMigrationOf(r)
	if err == nil && (m.State.Final() || m.Kind != api.KindLive) {
		err = errs.NotFound("Migration %s is not an in-progress live migration.", r.PathValue("migration_id"))
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"migration": a.migrationView(r, v, m, true)})
}

// forceComplete is {"force_complete": null} (2.22): godwit's force-complete
// (pause the guest, or switch to post-copy where allowed).
func (a *API) forceComplete(w http.ResponseWriter, r *http.Request, v Microversion) {
	var body map[string]any
	if err := decode(r, &body); err != nil {
		WriteError(w, r, err)
		return
	}
	if _, ok := body["force_complete"]; !ok || len(body) != 1 || !v.AtLeast(22) {
		WriteError(w, r, errs.Invalid("the one migration action is force_complete, from microversion 2.22"))
		return
	}
	_, m, err := a.serverMigrationOf(r)
	if err == nil {
		_, err = a.Svc.CompleteMigration(r.Context(), m.ID)
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// abortMigration is DELETE servers/{id}/migrations/{id} (2.24): godwit's
// abort; the VM stays where it was.
func (a *API) abortMigration(w http.ResponseWriter, r *http.Request, v Microversion) {
	if !v.AtLeast(24) {
		writeStatus(w, r, http.StatusNotFound, "aborting a migration is served from microversion 2.24")
		return
	}
	_, m, err := a.serverMigrationOf(r)
	if err == nil {
		_, err = a.Svc.AbortMigration(r.Context(), m.ID)
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
