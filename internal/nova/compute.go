package nova

import (
	"net/http"
	"time"
)

// The compute API's root and version documents, and what clients ask
// besides servers: limits and availability zones.

func (a *API) computeRoutes() []Route {
	v := ComputePrefix + "/v2.1"
	return []Route{
		{"GET " + ComputePrefix + "/{$}", a.computeVersions},
		{"GET " + ComputePrefix, a.computeVersions},
		{"GET " + v + "/{$}", a.computeVersion},
		{"GET " + v, a.computeVersion},
		{"GET " + v + "/servers", versioned(a.listServers(false))},
		{"GET " + v + "/servers/detail", versioned(a.listServers(true))},
		{"POST " + v + "/servers", versioned(a.createServer)},
		{"GET " + v + "/servers/{server_id}", versioned(a.showServer)},
		{"PUT " + v + "/servers/{server_id}", versioned(a.updateServer)},
		{"DELETE " + v + "/servers/{server_id}", versioned(a.deleteServer)},
		{"POST " + v + "/servers/{server_id}/action", noteAction(versioned(a.serverAction))},
		{"GET " + v + "/servers/{server_id}/os-instance-actions", versioned(a.listActions)},
		{"GET " + v + "/servers/{server_id}/os-instance-actions/{request_id}", versioned(a.showAction)},
		{"GET " + v + "/limits", versioned(a.limits)},
		{"GET " + v + "/os-availability-zone", versioned(a.zones)},
		{"GET " + v + "/os-availability-zone/detail", versioned(a.zones)},
		{"GET " + v + "/os-keypairs", versioned(a.listKeypairs)},
		{"POST " + v + "/os-keypairs", versioned(a.createKeypair)},
		{"GET " + v + "/os-keypairs/{keypair_name}", versioned(a.showKeypair)},
		{"DELETE " + v + "/os-keypairs/{keypair_name}", versioned(a.deleteKeypair)},
	}
}

func (a *API) versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": MaxVersion.String(), "min_version": MinVersion.String(),
		"updated":     "2013-07-23T11:33:21Z",
		"links":       []map[string]string{{"rel": "self", "href": baseURL(r) + ComputePrefix + "/v2.1/"}},
		"media-types": []map[string]string{{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}},
	}
}

func (a *API) computeVersions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"versions": []any{a.versionDoc(r)}})
}

func (a *API) computeVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": a.versionDoc(r)})
}

// zone is the one availability zone: godwit has none, so every host is
// in Nova's default, "nova".
const zone = "nova"

func (a *API) zones(w http.ResponseWriter, r *http.Request, _ Microversion) {
	writeJSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": []any{
		map[string]any{"zoneName": zone, "zoneState": map[string]bool{"available": true}, "hosts": nil},
	}})
}

// limits are the project's quota and use (godwit project quota), in
// Nova's names; -1 is unlimited, as in Nova. They agree with
// os-quota-sets (quotas.go).
func (a *API) limits(w http.ResponseWriter, r *http.Request, v Microversion) {
	p, err := a.Svc.Project(r.Context(), project(r))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	lim := func(n int) int {
		if n == 0 {
			return -1
		}
		return n
	}
	abs := map[string]any{
		"maxTotalInstances": lim(p.Quota.VMs), "totalInstancesUsed": p.Usage.VMs,
		"maxTotalCores": lim(p.Quota.VCPUs), "totalCoresUsed": p.Usage.VCPUs,
		"maxTotalRAMSize": lim(p.Quota.MemoryMiB), "totalRAMUsed": p.Usage.MemoryMiB,
		// The rest as os-quota-sets shows them (quotas.go).
		"maxServerMeta": fixedQuota("metadata_items"), "maxTotalKeypairs": fixedQuota("key_pairs"),
		"maxServerGroups": fixedQuota("server_groups"), "maxServerGroupMembers": fixedQuota("server_group_members"),
		"totalServerGroupsUsed": 0,
	}
	if !v.AtLeast(57) { // 2.57 dropped personality files
		abs["maxPersonality"], abs["maxPersonalitySize"] = fixedQuota("injected_files"), fixedQuota("injected_file_content_bytes")
	}
	if !v.AtLeast(39) { // 2.39 dropped the image proxy's
		abs["maxImageMeta"] = 128
	}
	if !v.AtLeast(36) { // 2.36 dropped the network proxies'
		abs["maxSecurityGroups"], abs["maxSecurityGroupRules"], abs["maxTotalFloatingIps"] = fixedQuota("security_groups"), fixedQuota("security_group_rules"), fixedQuota("floating_ips")
		abs["totalFloatingIpsUsed"], abs["totalSecurityGroupsUsed"] = 0, 0
	}
	writeJSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": abs}})
}

// stamp is Nova's time format.
func stamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}
