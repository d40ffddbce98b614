package nova

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

// Servers are godwit's VMs: a server's ID is the VM's ID, its tenant the
// VM's project, its name the VM's display name (free text, not unique,
// as Nova's) and its hostname the VM's godwit name (a unique DNS label,
// made from the server's name at create: godwitName).

// project is the caller's project: its token's (a cluster without a CA
// has only "default").
func project(r *http.Request) string {
	if p := auth.From(r.Context()).Project; p != "" {
		return p
	}
	return "default"
}

func isAdmin(r *http.Request) bool { return auth.From(r.Context()).Role == api.RoleAdmin }

// vmByID finds a server; another project's answers as one that does not
// exist.
func (a *API) vmByID(r *http.Request, id string) (api.VM, error) {
	vms, err := a.Svc.VMs(r.Context(), store.VMFilter{ID: id})
	if err == nil && len(vms) == 1 && (isAdmin(r) || vms[0].Project == project(r)) {
		return vms[0], nil
	}
	if err != nil {
		return api.VM{}, err
	}
	return api.VM{}, ServerNotFound(id)
}

// ServerNotFound is the one answer for a server that does not exist or
// is another project's: the two read the same.
func ServerNotFound(id string) error { return errs.NotFound("Instance %s could not be found.", id) }

// activeMigrations maps VM IDs to their running migration.
func (a *API) activeMigrations(r *http.Request) map[string]api.Migration {
	ms, _ := a.Svc.Migrations(r.Context(), store.MigrationFilter{Active: true})
	out := map[string]api.Migration{}
	for _, m := range ms {
		out[m.VMID] = m
	}
	return out
}

// activeIntents maps VM IDs to the intents not ended that act on them
// (a resize: its target is the VM).
func (a *API) activeIntents(r *http.Request) map[string][]api.Intent {
	ins, _ := a.Intents.Intents(r.Context(), store.IntentFilter{Active: true})
	out := map[string][]api.Intent{}
	for _, in := range ins {
		for _, op := range in.Operations {
			if op.VMID != "" {
				out[op.VMID] = append(out[op.VMID], in)
				break
			}
		}
	}
	return out
}

// resizeStatus is the Nova status a resize gives a server: RESIZE while
// it runs, VERIFY_RESIZE while it waits for confirmResize, REVERT_RESIZE
// while it goes back; "" without one.
func resizeStatus(ins []api.Intent) (string, any) {
	for _, in := range ins {
		if in.Kind != api.IntentResize && !(in.Kind == api.IntentMigrate && in.Params.Hold) {
			continue
		}
		switch in.State {
		case api.IntentAwaitingConfirm:
			return "VERIFY_RESIZE", nil
		case api.IntentReverting:
			return "REVERT_RESIZE", "resize_reverting"
		case api.IntentRunning:
			return "RESIZE", "resize_prep"
		}
	}
	return "", nil
}

// status is a VM's Nova status, vm_state, task_state and power_state.
func status(vm api.VM, mig *api.Migration) (st, vmState string, task any, power int) {
	switch vm.State {
	case api.VMPending, api.VMCreating:
		st, vmState, power = "BUILD", "building", 0
	case api.VMRunning:
		st, vmState, power = "ACTIVE", "active", 1
	case api.VMStopped:
		st, vmState, power = "SHUTOFF", "stopped", 4
	case api.VMDeleting:
		st, vmState, task, power = "ACTIVE", "active", "deleting", 1
	case api.VMUnknown:
		st, vmState, power = "UNKNOWN", "active", 0
	case api.VMCrashed:
		st, vmState, power = "ERROR", "error", 6
	default:
		st, vmState, power = "ERROR", "error", 0
	}
	if mig != nil {
		st, task = "MIGRATING", "migrating"
		if mig.Kind == api.KindCold {
			st, task = "RESIZE", "resize_migrating"
		}
	}
	return st, vmState, task, power
}

// opaqueHostID is Nova's opaque host ID: the same for a project's servers on
// one host, different across projects.
func opaqueHostID(vm api.VM) string {
	if vm.Host == "" {
		return ""
	}
	sum := sha256.Sum224([]byte(vm.Project + vm.Host))
	return hex.EncodeToString(sum[:])
}

func link(r *http.Request, path string) []map[string]string {
	base := baseURL(r)
	return []map[string]string{{"rel": "self", "href": base + ComputePrefix + "/v2.1" + path}, {"rel": "bookmark", "href": base + ComputePrefix + path}}
}

// serverView is a server as Nova shows it at microversion v.
func (a *API) serverView(r *http.Request, v Microversion, vm api.VM, mig *api.Migration, ins []api.Intent, hosts map[string]api.Host) map[string]any {
	st, vmState, task, power := status(vm, mig)
	if rs, rt := resizeStatus(ins); rs != "" {
		st, task = rs, rt
		if rs == "VERIFY_RESIZE" {
			vmState = "resized"
		}
	}
	addresses := map[string][]map[string]any{}
	for _, p := range vm.Ports {
		addresses[p.Network] = append(addresses[p.Network], map[string]any{"addr": p.IP, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": p.MAC})
	}
	s := map[string]any{
		"id": vm.ID, "name": serverName(vm), "status": st, "tenant_id": vm.Project, "user_id": vm.Project,
		"metadata": metadataView(vm.Metadata), "hostId": opaqueHostID(vm), "created": stamp(vm.CreatedAt), "updated": stamp(vm.UpdatedAt),
		"image":     map[string]any{"id": vm.Image, "links": []map[string]string{{"rel": "bookmark", "href": baseURL(r) + ComputePrefix + "/images/" + vm.Image}}},
		"addresses": addresses, "accessIPv4": vm.AccessIPv4, "accessIPv6": vm.AccessIPv6, "links": link(r, "/servers/"+vm.ID),
		"key_name": nilIfEmpty(vm.KeyName), "config_drive": "",
		"OS-DCF:diskConfig": "MANUAL", "OS-EXT-AZ:availability_zone": zone,
		"OS-EXT-STS:vm_state": vmState, "OS-EXT-STS:task_state": task, "OS-EXT-STS:power_state": power,
		"OS-SRV-USG:launched_at": stamp(vm.CreatedAt), "OS-SRV-USG:terminated_at": nil,
		"os-extended-volumes:volumes_attached": []any{},
	}
	switch st { // Nova shows progress in these states only
	case "ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING":
		s["progress"] = 0
	}
	if len(vm.Ports) > 0 {
		s["security_groups"] = []map[string]string{{"name": "default"}}
	}
	s["flavor"] = a.flavorRef(r, v, vm)
	if isAdmin(r) {
		s["OS-EXT-SRV-ATTR:host"] = nilIfEmpty(vm.Host)
		s["OS-EXT-SRV-ATTR:hypervisor_hostname"] = nilIfEmpty(vm.Host)
		s["OS-EXT-SRV-ATTR:instance_name"] = vm.Name
		if v.AtLeast(3) {
			s["OS-EXT-SRV-ATTR:reservation_id"] = "r-" + vm.ID[:8]
			s["OS-EXT-SRV-ATTR:launch_index"] = 0
			s["OS-EXT-SRV-ATTR:hostname"] = vm.Name
			s["OS-EXT-SRV-ATTR:kernel_id"] = ""
			s["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
			s["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
			s["OS-EXT-SRV-ATTR:user_data"] = nilIfEmpty(base64.StdEncoding.EncodeToString([]byte(vm.UserData)))
		}
	}
	if v.AtLeast(9) {
		s["locked"] = vm.Lock != nil
	}
	if v.AtLeast(16) {
		hs := ""
		if h, ok := hosts[vm.Host]; ok {
			switch {
			case h.State == api.HostUp && !h.Enabled:
				hs = "MAINTENANCE"
			case h.State == api.HostUp:
				hs = "UP"
			case h.State == api.HostDown:
				hs = "DOWN"
			default:
				hs = "UNKNOWN"
			}
		}
		s["host_status"] = hs
	}
	if v.AtLeast(19) {
		s["description"] = nilIfEmpty(vm.Description)
	}
	if v.AtLeast(26) {
		s["tags"] = []string{}
	}
	return s
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// listServers is GET /servers and /servers/detail: the caller's
// project's, or with all_tenants every project's (admins), newest
// first as in Nova. Filters: name (a regular expression, as in Nova),
// status, image, flavor, host (admins), project_id/tenant_id (admins,
// with all_tenants: Nova ignores them without it); paging: marker (a
// server ID) and limit, with a next link when a page is full.
func (a *API) listServers(detail bool) func(w http.ResponseWriter, r *http.Request, v Microversion) {
	return func(w http.ResponseWriter, r *http.Request, v Microversion) {
		q := r.URL.Query()
		f := store.VMFilter{Project: project(r)}
		if isAdmin(r) {
			if _, ok := q["all_tenants"]; ok && (q.Get("all_tenants") == "" || allTenants(q.Get("all_tenants"))) {
				f.Project = q.Get("project_id") + q.Get("tenant_id")
			}
			f.Host = q.Get("host")
		}
		limit, err := queryInt(q, "limit")
		if err != nil {
			WriteError(w, r, err)
			return
		}
		vms, err := a.Svc.VMs(r.Context(), f)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		var nameRE *regexp.Regexp
		if n := q.Get("name"); n != "" {
			if nameRE, err = regexp.Compile(n); err != nil {
				WriteError(w, r, errs.Invalid("name %q is not a regular expression: %v", n, err))
				return
			}
		}
		flavor := ""
		if ref := q.Get("flavor"); ref != "" {
			if _, flavor, err = a.resolveFlavor(r, ref); err != nil {
				writeJSON(w, http.StatusOK, map[string]any{"servers": []any{}}) // Nova: no server has an unknown flavor
				return
			}
		}
		image := q.Get("image")
		if i := strings.LastIndex(image, "/"); i >= 0 {
			image = image[i+1:]
		}
		slices.SortStableFunc(vms, func(x, y api.VM) int {
			return cmp.Or(y.CreatedAt.Compare(x.CreatedAt), strings.Compare(y.ID, x.ID))
		})
		if m := q.Get("marker"); m != "" {
			i := slices.IndexFunc(vms, func(vm api.VM) bool { return vm.ID == m })
			if i < 0 {
				WriteError(w, r, errs.Invalid("marker [%s] not found", m))
				return
			}
			vms = vms[i+1:]
		}
		migs, intents := a.activeMigrations(r), a.activeIntents(r)
		hosts := a.hostMap(r, v)
		out := []map[string]any{}
		for _, vm := range vms {
			if _, given := q["limit"]; given && len(out) == limit {
				break
			}
			if nameRE != nil && !nameRE.MatchString(serverName(vm)) || image != "" && vm.Image != image || flavor != "" && vm.FlavorName != flavor {
				continue
			}
			var mig *api.Migration
			if m, ok := migs[vm.ID]; ok {
				mig = &m
			}
			view := a.serverView(r, v, vm, mig, intents[vm.ID], hosts)
			if s := q.Get("status"); s != "" && !strings.EqualFold(s, view["status"].(string)) {
				continue
			}
			if !detail {
				view = map[string]any{"id": vm.ID, "name": serverName(vm), "links": view["links"]}
			}
			out = append(out, view)
		}
		body := map[string]any{"servers": out}
		if _, given := q["limit"]; given && limit > 0 && len(out) == limit {
			next := *r.URL
			nq := next.Query()
			nq.Set("marker", out[len(out)-1]["id"].(string))
			next.RawQuery = nq.Encode()
			body["servers_links"] = []map[string]string{{"rel": "next", "href": baseURL(r) + next.RequestURI()}}
		}
		writeJSON(w, http.StatusOK, body)
	}
}

// allTenants reads all_tenants as Nova does: present and not false.
func allTenants(s string) bool {
	switch strings.ToLower(s) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}

// hostMap is the hosts by name, when the view shows host_status.
func (a *API) hostMap(r *http.Request, v Microversion) map[string]api.Host {
	if !v.AtLeast(16) {
		return nil
	}
	hs, err := a.Svc.Hosts(r.Context())
	if err != nil {
		return nil
	}
	m := map[string]api.Host{}
	for _, h := range hs {
		m[h.Name] = h
	}
	return m
}

func (a *API) showServer(w http.ResponseWriter, r *http.Request, v Microversion) {
	vm, err := a.vmByID(r, r.PathValue("server_id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var mig *api.Migration
	if m, ok := a.activeMigrations(r)[vm.ID]; ok {
		mig = &m
	}
	writeJSON(w, http.StatusOK, map[string]any{"server": a.serverView(r, v, vm, mig, a.activeIntents(r)[vm.ID], a.hostMap(r, v))})
}

type createServer struct {
	Server struct {
		Name             string           `json:"name"`
		ImageRef         string           `json:"imageRef"`
		FlavorRef        string           `json:"flavorRef"`
		Networks         any              `json:"networks"` // a list, or "auto"/"none" (2.37)
		AvailabilityZone string           `json:"availability_zone"`
		UserData         string           `json:"user_data"`
		MinCount         int              `json:"min_count"`
		MaxCount         int              `json:"max_count"`
		Description      *string          `json:"description"`
		BlockDevices     []map[string]any `json:"block_device_mapping_v2"`
		AdminPass        string           `json:"adminPass"`
		AccessIPv4       string           `json:"accessIPv4"`
		AccessIPv6       string           `json:"accessIPv6"`
		KeyName          string           `json:"key_name"`
		Metadata         map[string]any   `json:"metadata"`
		SecurityGroups   []struct {
			Name string `json:"name"`
		} `json:"security_groups"`
		Personality []any `json:"personality"`
	} `json:"server"`
}

// createServer is POST /servers: a VM of the image and flavor named, in
// the caller's project, placed by the scheduler or (admins) on the host
// of availability_zone "nova:HOST".
func (a *API) createServer(w http.ResponseWriter, r *http.Request, v Microversion) {
	var body createServer
	if err := decode(r, &body); err != nil {
		WriteError(w, r, err)
		return
	}
	s := body.Server
	if s.MinCount > 1 || s.MaxCount > 1 {
		WriteError(w, r, errs.Invalid("godwit creates one server a call: min_count and max_count must be 1 (VM names are unique)"))
		return
	}
	if len(s.BlockDevices) > 0 {
		WriteError(w, r, errs.Invalid("block_device_mapping_v2 is not supported: godwit has no volumes; the flavor's disk is the VM's disk"))
		return
	}
	if err := unsupportedCreate("", len(s.Personality)); err != nil { // key_name: the caller's key pair (req.KeyName)
		WriteError(w, r, err)
		return
	}
	meta, err := metadata(s.Metadata)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	for _, g := range s.SecurityGroups {
		if g.Name != "default" {
			WriteError(w, r, errs.Invalid("Security group %s not found: godwit has no security groups but \"default\" (its networks' own isolation)", g.Name))
			return
		}
	}
	if s.ImageRef == "" {
		WriteError(w, r, errs.Invalid("imageRef is required: godwit boots servers from an image (openstack image list)"))
		return
	}
	if strings.TrimSpace(s.Name) == "" {
		WriteError(w, r, errs.Invalid("name is required: a server needs a name"))
		return
	}
	if err := api.ValidateDisplayText("name", s.Name); err != nil {
		WriteError(w, r, errs.Invalid("%v", err))
		return
	}
	flavor, name, err := a.resolveFlavor(r, s.FlavorRef)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	req := api.CreateVMRequest{Name: godwitName(s.Name, false), DisplayName: s.Name, Project: project(r), Image: s.ImageRef, Metadata: meta,
		AccessIPv4: s.AccessIPv4, AccessIPv6: s.AccessIPv6, KeyName: s.KeyName}
	if s.Description != nil && v.AtLeast(19) {
		req.Description = *s.Description
	}
	if name != "" {
		req.FlavorName = name
	} else {
		req.Flavor = flavor
	}
	if s.UserData != "" {
		ud, err := base64.StdEncoding.DecodeString(s.UserData)
		if err != nil {
			WriteError(w, r, errs.Invalid("user_data must be base64: %v", err))
			return
		}
		req.UserData = string(ud)
	}
	if z, host, ok := strings.Cut(s.AvailabilityZone, ":"); s.AvailabilityZone != "" {
		if z != zone {
			WriteError(w, r, errs.Invalid("availability zone %q does not exist: godwit's hosts are all in %q", z, zone))
			return
		}
		if ok && host != "" {
			if !isAdmin(r) {
				WriteError(w, r, errs.Forbidden("only admins may name a host (availability_zone nova:HOST)"))
				return
			}
			req.Host = host
		}
	}
	switch nets := s.Networks.(type) {
	case nil, string: // "auto", "none": godwit makes no network of its own
	case []any:
		for _, n := range nets {
			m, _ := n.(map[string]any)
			id, _ := m["uuid"].(string)
			if id == "" {
				WriteError(w, r, errs.Invalid("each network needs a uuid: a godwit network's name (openstack network list is not served; godwit network list)"))
				return
			}
			nic := api.NICRequest{Network: id}
			if ip, ok := m["fixed_ip"].(string); ok {
				nic.IP = ip
			}
			req.Networks = append(req.Networks, nic)
		}
	}
	vm, err := a.Svc.CreateVM(r.Context(), req)
	if errs.Code(err) == api.CodeConflict && req.Name == s.Name {
		// Nova's names need not be unique; godwit's must: the second
		// server of a name gets a suffix.
		req.Name = godwitName(s.Name, true)
		vm, err = a.Svc.CreateVM(r.Context(), req)
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	// Nova answers with the server's admin password, the one given or
	// one it made; like Nova's libvirt driver without inject_password,
	// godwit does not set it in the guest (user_data can).
	pass := adminPass(s.AdminPass)
	writeJSON(w, http.StatusAccepted, map[string]any{"server": map[string]any{
		"id": vm.ID, "links": link(r, "/servers/"+vm.ID), "OS-DCF:diskConfig": "MANUAL", "adminPass": pass,
		"security_groups": []map[string]string{{"name": "default"}},
	}})
}

// metadataView is a server's metadata as Nova shows it: {} for none.
func metadataView(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// adminPass is the admin password a create or rebuild answers with: the
// one given, or one made (see createServer).
func adminPass(given string) string {
	if given != "" {
		return given
	}
	var b [9]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// metadata is a server's metadata as godwit keeps it: Nova's values
// are strings.
func metadata(m map[string]any) (map[string]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, errs.Invalid("metadata value of %q is not a string", k)
		}
		out[k] = s
	}
	if err := api.ValidateMetadata(out); err != nil {
		return nil, errs.Invalid("%v", err)
	}
	return out, nil
}

// unsupportedCreate refuses what a create or rebuild asks that godwit
// does not keep, rather than drop it unsaid: a rebuild's new key pair
// (a server keeps the one it was created with), personality files.
func unsupportedCreate(keyName string, personality int) error {
	switch {
	case keyName != "":
		return errs.Invalid("a rebuild cannot change the server's key pair (key_name): the server keeps the one it was created with; give other keys in user_data (cloud-init)")
	case personality > 0:
		return errs.Invalid("personality files are not supported by godwit: use user_data (cloud-init)")
	}
	return nil
}

// serverName is a server's name as Nova shows it.
func serverName(vm api.VM) string {
	if vm.DisplayName != "" {
		return vm.DisplayName
	}
	return vm.Name
}

// godwitName makes a godwit VM name (a DNS label) for a server's free-text
// name: the name itself when it is one and unique is false, else its
// letters and digits in lower case, '-' between runs of them, with a
// random suffix so that servers of the same name do not collide.
func godwitName(name string, unique bool) string {
	if !unique && api.ValidateName("server", name) == nil {
		return name
	}
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(name) {
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(c)
			dash = false
		default:
			dash = true
		}
		if b.Len() >= api.MaxNameLen-9 {
			break
		}
	}
	slug := strings.TrimRight(b.String(), "-")
	if slug == "" {
		slug = "server"
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	return slug + "-" + hex.EncodeToString(suffix[:])
}

// updateServer is PUT /servers/{id}: the server's name, access
// addresses and (2.19) description.
func (a *API) updateServer(w http.ResponseWriter, r *http.Request, v Microversion) {
	var body struct {
		Server struct {
			Name        *string `json:"name"`
			Description *string `json:"description"`
			AccessIPv4  *string `json:"accessIPv4"`
			AccessIPv6  *string `json:"accessIPv6"`
		} `json:"server"`
	}
	if err := decode(r, &body); err != nil {
		WriteError(w, r, err)
		return
	}
	vm, err := a.vmByID(r, r.PathValue("server_id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	u := body.Server
	switch {
	case u.Name != nil && strings.TrimSpace(*u.Name) == "":
		err = errs.Invalid("name must not be empty")
	case u.Description != nil && !v.AtLeast(19):
		err = errs.Invalid("description needs microversion 2.19 or later")
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if vm, err = a.Svc.UpdateVM(r.Context(), vm.Name, api.UpdateVMRequest{DisplayName: u.Name, Description: u.Description, AccessIPv4: u.AccessIPv4, AccessIPv6: u.AccessIPv6}); err != nil {
		WriteError(w, r, err)
		return
	}
	var mig *api.Migration
	if m, ok := a.activeMigrations(r)[vm.ID]; ok {
		mig = &m
	}
	writeJSON(w, http.StatusOK, map[string]any{"server": basicView(a.serverView(r, v, vm, mig, a.activeIntents(r)[vm.ID], nil))})
}

// basicFields are the fields of a server in the replies of update and
// rebuild: Nova leaves the extended attributes out of those (to 2.75).
var basicFields = []string{"id", "name", "status", "image", "flavor", "user_id", "tenant_id", "created", "updated", "progress",
	"metadata", "links", "addresses", "hostId", "OS-DCF:diskConfig", "accessIPv4", "accessIPv6", "locked", "description", "tags"}

// basicView is a server view with only basicFields.
func basicView(view map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range basicFields {
		if val, ok := view[k]; ok {
			out[k] = val
		}
	}
	return out
}

func (a *API) deleteServer(w http.ResponseWriter, r *http.Request, v Microversion) {
	vm, err := a.vmByID(r, r.PathValue("server_id"))
	if err == nil {
		err = locked(vm, a.Svc.DeleteVM(r.Context(), vm.Name))
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serverAction is POST /servers/{id}/action: one action, named by the
// body's one key (mapping.go says what each becomes).
func (a *API) serverAction(w http.ResponseWriter, r *http.Request, v Microversion) {
	var body map[string]jsonRaw
	if err := decode(r, &body); err != nil {
		WriteError(w, r, err)
		return
	}
	if len(body) != 1 {
		WriteError(w, r, errs.Invalid("an action body has exactly one key, the action's name"))
		return
	}
	vm, err := a.vmByID(r, r.PathValue("server_id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	for name, arg := range body {
		row, ok := actions[name]
		if !ok {
			WriteError(w, r, errs.Invalid("action %s is not served by godwit's Nova API (docs/nova-compat.md lists those that are)", name))
			return
		}
		if err := row.allowed(r); err != nil {
			WriteError(w, r, err)
			return
		}
		status, reply, err := row.do(a, r, v, vm, arg)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if reply == nil {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, reply)
	}
}
