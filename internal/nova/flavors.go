package nova

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// Flavors are godwit's flavors (godwit flavor create). Nova counts disk
// in GiB and RAM in MiB; godwit both in MiB, so a flavor's disk shows
// rounded up to whole GiB.

func (a *API) flavorRoutes() []Route {
	v := ComputePrefix + "/v2.1"
	return []Route{
		{"GET " + v + "/flavors", versioned(a.listFlavors(false))},
		{"GET " + v + "/flavors/detail", versioned(a.listFlavors(true))},
		{"GET " + v + "/flavors/{flavor_id}", versioned(a.showFlavor)},
		{"GET " + v + "/flavors/{flavor_id}/os-extra_specs", versioned(a.flavorExtraSpecs)},
		{"POST " + v + "/flavors", versioned(a.createFlavor)},
		{"DELETE " + v + "/flavors/{flavor_id}", versioned(a.deleteFlavor)},
	}
}

func gib(mib int) int { return (mib + 1023) / 1024 }

func (a *API) flavorView(r *http.Request, v Microversion, f api.NamedFlavor) map[string]any {
	out := map[string]any{
		"id": f.ID, "name": f.Name, "vcpus": f.VCPUs, "ram": f.MemoryMiB, "disk": gib(f.DiskMiB),
		"OS-FLV-EXT-DATA:ephemeral": 0, "OS-FLV-DISABLED:disabled": false, "os-flavor-access:is_public": true,
		"swap": "", "rxtx_factor": 1.0, "links": link(r, "/flavors/"+f.ID),
	}
	if v.AtLeast(55) {
		out["description"] = nilIfEmpty(f.Description)
	}
	return out
}

// listFlavors is GET /flavors[/detail], in Nova's order (by ID, or by
// sort_key and sort_dir) with its filters: minRam, minDisk (GiB),
// is_public (godwit's flavors are all public), and its paging: marker
// (a flavor ID) and limit.
func (a *API) listFlavors(detail bool) func(w http.ResponseWriter, r *http.Request, v Microversion) {
	return func(w http.ResponseWriter, r *http.Request, v Microversion) {
		fs, err := a.Svc.Flavors(r.Context())
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if fs, err = pageFlavors(fs, r.URL.Query()); err != nil {
			WriteError(w, r, err)
			return
		}
		out := []map[string]any{}
		for _, f := range fs {
			view := a.flavorView(r, v, f)
			if !detail {
				view = map[string]any{"id": f.ID, "name": f.Name, "links": view["links"]}
				if v.AtLeast(55) {
					view["description"] = nilIfEmpty(f.Description)
				}
			}
			out = append(out, view)
		}
		writeJSON(w, http.StatusOK, map[string]any{"flavors": out})
	}
}

// flavorSortKeys are the sort_key values Nova takes, by what they sort.
var flavorSortKeys = map[string]func(a, b api.NamedFlavor) int{
	"flavorid":   func(a, b api.NamedFlavor) int { return strings.Compare(a.ID, b.ID) },
	"id":         func(a, b api.NamedFlavor) int { return strings.Compare(a.ID, b.ID) },
	"name":       func(a, b api.NamedFlavor) int { return strings.Compare(a.Name, b.Name) },
	"memory_mb":  func(a, b api.NamedFlavor) int { return a.MemoryMiB - b.MemoryMiB },
	"vcpus":      func(a, b api.NamedFlavor) int { return a.VCPUs - b.VCPUs },
	"root_gb":    func(a, b api.NamedFlavor) int { return a.DiskMiB - b.DiskMiB },
	"created_at": func(a, b api.NamedFlavor) int { return a.CreatedAt.Compare(b.CreatedAt) },
}

// pageFlavors filters, sorts and pages flavors as Nova's list does.
func pageFlavors(fs []api.NamedFlavor, q url.Values) ([]api.NamedFlavor, error) {
	minRAM, err := queryInt(q, "minRam")
	if err != nil {
		return nil, err
	}
	minDisk, err := queryInt(q, "minDisk")
	if err != nil {
		return nil, err
	}
	if p := strings.ToLower(q.Get("is_public")); p == "false" || p == "0" || p == "no" {
		return nil, nil // every godwit flavor is public
	}
	key := q.Get("sort_key")
	if key == "" {
		key = "flavorid"
	}
	cmp, ok := flavorSortKeys[key]
	if !ok {
		return nil, errs.Invalid("sort_key %q is not one Nova takes: flavorid, name, memory_mb, vcpus, root_gb, created_at", key)
	}
	dir := q.Get("sort_dir")
	switch dir {
	case "", "asc":
	case "desc":
		asc := cmp
		cmp = func(a, b api.NamedFlavor) int { return asc(b, a) }
	default:
		return nil, errs.Invalid("sort_dir %q is not asc or desc", dir)
	}
	out := make([]api.NamedFlavor, 0, len(fs))
	for _, f := range fs {
		if f.MemoryMiB >= minRAM && gib(f.DiskMiB) >= minDisk {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, cmp)
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(out, func(f api.NamedFlavor) bool { return f.ID == m })
		if i < 0 {
			return nil, errs.Invalid("marker [%s] not found", m)
		}
		out = out[i+1:]
	}
	limit, err := queryInt(q, "limit")
	if err != nil {
		return nil, err
	}
	if limit > 0 && limit < len(out) {
		out = out[:limit]
	}
	return out, nil
}

// queryInt reads a non-negative integer query parameter; 0 when absent.
func queryInt(q url.Values, name string) (int, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errs.Invalid("%s=%q is not a non-negative integer", name, s)
	}
	return n, nil
}

func (a *API) flavor(r *http.Request) (api.NamedFlavor, error) {
	f, err := a.Svc.Flavor(r.Context(), r.PathValue("flavor_id"))
	if errs.Code(err) == api.CodeNotFound {
		return f, errs.NotFound("Flavor %s could not be found.", r.PathValue("flavor_id"))
	}
	return f, err
}

func (a *API) showFlavor(w http.ResponseWriter, r *http.Request, v Microversion) {
	f, err := a.flavor(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flavor": a.flavorView(r, v, f)})
}

// flavorExtraSpecs: godwit's flavors have none.
func (a *API) flavorExtraSpecs(w http.ResponseWriter, r *http.Request, v Microversion) {
	if _, err := a.flavor(r); err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"extra_specs": map[string]string{}})
}

// createFlavor is POST /flavors. As Nova, it takes the ID as a string or
// a number and the sizes as numbers or numeric strings. A private flavor
// (os-flavor-access:is_public false) is refused: godwit has no
// per-project flavor access, and a flavor every project sees would
// break the promise.
func (a *API) createFlavor(w http.ResponseWriter, r *http.Request, v Microversion) {
	var body struct {
		Flavor struct {
			Name        string  `json:"name"`
			ID          any     `json:"id"`
			VCPUs       flexInt `json:"vcpus"`
			RAM         flexInt `json:"ram"`
			Disk        flexInt `json:"disk"`
			Description string  `json:"description"`
			Public      any     `json:"os-flavor-access:is_public"`
		} `json:"flavor"`
	}
	if err := decode(r, &body); err != nil {
		WriteError(w, r, err)
		return
	}
	fb := body.Flavor
	if p, ok := fb.Public.(bool); (ok && !p) || isFalse(fb.Public) {
		WriteError(w, r, errs.Invalid("private flavors are not supported: every godwit flavor is visible to every project (leave os-flavor-access:is_public out)"))
		return
	}
	req := api.CreateFlavorRequest{Name: fb.Name, VCPUs: int(fb.VCPUs), MemoryMiB: int(fb.RAM), DiskMiB: int(fb.Disk) * 1024, Description: fb.Description}
	switch id := fb.ID.(type) {
	case nil:
	case string:
		req.ID = id
	case float64:
		if id != float64(int64(id)) {
			WriteError(w, r, errs.Invalid("flavor id %v is not an integer or a string", id))
			return
		}
		req.ID = strconv.FormatInt(int64(id), 10)
	default:
		WriteError(w, r, errs.Invalid("flavor id must be a string or an integer"))
		return
	}
	f, err := a.Svc.CreateFlavor(r.Context(), req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flavor": a.flavorView(r, v, f)})
}

// isFalse reports whether v is a string Nova reads as false.
func isFalse(v any) bool {
	s, ok := v.(string)
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "false", "f", "0", "no", "n", "off":
		return ok
	}
	return false
}

// flexInt is an integer given as a JSON number or a numeric string, as
// Nova takes a flavor's sizes.
type flexInt int

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	i, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%s is not an integer", b)
	}
	*n = flexInt(i)
	return nil
}

func (a *API) deleteFlavor(w http.ResponseWriter, r *http.Request, v Microversion) {
	if err := a.Svc.DeleteFlavor(r.Context(), r.PathValue("flavor_id")); err != nil {
		if errs.Code(err) == api.CodeNotFound {
			err = errs.NotFound("Flavor %s could not be found.", r.PathValue("flavor_id"))
		}
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// resolveFlavor finds flavorRef (an ID, a name, or a flavor's link):
// the flavor's name when it is godwit's, else its sizes.
func (a *API) resolveFlavor(r *http.Request, ref string) (api.Flavor, string, error) {
	if ref == "" {
		return api.Flavor{}, "", errs.Invalid("flavorRef is required (openstack flavor list)")
	}
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	f, err := a.Svc.Flavor(r.Context(), ref)
	if err != nil {
		if errs.Code(err) == api.CodeNotFound {
			return api.Flavor{}, "", errs.Invalid("Flavor %s could not be found (openstack flavor list; an admin adds one with godwit flavor create)", ref)
		}
		return api.Flavor{}, "", err
	}
	return f.Flavor, f.Name, nil
}

// flavorRef is a server's flavor: a reference before 2.47, its sizes
// from 2.47. A VM made from sizes alone (godwit vm create --vcpus ...)
// has a synthetic ID that names them.
func (a *API) flavorRef(r *http.Request, v Microversion, vm api.VM) map[string]any {
	id, name := "", vm.FlavorName
	if name != "" {
		if f, err := a.Svc.Flavor(r.Context(), name); err == nil {
			id = f.ID
		}
	}
	if id == "" {
		id = fmt.Sprintf("godwit-%dcpu-%dmib-%dmib", vm.Flavor.VCPUs, vm.Flavor.MemoryMiB, vm.Flavor.DiskMiB)
		if name == "" {
			name = id
		}
	}
	if !v.AtLeast(47) {
		return map[string]any{"id": id, "links": []map[string]string{{"rel": "bookmark", "href": baseURL(r) + ComputePrefix + "/flavors/" + id}}}
	}
	return map[string]any{"vcpus": vm.Flavor.VCPUs, "ram": vm.Flavor.MemoryMiB, "disk": gib(vm.Flavor.DiskMiB),
		"ephemeral": 0, "swap": 0, "original_name": name, "extra_specs": map[string]string{}}
}
