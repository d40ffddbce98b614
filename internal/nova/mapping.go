package nova

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/service"
)

// Mapping is the one table of how Nova's moves and actions become
// godwit's: Nova's four crossed migration types (live-migrate, migrate,
// resize, evacuate) and its server actions, each to a godwit intent, the
// service operation it runs and the driver strategies beneath. Where the
// two differ, Note says which wins and why. docs/nova-compat.md prints
// this table (TestMappingDocumented holds the two together), and
// serverAction serves exactly the actions with a handler here.
var Mapping = []Row{
	{Nova: "os-migrateLive", Role: api.RoleAdmin, Intent: "migrate (live)", Service: "live migration", Driver: "shared storage, or block copy of each local disk; pre-copy, auto-converge or post-copy as the engine decides",
		Note: "block_migration auto and true let godwit choose per disk (a shared disk is never copied); false on a server with a local disk is refused, as Nova refuses it without shared storage. force is accepted and ignored: godwit always checks the destination", do: liveMigrate},
	{Nova: "migrate", Role: api.RoleAdmin, Intent: "migrate (cold)", Service: "cold migration", Driver: "cold restart (shared disk) or disk transfer (local disk)",
		Note: "host from 2.56. Held, as in Nova: once the VM runs on the destination the server waits in VERIFY_RESIZE; confirmResize keeps it there, revertResize moves it back cold to its old host (godwit migrate --cold --hold)", do: coldMigrate},
	{Nova: "resize", Role: api.RoleMember, Intent: "resize, held for confirmation", Service: "resize in place (vCPU and memory hotplug, or a restart), or a cold migration first when the host lacks room",
		Driver: "hotplug; cold restart or disk transfer when it moves",
		Note:   "godwit resizes in place when the host has room — online when it fits — where Nova always moves the server: no needless move. Either way the server waits in VERIFY_RESIZE for confirmResize or revertResize, as in Nova", do: resize},
	{Nova: "confirmResize", Role: api.RoleMember, Intent: "resize or cold migrate: confirm", Service: "none: the new size or host is kept", Driver: "—", do: confirmResize},
	{Nova: "revertResize", Role: api.RoleMember, Intent: "resize or cold migrate: revert", Service: "resize back in place, then a cold migration back if it moved", Driver: "hotplug or restart; cold restart or disk transfer back",
		Note: "a resize that grew the disk is not reverted (409): godwit grows the disk in place and a disk never shrinks — a shrunk filesystem loses data — where Nova keeps the old disk; confirm instead", do: revertResize},
	{Nova: "rebuild", Role: api.RoleMember, Intent: "rebuild", Service: "rebuild in place", Driver: "a new disk from the image (the old one replaced), same host, same ID and addresses",
		Note: "a new name, description (2.19) or metadata is recorded on the server (the name is its display name; the godwit name stays); key pairs and personality files are refused; the image may change, as in Nova", do: rebuild},
	{Nova: "evacuate", Role: api.RoleAdmin, Intent: "evacuate (host down), of this server", Service: "rebuild elsewhere", Driver: "reuse the shared disk, or rebuild a diskless VM; start it on the destination",
		Note: "the host must be proven down — its lease expired, or an admin forced its service down (os-services force-down), which godwit takes as --host-is-down; a heartbeating host is never evacuated. A server whose disk is local to the dead host is refused (its data would be lost) where Nova rebuilds it from its image: godwit evacuate HOST --allow-data-loss does that knowingly. godwit's scheduler chooses the destination (a host named is refused)", do: evacuate},
	{Nova: "os-start", Role: api.RoleMember, Intent: "—", Service: "VM action start", Driver: "start the VM's QEMU",
		Note: "a running server is refused (409) as in Nova, where godwit's own start does nothing", do: vmAction("start")},
	{Nova: "os-stop", Role: api.RoleMember, Intent: "—", Service: "VM action stop", Driver: "ACPI shutdown, then stop",
		Note: "a stopped server is refused (409) as in Nova", do: vmAction("stop")},
	{Nova: "reboot", Role: api.RoleMember, Intent: "—", Service: "VM action reboot (HARD: forced)", Driver: "guest reset", do: reboot},
	{Nova: "lock", Role: api.RoleMember, Intent: "—", Service: "lock", Driver: "—",
		Note: "locked_reason is read from 2.73, which is above godwit's maximum: below it the action's value is ignored, as in Nova, so no reason is recorded (godwit vm lock --reason records one). Locking a locked server succeeds and changes nothing, as in Nova; while locked, a member's delete, start, stop, reboot, resize, rebuild, confirm and revert are refused (409 \"Instance ID is locked\"), an admin's are not", do: lock},
	{Nova: "unlock", Role: api.RoleMember, Intent: "—", Service: "unlock", Driver: "—",
		Note: "a member's lock is unlocked by any member of the project, an admin's only by an admin (403), as Nova's unlock_override policy says by default", do: unlock},
	{Nova: "os-resetState", Role: api.RoleAdmin, Intent: "—", Service: "refused", Driver: "—", Note: resetStateNote, do: resetState},
}

// Row is one Nova action and what it becomes.
type Row struct {
	Nova    string   // the action's key in POST /servers/{id}/action
	Role    api.Role // the least role that may ask it
	Intent  string   // godwit's intent
	Service string   // the service operation
	Driver  string   // the driver strategies
	Note    string   // where Nova and godwit differ, which wins and why
	do      action
}

type jsonRaw = json.RawMessage

// action runs one server action: its status and body (nil: none).
type action func(a *API, r *http.Request, v Microversion, vm api.VM, arg jsonRaw) (int, any, error)

var actions = func() map[string]Row {
	m := map[string]Row{}
	for _, row := range Mapping {
		m[row.Nova] = row
	}
	return m
}()

// allowed checks the row's role.
func (row Row) allowed(r *http.Request) error {
	if row.Role == api.RoleAdmin && !isAdmin(r) {
		return errs.Forbidden("Policy doesn't allow %s to be performed: it is for admins (godwit's admin role)", row.Nova)
	}
	return nil
}

// vmAction runs a VM action. Nova refuses to start what runs or stop
// what is stopped (409), where godwit's own API does nothing; Nova's
// clients and tests expect the refusal, so Nova's answer wins here.
func vmAction(name string) action {
	return func(a *API, r *http.Request, v Microversion, vm api.VM, _ jsonRaw) (int, any, error) {
		if (name == "start" && vm.State != api.VMStopped && vm.State != api.VMCrashed) || (name == "stop" && vm.State == api.VMStopped) {
			_, vmState, _, _ := status(vm, nil)
			return 0, nil, errs.Conflict("Cannot '%s' instance %s while it is in vm_state %s", name, vm.ID, vmState)
		}
		if _, err := a.Svc.VMAction(r.Context(), vm.Name, name, api.VMActionRequest{}); err != nil {
			return 0, nil, conflict(vm, name, err)
		}
		return http.StatusAccepted, nil, nil
	}
}

func reboot(a *API, r *http.Request, v Microversion, vm api.VM, arg jsonRaw) (int, any, error) {
	var body struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(arg, &body); err != nil || (body.Type != "SOFT" && body.Type != "HARD") {
		return 0, nil, errs.Invalid("reboot takes {\"type\": \"SOFT\"} or {\"type\": \"HARD\"}")
	}
	if _, err := a.Svc.VMAction(r.Context(), vm.Name, "reboot", api.VMActionRequest{Force: body.Type == "HARD"}); err != nil {
		return 0, nil, conflict(vm, "reboot", err)
	}
	return http.StatusAccepted, nil, nil
}

func liveMigrate(a *API, r *http.Request, v Microversion, vm api.VM, arg jsonRaw) (int, any, error) {
	var body struct {
		Host           *string `json:"host"`
		BlockMigration any     `json:"block_migration"`
		Force          *bool   `json:"force"`
	}
	if err := json.Unmarshal(arg, &body); err != nil {
		return 0, nil, errs.Invalid("os-migrateLive takes {\"host\": NAME or null, \"block_migration\": \"auto\", true or false}: %v", err)
	}
	switch body.BlockMigration {
	case false, "false", "False":
		if vm.Pool == api.PoolLocal && vm.Flavor.DiskMiB > 0 {
			return 0, nil, errs.Invalid("server %s has a local disk: it cannot move without copying it; ask block_migration auto or true", vm.ID)
		}
	case nil:
		if v.AtLeast(25) {
			return 0, nil, errs.Invalid("block_migration is required: \"auto\", true or false")
		}
	}
	req := api.MigrateRequest{Kind: api.KindLive}
	if body.Host != nil {
		req.To = *body.Host
	}
	if _, err := a.Intents.Migrate(r.Context(), vm.Name, req); err != nil {
		return 0, nil, conflict(vm, "os-migrateLive", err)
	}
	return http.StatusAccepted, nil, nil
}

func coldMigrate(a *API, r *http.Request, v Microversion, vm api.VM, arg jsonRaw) (int, any, error) {
	req := api.MigrateRequest{Kind: api.KindCold, Hold: true}
	if len(arg) > 0 && string(arg) != "null" {
		var body struct {
			Host *string `json:"host"`
		}
		if err := json.Unmarshal(arg, &body); err != nil {
			return 0, nil, errs.Invalid("migrate takes null or {\"host\": NAME} (2.56): %v", err)
		}
		if body.Host != nil {
			if !v.AtLeast(56) {
				return 0, nil, errs.Invalid("migrate takes a host from microversion 2.56 on (ask --os-compute-api-version 2.56)")
			}
			req.To = *body.Host
		}
	}
	if _, err := a.Intents.Migrate(r.Context(), vm.Name, req); err != nil {
		return 0, nil, conflict(vm, "migrate", err)
	}
	return http.StatusAccepted, nil, nil
}

const resetStateNote = "godwit never overwrites a VM's state by hand: its state machine is persisted before side effects and recovers by itself; a VM in error is repaired with godwit vm start or stop, or evacuate (docs/reliability.md)"

func resetState(a *API, r *http.Request, v Microversion, vm api.VM, _ jsonRaw) (int, any, error) {
	return 0, nil, errs.Invalid("os-resetState is refused: %s", resetStateNote)
}

func evacuate(a *API, r *http.Request, v Microversion, vm api.VM, arg jsonRaw) (int, any, error) {
	var body struct {
		Host *string `json:"host"`
	}
	if len(arg) > 0 && string(arg) != "null" {
		if err := json.Unmarshal(arg, &body); err != nil {
			return 0, nil, errs.Invalid("evacuate takes {} or {\"host\": NAME}: %v", err)
		}
	}
	if body.Host != nil && *body.Host != "" {
		return 0, nil, errs.Invalid("godwit's scheduler chooses where an evacuated server goes: leave host out")
	}
	req := api.EvacuateRequest{VMs: []string{vm.Name}, DryRun: true}
	plan, err := a.Intents.Evacuate(r.Context(), vm.Host, req)
	if err != nil {
		return 0, nil, conflict(vm, "evacuate", err)
	}
	for _, op := range plan.Operations {
		if op.Kind == api.OpNone || op.Destination == "" {
			return 0, nil, errs.Conflict("Cannot evacuate server %s: %s", vm.ID, op.Reason)
		}
	}
	req.DryRun = false
	if _, err := a.Intents.Evacuate(r.Context(), vm.Host, req); err != nil {
		return 0, nil, conflict(vm, "evacuate", err)
	}
	if !v.AtLeast(14) {
		return http.StatusOK, map[string]any{"adminPass": ""}, nil
	}
	return http.StatusOK, nil, nil
}

func resize(a *API, r *http.Request, v Microversion, vm api.VM, arg jsonRaw) (int, any, error) {
	var body struct {
		FlavorRef string `json:"flavorRef"`
	}
	if err := json.Unmarshal(arg, &body); err != nil || body.FlavorRef == "" {
		return 0, nil, errs.Invalid("resize takes {\"flavorRef\": ID}")
	}
	_, name, err := a.resolveFlavor(r, body.FlavorRef)
	if err != nil {
		return 0, nil, err
	}
	if name == vm.FlavorName {
		return 0, nil, errs.Invalid("Can not find valid host: the server already has flavor %s (resize to the same flavor)", name)
	}
	if _, err := a.Intents.Resize(r.Context(), vm.Name, api.ResizeRequest{FlavorName: name, AllowRestart: true, AllowMove: true, Hold: true}); err != nil {
		return 0, nil, conflict(vm, "resize", err)
	}
	return http.StatusAccepted, nil, nil
}

func confirmResize(a *API, r *http.Request, v Microversion, vm api.VM, _ jsonRaw) (int, any, error) {
	in, err := a.heldResize(r, vm)
	if err == nil {
		_, err = a.Intents.ConfirmResize(r.Context(), in.ID)
	}
	if err != nil {
		return 0, nil, conflict(vm, "confirmResize", err)
	}
	return http.StatusNoContent, nil, nil
}

func revertResize(a *API, r *http.Request, v Microversion, vm api.VM, _ jsonRaw) (int, any, error) {
	in, err := a.heldResize(r, vm)
	if err == nil {
		_, err = a.Intents.RevertResize(r.Context(), in.ID)
	}
	if err != nil {
		return 0, nil, conflict(vm, "revertResize", err)
	}
	return http.StatusAccepted, nil, nil
}

// heldResize is the server's resize or cold migration awaiting
// confirmation.
func (a *API) heldResize(r *http.Request, vm api.VM) (api.Intent, error) {
	in, ok, err := a.Intents.HeldIntent(r.Context(), vm)
	switch {
	case err != nil:
		return api.Intent{}, err
	case !ok || in.State != api.IntentAwaitingConfirm:
		return api.Intent{}, errs.Conflict("Instance %s is not in VERIFY_RESIZE: it has no resize or migration awaiting confirmation", vm.ID)
	}
	return in, nil
}

func rebuild(a *API, r *http.Request, v Microversion, vm api.VM, arg jsonRaw) (int, any, error) {
	var body struct {
		ImageRef    string          `json:"imageRef"`
		Name        *string         `json:"name"`
		Description *string         `json:"description"`
		Metadata    map[string]any  `json:"metadata"`
		KeyName     *string         `json:"key_name"`
		Personality json.RawMessage `json:"personality"`
		AdminPass   string          `json:"adminPass"`
	}
	if err := json.Unmarshal(arg, &body); err != nil || body.ImageRef == "" {
		return 0, nil, errs.Invalid("rebuild takes {\"imageRef\": IMAGE}")
	}
	key := ""
	if body.KeyName != nil {
		key = *body.KeyName
	}
	var personality []any
	_ = json.Unmarshal(body.Personality, &personality)
	if err := unsupportedCreate(key, len(personality)); err != nil {
		return 0, nil, err
	}
	if body.Description != nil && !v.AtLeast(19) {
		return 0, nil, errs.Invalid("description needs microversion 2.19 or later")
	}
	meta, err := metadata(body.Metadata)
	if err != nil {
		return 0, nil, err
	}
	if body.Metadata != nil && meta == nil {
		meta = map[string]string{} // {}: cleared, as in Nova
	}
	rename := api.UpdateVMRequest{DisplayName: body.Name, Description: body.Description, Metadata: meta}
	if err := rename.Validate(); err != nil {
		return 0, nil, errs.Invalid("%v", err)
	}
	if _, err := a.Intents.Rebuild(r.Context(), vm.Name, api.RebuildRequest{Image: body.ImageRef}); err != nil {
		return 0, nil, conflict(vm, "rebuild", err)
	}
	if !rename.Empty() {
		if _, err := a.Svc.UpdateVM(r.Context(), vm.Name, rename); err != nil {
			return 0, nil, err
		}
	}
	now, err := a.vmByID(r, vm.ID)
	if err != nil {
		return 0, nil, err
	}
	view := basicView(a.serverView(r, v, now, nil, a.activeIntents(r)[vm.ID], nil))
	view["status"], view["adminPass"] = "REBUILD", adminPass(body.AdminPass)
	view["image"] = map[string]any{"id": body.ImageRef, "links": []map[string]string{{"rel": "bookmark", "href": baseURL(r) + ComputePrefix + "/images/" + body.ImageRef}}}
	return http.StatusAccepted, map[string]any{"server": view}, nil
}

func lock(a *API, r *http.Request, v Microversion, vm api.VM, _ jsonRaw) (int, any, error) {
	if _, err := a.Svc.LockVM(r.Context(), vm.Name, ""); err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, nil, nil
}

func unlock(a *API, r *http.Request, v Microversion, vm api.VM, _ jsonRaw) (int, any, error) {
	if _, err := a.Svc.UnlockVM(r.Context(), vm.Name); err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, nil, nil
}

// conflict words a conflict as Nova does: "Instance ID is locked" when
// the VM's lock refused it (Nova's InstanceIsLocked), else Nova's
// "Cannot 'ACTION' instance …" — godwit's explanation after either.
func conflict(vm api.VM, action string, err error) error {
	switch {
	case service.IsLocked(err):
		return locked(vm, err)
	case errs.Code(err) == api.CodeConflict:
		return errs.Conflict("Cannot '%s' instance %s while it is in vm_state %s: %v", action, vm.ID, vm.State, err)
	}
	return fmt.Errorf("%s: %w", action, err)
}

// locked is err, worded as Nova's InstanceIsLocked when the VM's lock
// made it.
func locked(vm api.VM, err error) error {
	if service.IsLocked(err) {
		return errs.Conflict("Instance %s is locked: %v", vm.ID, err)
	}
	return err
}
