package nova

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/service"
)

// Nova's os-quota-sets on godwit's project quotas (godwit project
// quota): instances, cores and ram are the project's VMs, vCPUs and
// memory limits; Nova's -1 (unlimited) is godwit's 0 (no limit). The
// other keys Nova shows have no godwit quota: they are shown at Nova's
// defaults, read-only. godwit's disk quota (--disk-mib) has no Nova key
// up to 2.60 (Nova's quotas have no disk), so it is shown nowhere in
// Nova's view and every call here keeps it as it is. Quotas are per
// project: a user_id on a read shows the project's, on a write is
// refused.

func (a *API) quotaRoutes() []Route {
	q := ComputePrefix + "/v2.1/os-quota-sets/{tenant_id}"
	return []Route{
		{"GET " + q, versioned(a.showQuotas(false))},
		{"GET " + q + "/detail", versioned(a.showQuotas(true))},
		{"GET " + q + "/defaults", versioned(a.quotaDefaults)},
		{"PUT " + q, versioned(a.updateQuotas)},
		{"DELETE " + q, versioned(a.deleteQuotas)},
	}
}

// quotaKey is one key of Nova's quota_set.
type quotaKey struct {
	name string
	// For a key on a godwit quota: its api.Quota field, the field's
	// JSON name (service.QuotaExceeded's Resource) and its option of
	// godwit project quota.
	field            func(*api.Quota) *int
	resource, option string
	// For a key without one: the value shown (Nova's default), which is
	// all it may be set to.
	fixed int
	// until is the last microversion that shows the key (0: all).
	until int
}

// quotaKeys are Nova's quota_set keys up to 2.60, in Nova's order.
var quotaKeys = []quotaKey{
	{name: "instances", field: func(q *api.Quota) *int { return &q.VMs }, resource: "vms", option: "--vms"},
	{name: "cores", field: func(q *api.Quota) *int { return &q.VCPUs }, resource: "vcpus", option: "--vcpus"},
	{name: "ram", field: func(q *api.Quota) *int { return &q.MemoryMiB }, resource: "memory_mib", option: "--memory-mib"}, // MiB, as godwit's
	// godwit refuses a server's metadata beyond this, as Nova's default
	// quota does.
	{name: "metadata_items", fixed: api.MaxMetadataItems},
	// godwit has no key pairs or server groups (a create naming either
	// is refused): Nova's defaults.
	{name: "key_pairs", fixed: 100},
	{name: "server_groups", fixed: 10},
	{name: "server_group_members", fixed: 10},
	// Personality files are refused; 2.57 dropped them from Nova's API.
	{name: "injected_files", fixed: 5, until: 56},
	{name: "injected_file_content_bytes", fixed: 10240, until: 56},
	{name: "injected_file_path_bytes", fixed: 255, until: 56},
	// The network proxies' (2.36 dropped them): unlimited, as Nova shows
	// them since nova-network went.
	{name: "fixed_ips", fixed: -1, until: 35},
	{name: "floating_ips", fixed: -1, until: 35},
	{name: "security_groups", fixed: -1, until: 35},
	{name: "security_group_rules", fixed: -1, until: 35},
}

// fixedQuota is a read-only key's value, for the limits (compute.go).
func fixedQuota(name string) int {
	for _, k := range quotaKeys {
		if k.name == name {
			return k.fixed
		}
	}
	panic("nova: no quota key " + name)
}

func (k quotaKey) shownAt(v Microversion) bool { return k.until == 0 || v.Minor <= k.until }

// limit is the key's limit in Nova's terms for godwit's quota q.
func (k quotaKey) limit(q api.Quota) int {
	if k.field == nil {
		return k.fixed
	}
	if n := *k.field(&q); n > 0 {
		return n
	}
	return -1 // godwit's 0: no limit
}

// inUse is what the project's VMs hold of the key's resource.
func (k quotaKey) inUse(u api.Quota) int {
	if k.field == nil {
		return 0
	}
	return *k.field(&u)
}

// quotaSet is p's quota_set at v; with detail each key is {in_use,
// limit, reserved}; id is left out where Nova leaves it out (the reply
// to an update).
func quotaSet(v Microversion, p api.Project, detail, id bool) map[string]any {
	qs := map[string]any{}
	if id {
		qs["id"] = p.Name
	}
	for _, k := range quotaKeys {
		if !k.shownAt(v) {
			continue
		}
		if detail {
			qs[k.name] = map[string]int{"in_use": k.inUse(p.Usage), "limit": k.limit(p.Quota), "reserved": 0}
		} else {
			qs[k.name] = k.limit(p.Quota)
		}
	}
	return qs
}

// perProject refuses a user_id: godwit's quotas are a project's, and
// no token has one of its own to set or delete.
func perProject(r *http.Request) error {
	if _, ok := r.URL.Query()["user_id"]; ok {
		return errs.Invalid("user_id is not supported: godwit's quotas are per project, and every user (token) of project %s is bound by the project's; leave user_id out", r.PathValue("tenant_id"))
	}
	return nil
}

// showQuotas is GET os-quota-sets/{tenant_id} and its /detail. A member
// reads its own project's only (the policy lets any member in; this
// handler narrows it), an admin any project's. A user_id is accepted
// here and answered with the project's quota, which is the one that
// binds every user (token) of it: Tempest's test_get_quotas reads so.
func (a *API) showQuotas(detail bool) func(w http.ResponseWriter, r *http.Request, v Microversion) {
	return func(w http.ResponseWriter, r *http.Request, v Microversion) {
		id := r.PathValue("tenant_id")
		if !isAdmin(r) && id != project(r) {
			action := "show"
			if detail {
				action = "detail"
			}
			WriteError(w, r, errs.Forbidden("Policy doesn't allow os_compute_api:os-quota-sets:%s to be performed: a member reads only its own project's quota, %s's, not %s's", action, project(r), id))
			return
		}
		p, err := a.Svc.Project(r.Context(), id)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"quota_set": quotaSet(v, p, detail, true)})
	}
}

// quotaDefaults is GET os-quota-sets/{tenant_id}/defaults: what a
// project has before an admin sets its quota — no limits, in godwit —
// and the read-only keys. Any member may read them, as in Nova: they
// are every project's.
func (a *API) quotaDefaults(w http.ResponseWriter, r *http.Request, v Microversion) {
	id := r.PathValue("tenant_id")
	if err := api.ValidateName("project", id); err != nil {
		WriteError(w, r, errs.Invalid("%v", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"quota_set": quotaSet(v, api.Project{Name: id}, false, true)})
}

// updateQuotas is PUT os-quota-sets/{tenant_id} (admins): sets the keys
// given on the project's godwit quota, the others as they were (disk
// too). As in Nova, a limit below what the project's VMs already hold
// is refused unless force is true, a key set to null is left alone, and
// every key is checked before any is set. Keys without a godwit quota
// may only be "set" to the value shown.
func (a *API) updateQuotas(w http.ResponseWriter, r *http.Request, v Microversion) {
	id := r.PathValue("tenant_id")
	if err := perProject(r); err != nil {
		WriteError(w, r, err)
		return
	}
	var body struct {
		QuotaSet map[string]json.RawMessage `json:"quota_set"`
	}
	if err := decode(r, &body); err != nil {
		WriteError(w, r, err)
		return
	}
	if body.QuotaSet == nil {
		WriteError(w, r, errs.Invalid(`the body is {"quota_set": {"cores": N, "ram": N, "instances": N, ...}}`))
		return
	}
	force := false
	if raw, ok := body.QuotaSet["force"]; ok {
		var err error
		if force, err = boolish(raw); err != nil {
			WriteError(w, r, errs.Invalid("force: %v", err))
			return
		}
	}
	p, err := a.Svc.Project(r.Context(), id)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	q := p.Quota
	names := make([]string, 0, len(body.QuotaSet))
	for name := range body.QuotaSet {
		if name != "force" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		i := slices.IndexFunc(quotaKeys, func(k quotaKey) bool { return k.name == name && k.shownAt(v) })
		if i < 0 {
			WriteError(w, r, errs.Invalid("Invalid input for field/attribute quota_set: %q is not a quota at microversion %s; its keys are %s", name, v, strings.Join(quotaNames(v), ", ")))
			return
		}
		k := quotaKeys[i]
		n, set, err := quotaValue(body.QuotaSet[name])
		if err != nil {
			WriteError(w, r, errs.Invalid("Invalid input for field/attribute %s: %v", name, err))
			return
		}
		if !set {
			continue // null or "": Nova leaves the key as it is
		}
		if err := setQuota(k, &q, p, n, force); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	if q != p.Quota {
		// Read, then written whole: godwit's quota is one record; a
		// concurrent change of another limit by another admin is
		// overwritten, as with godwit project quota.
		if p, err = a.Svc.SetQuota(r.Context(), id, q); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"quota_set": quotaSet(v, p, false, false)})
}

// setQuota puts Nova's limit n for key k into godwit's quota q, or says
// why it cannot.
func setQuota(k quotaKey, q *api.Quota, p api.Project, n int, force bool) error {
	switch {
	case k.field == nil && n == k.fixed:
		return nil // what it is: accepted, as Tempest's clean-ups set every key back
	case k.field == nil:
		return errs.Invalid("godwit has no %s quota: it is shown at Nova's default, %d, and cannot be set; godwit's quotas are instances, cores and ram (godwit project quota %s --vms N --vcpus N --memory-mib N), and disk (--disk-mib N), which Nova's API does not show",
			k.name, k.fixed, p.Name)
	case n < -1:
		return errs.Invalid("Quota limit %d for %s must be -1 or greater.", n, k.name)
	case n == 0:
		// godwit's 0 is no limit: a Nova 0 (nothing allowed) set as
		// it would be the opposite of what was asked.
		return errs.Invalid("Quota limit 0 for %s cannot be set: a godwit quota of 0 is no limit, and godwit has no limit that allows none; give 1 or more, or -1 for no limit (to stop a project using anything, revoke its tokens: godwit token revoke ID)", k.name)
	case n == -1:
		*k.field(q) = 0
		return nil
	case !force && n < k.inUse(p.Usage):
		return errs.Invalid("Quota limit %d for %s must be greater than or equal to already used and reserved %d. (force: true sets it all the same: godwit then refuses only what would grow the project further)", n, k.name, k.inUse(p.Usage))
	}
	*k.field(q) = n
	return nil
}

// quotaValue reads a limit as Nova does: an integer, or a string of one;
// null and "" are no value (set is false).
func quotaValue(raw json.RawMessage) (n int, set bool, err error) {
	s := strings.TrimSpace(string(raw))
	if s == "null" || s == `""` {
		return 0, false, nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false, err
		}
		s = strings.TrimSpace(s)
	}
	i, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("%s is not an integer from -1 to %d", raw, int32(^uint32(0)>>1))
	}
	return int(i), true, nil
}

// boolish reads force as Nova does (oslo's bool_from_string).
func boolish(raw json.RawMessage) (bool, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, err
	}
	switch b := v.(type) {
	case bool:
		return b, nil
	case nil:
		return false, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(b)) {
		case "1", "t", "true", "on", "y", "yes":
			return true, nil
		case "", "0", "f", "false", "off", "n", "no":
			return false, nil
		}
	}
	return false, fmt.Errorf("%s is not a boolean", raw)
}

// quotaNames are the keys shown at v.
func quotaNames(v Microversion) []string {
	var out []string
	for _, k := range quotaKeys {
		if k.shownAt(v) {
			out = append(out, k.name)
		}
	}
	return out
}

// deleteQuotas is DELETE os-quota-sets/{tenant_id} (admins): the
// project's instances, cores and ram back to the defaults, no limits.
// Its disk quota, which Nova's view does not show, is kept.
func (a *API) deleteQuotas(w http.ResponseWriter, r *http.Request, v Microversion) {
	id := r.PathValue("tenant_id")
	if err := perProject(r); err != nil {
		WriteError(w, r, err)
		return
	}
	p, err := a.Svc.Project(r.Context(), id)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if q := (api.Quota{DiskMiB: p.Quota.DiskMiB}); q != p.Quota { // else nothing to do, and no record made
		if _, err := a.Svc.SetQuota(r.Context(), id, q); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

// quotaExceeded words godwit's quota refusal as Nova does ("Quota
// exceeded for cores: Requested 2, but already used 3 of 4 cores"),
// with what to do. WriteError uses it on the compute API.
func quotaExceeded(q *service.QuotaExceeded) string {
	for _, k := range quotaKeys {
		if k.field == nil || q.Resource != k.resource {
			continue
		}
		what := "delete or resize down some servers"
		if k.name == "instances" {
			what = "delete some servers"
		}
		return fmt.Sprintf("Quota exceeded for %s: Requested %d, but already used %d of %d %s; %s, or ask an admin to raise it (openstack quota set --%s N %s, or godwit project quota %s %s N)",
			k.name, q.Requested, q.Used, q.Limit, k.name, what, k.name, q.Project, q.Project, k.option)
	}
	// The disk: godwit's own limit, with no Nova key to raise.
	return fmt.Sprintf("Quota exceeded for disk: Requested %d MiB, but already used %d of %d MiB (project %s's godwit disk quota, which Nova's API does not show); delete some servers, or ask an admin to raise it (godwit project quota %s --disk-mib N)",
		q.Requested, q.Used, q.Limit, q.Project, q.Project)
}

// asQuotaExceeded finds godwit's quota refusal in err.
func asQuotaExceeded(err error) (*service.QuotaExceeded, bool) {
	var q *service.QuotaExceeded
	return q, errors.As(err, &q)
}
