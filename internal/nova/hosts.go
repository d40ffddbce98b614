package nova

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/service"
	"github.com/godwit/godwit/internal/store"
)

// Hosts: Nova's hypervisors and compute services are both godwit's
// hosts. Their IDs are numbers before 2.53 and UUIDs from it, both taken
// from the host's name; names are accepted wherever an ID is.

func (a *API) hostRoutes() []Route {
	v := ComputePrefix + "/v2.1"
	return []Route{
		{"GET " + v + "/os-hypervisors", versioned(a.listHypervisors(false))},
		{"GET " + v + "/os-hypervisors/detail", versioned(a.listHypervisors(true))},
		{"GET " + v + "/os-hypervisors/statistics", versioned(a.hypervisorStatistics)},
		{"GET " + v + "/os-hypervisors/{hypervisor_id}", versioned(a.showHypervisor)},
		{"GET " + v + "/os-hypervisors/{hypervisor_id}/uptime", versioned(a.hypervisorUptime)},
		{"GET " + v + "/os-hypervisors/{hypervisor_id}/servers", versioned(a.hypervisorServers)},
		{"GET " + v + "/os-hypervisors/{hypervisor_id}/search", versioned(a.searchHypervisors)},
		{"GET " + v + "/os-services", versioned(a.listServices)},
		{"GET " + v + "/os-aggregates", versioned(a.aggregates)},
		{"PUT " + v + "/os-services/{action}", versioned(a.updateService)},
	}
}

// hostNumber and hostUUID are a host's IDs, from its name.
func hostNumber(name string) int64 {
	sum := sha256.Sum256([]byte(name))
	return int64(uint32(sum[0])<<24|uint32(sum[1])<<16|uint32(sum[2])<<8|uint32(sum[3])) & 0x7fffffff
}

func hostUUID(name string) string {
	s := sha256.Sum256([]byte("godwit-host:" + name))
	s[6] = s[6]&0x0f | 0x50 // version 5-like: a name-based ID
	s[8] = s[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

func hypervisorID(v Microversion, name string) any {
	if v.AtLeast(53) {
		return hostUUID(name)
	}
	return hostNumber(name)
}

// findHost finds a host by its number, UUID or name, with what its VMs
// hold.
func (a *API) findHost(r *http.Request, id string) (api.Host, error) {
	hs, err := a.Svc.HostsWithAllocations(r.Context())
	if err != nil {
		return api.Host{}, err
	}
	for _, h := range hs {
		if id == h.Name || id == hostUUID(h.Name) || id == strconv.FormatInt(hostNumber(h.Name), 10) {
			return h, nil
		}
	}
	return api.Host{}, errs.NotFound("Hypervisor with ID %s could not be found.", id)
}

func state(h api.Host) string {
	if h.State == api.HostUp && !h.ForcedDown {
		return "up"
	}
	return "down"
}

func enabled(h api.Host) string {
	if h.Enabled {
		return "enabled"
	}
	return "disabled"
}

// qemuVersion is Nova's hypervisor_version: 10.0.2 is 10000002.
func qemuVersion(s string) int {
	var maj, min, pat int
	fmt.Sscanf(s, "%d.%d.%d", &maj, &min, &pat)
	return maj*1000000 + min*1000 + pat
}

func (a *API) hypervisorView(r *http.Request, v Microversion, h api.Host, detail bool, servers []api.VM) map[string]any {
	out := map[string]any{"id": hypervisorID(v, h.Name), "hypervisor_hostname": h.Name, "state": state(h), "status": enabled(h)}
	if detail {
		cpu := map[string]any{"model": h.CPUModel, "vendor": "", "arch": "x86_64", "features": h.CPUFlags,
			"topology": map[string]int{"cores": h.CPUs, "threads": 1, "sockets": 1}}
		var cpuInfo any = cpu
		if !v.AtLeast(28) {
			cpuInfo = fmt.Sprintf(`{"model": %q, "arch": "x86_64"}`, h.CPUModel)
		}
		hv := "QEMU"
		if h.Hypervisor == "fake" {
			hv = "fake"
		}
		freeDisk := gib(h.DiskMiB-h.AllocatedDiskMiB) - 1
		if freeDisk < 0 {
			freeDisk = 0
		}
		addr := h.Address
		if i := strings.Index(addr, "://"); i >= 0 {
			addr = addr[i+3:]
		}
		if i := strings.LastIndex(addr, ":"); i >= 0 {
			addr = addr[:i]
		}
		out["hypervisor_type"], out["hypervisor_version"] = hv, qemuVersion(h.QEMUVersion)
		out["host_ip"], out["cpu_info"] = addr, cpuInfo
		out["vcpus"], out["vcpus_used"] = h.CPUs, h.AllocatedCPUs
		out["memory_mb"], out["memory_mb_used"], out["free_ram_mb"] = h.MemoryMiB, h.AllocatedMemoryMiB, h.MemoryMiB-h.AllocatedMemoryMiB
		out["local_gb"], out["local_gb_used"], out["free_disk_gb"], out["disk_available_least"] = gib(h.DiskMiB), gib(h.AllocatedDiskMiB), freeDisk, freeDisk
		out["running_vms"], out["current_workload"] = h.VMs, 0
		out["service"] = map[string]any{"host": h.Name, "id": hypervisorID(v, h.Name), "disabled_reason": nilIfEmpty(h.DisabledReason)}
	}
	if servers != nil {
		list := []map[string]string{}
		for _, vm := range servers {
			list = append(list, map[string]string{"uuid": vm.ID, "name": vm.Name})
		}
		out["servers"] = list
	}
	return out
}

// hostsWithUse is the hosts with what their VMs hold.
func (a *API) hostsWithUse(r *http.Request) ([]api.Host, error) {
	return a.Svc.HostsWithAllocations(r.Context())
}

func (a *API) serversOn(r *http.Request, host string) []api.VM {
	vms, _ := a.Svc.VMs(r.Context(), store.VMFilter{Host: host})
	if vms == nil {
		vms = []api.VM{}
	}
	return vms
}

func (a *API) listHypervisors(detail bool) func(w http.ResponseWriter, r *http.Request, v Microversion) {
	return func(w http.ResponseWriter, r *http.Request, v Microversion) {
		hs, err := a.Svc.HostsWithAllocations(r.Context())
		if err != nil {
			WriteError(w, r, err)
			return
		}
		q := r.URL.Query()
		pattern, withServers := "", false
		if v.AtLeast(53) {
			pattern, withServers = q.Get("hypervisor_hostname_pattern"), q.Get("with_servers") == "true" || q.Get("with_servers") == "1"
		}
		out := []map[string]any{}
		for _, h := range hs {
			if pattern != "" && !strings.Contains(h.Name, pattern) {
				continue
			}
			var servers []api.VM
			if withServers {
				servers = a.serversOn(r, h.Name)
			}
			out = append(out, a.hypervisorView(r, v, h, detail, servers))
		}
		writeJSON(w, http.StatusOK, map[string]any{"hypervisors": out})
	}
}

// hypervisorStatistics is GET /os-hypervisors/statistics: the sums
// over the hosts (deprecated in Nova from 2.88, served here to 2.60).
func (a *API) hypervisorStatistics(w http.ResponseWriter, r *http.Request, v Microversion) {
	hs, err := a.hostsWithUse(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	sum := map[string]int{"count": len(hs), "current_workload": 0}
	for _, h := range hs {
		view := a.hypervisorView(r, v, h, true, nil)
		for _, k := range []string{"vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "free_ram_mb", "local_gb", "local_gb_used", "free_disk_gb", "disk_available_least", "running_vms"} {
			sum[k] += view[k].(int)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"hypervisor_statistics": sum})
}

func (a *API) hostFor(r *http.Request) (api.Host, error) {
	return a.findHost(r, r.PathValue("hypervisor_id"))
}

func (a *API) showHypervisor(w http.ResponseWriter, r *http.Request, v Microversion) {
	h, err := a.hostFor(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var servers []api.VM
	if v.AtLeast(53) && r.URL.Query().Get("with_servers") == "true" {
		servers = a.serversOn(r, h.Name)
	}
	writeJSON(w, http.StatusOK, map[string]any{"hypervisor": a.hypervisorView(r, v, h, true, servers)})
}

func (a *API) hypervisorUptime(w http.ResponseWriter, r *http.Request, v Microversion) {
	h, err := a.hostFor(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	view := a.hypervisorView(r, v, h, false, nil)
	view["uptime"] = fmt.Sprintf(" %s up %s", time.Now().UTC().Format("15:04:05"), time.Since(h.RegisteredAt).Round(time.Minute))
	writeJSON(w, http.StatusOK, map[string]any{"hypervisor": view})
}

// hypervisorServers is GET /os-hypervisors/{pattern}/servers (before
// 2.53): the hosts whose name holds pattern, with their servers.
func (a *API) hypervisorServers(w http.ResponseWriter, r *http.Request, v Microversion) {
	a.search(w, r, v, true)
}

func (a *API) searchHypervisors(w http.ResponseWriter, r *http.Request, v Microversion) {
	a.search(w, r, v, false)
}

func (a *API) search(w http.ResponseWriter, r *http.Request, v Microversion, withServers bool) {
	if v.AtLeast(53) {
		writeStatus(w, r, http.StatusNotFound, "from microversion 2.53 search with GET /os-hypervisors?hypervisor_hostname_pattern=")
		return
	}
	pattern := r.PathValue("hypervisor_id")
	hs, err := a.Svc.HostsWithAllocations(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := []map[string]any{}
	for _, h := range hs {
		if strings.Contains(h.Name, pattern) {
			var servers []api.VM
			if withServers {
				servers = a.serversOn(r, h.Name)
			}
			out = append(out, a.hypervisorView(r, v, h, false, servers))
		}
	}
	if len(out) == 0 {
		writeStatus(w, r, http.StatusNotFound, fmt.Sprintf("No hypervisor matching '%s' could be found.", pattern))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"hypervisors": out})
}

// Services: each host is one nova-compute service.

func (a *API) serviceView(v Microversion, h api.Host) map[string]any {
	out := map[string]any{
		"id": hypervisorID(v, h.Name), "binary": "nova-compute", "host": h.Name, "zone": zone,
		"status": enabled(h), "state": state(h), "updated_at": stamp(h.LastHeartbeat), "disabled_reason": nilIfEmpty(h.DisabledReason),
	}
	if v.AtLeast(11) {
		out["forced_down"] = h.ForcedDown
	}
	return out
}

func (a *API) listServices(w http.ResponseWriter, r *http.Request, v Microversion) {
	hs, err := a.Svc.Hosts(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	out := []map[string]any{}
	for _, h := range hs {
		if (q.Get("host") != "" && q.Get("host") != h.Name) || (q.Get("binary") != "" && q.Get("binary") != "nova-compute") {
			continue
		}
		out = append(out, a.serviceView(v, h))
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": out})
}

// updateService is PUT /os-services/{enable|disable|disable-log-reason|
// force-down} with {"host", "binary"} before 2.53, and PUT
// /os-services/{id} with {"status", "disabled_reason", "forced_down"}
// from it. Disabling takes the host out of scheduling (godwit host
// disable); forced_down records the operator's word that the host is
// down, which evacuate then takes as proof.
func (a *API) updateService(w http.ResponseWriter, r *http.Request, v Microversion) {
	var body struct {
		Host           string  `json:"host"`
		Binary         string  `json:"binary"`
		Status         string  `json:"status"`
		DisabledReason *string `json:"disabled_reason"`
		ForcedDown     *bool   `json:"forced_down"`
	}
	if err := decode(r, &body); err != nil {
		WriteError(w, r, err)
		return
	}
	action := r.PathValue("action")
	var u service.HostServiceUpdate
	t, f := true, false
	host := body.Host
	switch action {
	case "enable":
		u.Enabled = &t
	case "disable":
		u.Enabled = &f
	case "disable-log-reason":
		u.Enabled, u.DisabledReason = &f, body.DisabledReason
	case "force-down":
		if !v.AtLeast(11) {
			writeStatus(w, r, http.StatusNotFound, "force-down is served from microversion 2.11")
			return
		}
		u.ForcedDown = body.ForcedDown
	default: // an ID, from 2.53
		if !v.AtLeast(53) {
			writeStatus(w, r, http.StatusNotFound, fmt.Sprintf("os-services/%s: the actions are enable, disable, disable-log-reason and force-down (an ID from 2.53)", action))
			return
		}
		h, err := a.findHost(r, action)
		if err != nil {
			WriteError(w, r, errs.NotFound("Service %s could not be found.", action))
			return
		}
		host = h.Name
		switch body.Status {
		case "enabled":
			u.Enabled = &t
		case "disabled":
			u.Enabled, u.DisabledReason = &f, body.DisabledReason
		case "":
		default:
			WriteError(w, r, errs.Invalid("status is enabled or disabled, not %q", body.Status))
			return
		}
		u.ForcedDown = body.ForcedDown
	}
	if body.Binary != "" && body.Binary != "nova-compute" {
		WriteError(w, r, errs.Invalid("godwit's hosts are nova-compute services; %s is not served", body.Binary))
		return
	}
	h, err := a.Svc.UpdateHostService(r.Context(), host, u)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if v.AtLeast(53) {
		writeJSON(w, http.StatusOK, map[string]any{"service": a.serviceView(v, h)})
		return
	}
	out := map[string]any{"host": h.Name, "binary": "nova-compute", "status": enabled(h)}
	if action == "disable-log-reason" {
		out["disabled_reason"] = h.DisabledReason
	}
	if action == "force-down" {
		out = map[string]any{"host": h.Name, "binary": "nova-compute", "forced_down": h.ForcedDown}
	}
	writeJSON(w, http.StatusOK, map[string]any{"service": out})
}

// aggregates: godwit has no host aggregates (openstack hypervisor show
// asks).
func (a *API) aggregates(w http.ResponseWriter, r *http.Request, v Microversion) {
	writeJSON(w, http.StatusOK, map[string]any{"aggregates": []any{}})
}
