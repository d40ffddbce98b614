package cli

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/godwit/godwit/api"
)

// The intent side of the fake controller: plans for dry runs, a refused
// evacuation, a list of intents, and intent in-7 (a drain) that moves one
// step on every read until it ends partial.

func at(sec float64) time.Time { return created.Add(time.Duration(sec * float64(time.Second))) }

func drainNotes() []string {
	return []string{
		"host host1 leaves scheduling at once; `godwit host enable host1` returns it",
		"at most 2 moves out of host1 at once, 1 into each destination, 4 in the cluster",
		"predictions assume every byte of memory (and local disk) crosses at 125 MB/s; idle guests move faster, busy ones slower",
	}
}

func drainPlan() api.Intent {
	return api.Intent{Kind: api.IntentDrain, Target: "host1", State: api.IntentPlanned,
		Params: api.IntentParams{OnFailure: api.OnFailureCold, BandwidthMBPerS: 125},
		Operations: []api.Operation{
			{VM: "batch-1", VMID: "vm-3", Kind: api.OpCold, State: api.OpPlanned, Source: "host1", Destination: "host3",
				Strategy: "local-disk/disk-transfer", PredictedMS: 18400,
				Reason: "cannot move live (no host has a CPU model compatible with host1's); cold, by policy"},
			{VM: "web-1", VMID: "vm-1", Kind: api.OpLive, State: api.OpPlanned, Source: "host1", Destination: "host2",
				Strategy: "block-copy/pre-copy", PredictedMS: 12300},
			{VM: "db-1", VMID: "vm-2", Kind: api.OpLive, State: api.OpPlanned, Source: "host1", Destination: "host3",
				Strategy: "shared-storage/pre-copy", PredictedMS: 4100},
			{VM: "broken-1", VMID: "vm-4", Kind: api.OpNone, State: api.OpPlanned, Source: "host1",
				Reason: "vm is error: only running or stopped VMs can be moved; it stays on host1"},
		},
		PredictedMS: 22500, Notes: drainNotes(), CreatedAt: created, UpdatedAt: created}
}

func resizePlan() api.Intent {
	return api.Intent{Kind: api.IntentResize, Target: "web-1", State: api.IntentPlanned,
		Params: api.IntentParams{VCPUs: 4, MemoryMiB: 2048, AllowMove: true},
		Operations: []api.Operation{
			{VM: "web-1", VMID: "vm-1", Kind: api.OpLive, State: api.OpPlanned, Source: "host1", Destination: "host3",
				Strategy: "shared-storage/pre-copy", PredictedMS: 3200,
				Reason: "host1 lacks 2 vCPUs and 512M for the growth; moving first (--allow-move)"},
			{VM: "web-1", VMID: "vm-1", Kind: api.OpResize, State: api.OpPlanned, Source: "host3", Destination: "host3",
				Strategy: "online/hotplug", PredictedMS: 800},
		},
		PredictedMS: 4000,
		Notes:       []string{"vm web-1: 2→4 vCPUs, 1536→2048 MiB memory, 10240→10240 MiB disk"},
		CreatedAt:   created, UpdatedAt: created}
}

func rebuildPlan(image string) api.Intent {
	return api.Intent{Kind: api.IntentRebuild, Target: "web-1", State: api.IntentPlanned,
		Params: api.IntentParams{Image: image},
		Operations: []api.Operation{{VM: "web-1", VMID: "vm-1", Kind: api.OpRebuild, State: api.OpPlanned,
			Source: "host1", Destination: "host1", Strategy: "in-place/reimage", PredictedMS: 9000}},
		PredictedMS: 9000,
		Notes:       []string{"the disk of vm web-1 is replaced with a fresh one from image " + image + ": data on it is lost"},
		CreatedAt:   created}
}

func evacuatePlan(req api.EvacuateRequest) api.Intent {
	return api.Intent{Kind: api.IntentEvacuate, Target: "host2", State: api.IntentPlanned,
		Params: api.IntentParams{HostIsDown: req.HostIsDown, AllowDataLoss: req.AllowDataLoss},
		Operations: []api.Operation{{VM: "web-1", VMID: "vm-1", Kind: api.OpRebuild, State: api.OpPlanned,
			Source: "host2", Destination: "host3", Strategy: "shared-storage/reuse-disk", PredictedMS: 7000}},
		PredictedMS: 7000, CreatedAt: created}
}

func migratePlan() api.Intent {
	return api.Intent{Kind: api.IntentMigrate, Target: "web-1", State: api.IntentPlanned,
		Params: api.IntentParams{Migrate: &api.MigrateRequest{DryRun: true}},
		Operations: []api.Operation{{VM: "web-1", VMID: "vm-1", Kind: api.OpLive, State: api.OpPlanned,
			Source: "host1", Destination: "host3", Strategy: "block-copy/pre-copy", PredictedMS: 12300}},
		PredictedMS: 12300, CreatedAt: created}
}

// watchSteps is intent in-7 as successive reads see it: web-1 moves live,
// db-1's live migration fails and is skipped, batch-1 moves cold.
func watchSteps() []api.Intent {
	base := func(state api.IntentState, ops ...api.Operation) api.Intent {
		return api.Intent{ID: "in-7", Kind: api.IntentDrain, Target: "host1", State: state,
			Params: api.IntentParams{OnFailure: api.OnFailureSkip}, Operations: ops, PredictedMS: 22500,
			Notes: drainNotes(), CreatedAt: created, UpdatedAt: created}
	}
	web := api.Operation{VM: "web-1", Kind: api.OpLive, State: api.OpPending, Source: "host1", Destination: "host2", Strategy: "block-copy/pre-copy"}
	db := api.Operation{VM: "db-1", Kind: api.OpLive, State: api.OpPending, Source: "host1", Strategy: "shared-storage/pre-copy"}
	batch := api.Operation{VM: "batch-1", Kind: api.OpCold, State: api.OpPending, Source: "host1", Strategy: "local-disk/disk-transfer"}
	run := func(op api.Operation, mig, dst string, start float64) api.Operation {
		op.State, op.MigrationID, op.Destination, op.StartedAt = api.OpRunning, mig, dst, at(start)
		return op
	}
	end := func(op api.Operation, state api.OperationState, reason string, sec float64) api.Operation {
		op.State, op.Reason, op.FinishedAt = state, reason, at(sec)
		return op
	}
	webRun, dbRun := run(web, "mig-1", "host2", 0), run(db, "mig-2", "host3", 0)
	webDone := end(webRun, api.OpDone, "", 12.6)
	dbSkipped := end(dbRun, api.OpSkipped, "live migration failed: pre-copy did not converge in 30 passes (dirty rate above the bandwidth) — on failure skip: it stays on host1", 9.2)
	batchRun := run(batch, "mig-3", "host3", 9.3)
	final := base(api.IntentPartial, webDone, dbSkipped, end(batchRun, api.OpDone, "", 27.9))
	final.Reason = "1 of 3 VMs stayed on host1 (see its reason)"
	final.UpdatedAt, final.FinishedAt = at(28), at(28)
	return []api.Intent{
		base(api.IntentRunning, webRun, dbRun, batch),
		base(api.IntentRunning, webRun, dbRun, batch),
		base(api.IntentRunning, webRun, dbSkipped, batchRun),
		base(api.IntentRunning, webDone, dbSkipped, batchRun),
		final,
	}
}

// watchMigration is migration id as read while in-7 is at step (nothing
// for a record the fake lacks: the line then shows the operation only).
func watchMigration(id string, step int) (api.Migration, bool) {
	gb := int64(1 << 30)
	m := api.Migration{ID: id, Kind: api.KindLive, State: api.MigTransferring}
	switch {
	case id == "mig-1" && step == 0:
		m.Progress = api.MigrationProgress{MemoryTotal: 2 * gb, MemoryRemaining: gb * 11 / 10, Throughput: 118e6, ETAMS: 7600}
	case id == "mig-1":
		m.Progress = api.MigrationProgress{MemoryTotal: 2 * gb, MemoryRemaining: gb / 10, Throughput: 121e6, ETAMS: 900}
		m.State = api.MigSwitchingOver
	case id == "mig-2":
		m.Progress = api.MigrationProgress{MemoryTotal: gb, MemoryRemaining: gb / 2, Throughput: 96e6, DirtyRate: 140e6}
	case id == "mig-3" && step == 2:
		m.Kind, m.State = api.KindCold, api.MigTransferring
		m.Progress = api.MigrationProgress{DiskTotal: 10 * gb, DiskTransferred: 3 * gb, Throughput: 210e6, ETAMS: 36000}
	default:
		return api.Migration{}, false
	}
	return m, true
}

func testIntents() []api.Intent {
	steps := watchSteps()
	drain := steps[len(steps)-1]
	resize := resizePlan()
	resize.ID, resize.State, resize.CreatedAt = "in-8", api.IntentRunning, now.Add(-5*time.Second)
	resize.Operations[0].State, resize.Operations[0].MigrationID = api.OpRunning, "mig-9"
	resize.Operations[1].State = api.OpPending
	evac := evacuatePlan(api.EvacuateRequest{HostIsDown: true})
	evac.ID, evac.State, evac.CreatedAt = "in-6", api.IntentCompleted, now.Add(-3*time.Hour)
	evac.Operations[0].State = api.OpDone
	return []api.Intent{resize, drain, evac}
}

// intentRoutes adds the intent endpoints to the fake controller.
func intentRoutes(record func(string, http.HandlerFunc)) {
	var mu sync.Mutex
	pos := 0 // reads of in-7 so far
	reply := func(w http.ResponseWriter, status int, v any) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	decode := func(r *http.Request, v any) { json.NewDecoder(r.Body).Decode(v) }
	record("POST /v1/hosts/{name}/drain", func(w http.ResponseWriter, r *http.Request) {
		var req api.DrainRequest
		decode(r, &req)
		if req.DryRun {
			reply(w, 200, drainPlan())
			return
		}
		reply(w, 202, watchSteps()[0])
	})
	record("POST /v1/hosts/{name}/evacuate", func(w http.ResponseWriter, r *http.Request) {
		var req api.EvacuateRequest
		decode(r, &req)
		if !req.HostIsDown {
			reply(w, http.StatusConflict, api.Error{Code: api.CodeConflict, Message: "host host2 stopped sending heartbeats 3m0s ago, " +
				"but nothing proves it is dead: it may still run its VMs behind a network split. " +
				"Make sure it is powered off or fenced, then confirm with --host-is-down"})
			return
		}
		reply(w, 200, evacuatePlan(req))
	})
	record("POST /v1/vms/{name}/resize", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, resizePlan()) })
	record("POST /v1/vms/{name}/rebuild", func(w http.ResponseWriter, r *http.Request) {
		var req api.RebuildRequest
		decode(r, &req)
		reply(w, 200, rebuildPlan(req.Image))
	})
	record("POST /v1/vms/{name}/migrate", func(w http.ResponseWriter, r *http.Request) {
		var req api.MigrateRequest
		decode(r, &req)
		if req.DryRun {
			reply(w, 200, migratePlan())
			return
		}
		kind := req.Kind
		if kind == "" {
			kind = api.KindLive
		}
		m := api.Migration{ID: "mig-5", VM: r.PathValue("name"), Kind: kind, State: api.MigQueued, Source: "host1", Destination: "host3"}
		if req.Hold {
			m.Intent = "in-10" // a held migration is its intent's operation
		}
		reply(w, 202, m)
	})
	record("GET /v1/intents", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, testIntents()) })
	record("GET /v1/intents/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		switch id {
		case "in-7":
			steps := watchSteps()
			mu.Lock()
			in := steps[min(pos, len(steps)-1)]
			pos++
			mu.Unlock()
			reply(w, 200, in)
			return
		case "in-9": // never ends
			in := watchSteps()[0]
			in.ID = "in-9"
			reply(w, 200, in)
			return
		}
		for _, in := range testIntents() {
			if in.ID == id {
				reply(w, 200, in)
				return
			}
		}
		reply(w, 404, api.Error{Code: api.CodeNotFound, Message: `intent "` + id + `" not found; list them with: godwit intent list`})
	})
	record("POST /v1/intents/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "in-7" {
			reply(w, 404, api.Error{Code: api.CodeNotFound, Message: `intent "` + r.PathValue("id") + `" not found; list them with: godwit intent list`})
			return
		}
		in := watchSteps()[0]
		in.State = api.IntentCancelling
		reply(w, 200, in)
	})
	// in-8: a resize held for confirmation; anything else is not one.
	held := func(state api.IntentState, ops int) api.Intent {
		op := api.Operation{VM: "web-1", Kind: api.OpResize, State: api.OpDone, Source: "host1", Destination: "host1", Strategy: api.StrategyHotplug}
		in := api.Intent{ID: "in-8", Kind: api.IntentResize, Target: "web-1", State: state, Params: api.IntentParams{VCPUs: 4, Hold: true},
			Revert: &api.ResizeRevert{Flavor: api.Flavor{VCPUs: 2, MemoryMiB: 512}}, CreatedAt: created, UpdatedAt: created}
		for range ops {
			in.Operations = append(in.Operations, op)
		}
		return in
	}
	for action, state := range map[string]api.IntentState{"confirm": api.IntentCompleted, "revert": api.IntentReverting} {
		record("POST /v1/intents/{id}/"+action, func(w http.ResponseWriter, r *http.Request) {
			if r.PathValue("id") != "in-8" {
				reply(w, 409, api.Error{Code: api.CodeConflict, Message: "intent " + r.PathValue("id") + " is completed, not awaiting-confirmation"})
				return
			}
			in := held(state, 1)
			if action == "revert" {
				in.Operations[0].State = api.OpDone
				in.Operations = append(in.Operations, api.Operation{VM: "web-1", Kind: api.OpResize, State: api.OpPending, Source: "host1", Destination: "host1"})
				in.Revert.FirstOperation = 1
			}
			reply(w, 202, in)
		})
	}
	record("GET /v1/migrations", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, []api.Migration{testMigration()}) })
	record("GET /v1/migrations/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		step := pos - 1
		mu.Unlock()
		if m, ok := watchMigration(r.PathValue("id"), step); ok {
			reply(w, 200, m)
			return
		}
		reply(w, 404, api.Error{Code: api.CodeNotFound, Message: "migration not found"})
	})
	for _, action := range []string{"enable", "disable"} {
		record("POST /v1/hosts/{name}/"+action, func(w http.ResponseWriter, r *http.Request) {
			h := testHosts()[0]
			h.Name, h.Enabled = r.PathValue("name"), action == "enable"
			reply(w, 200, h)
		})
	}
}
