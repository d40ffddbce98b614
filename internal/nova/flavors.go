package nova

import (
	"fmt"
	"net/http"
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

func (a *API) listFlavors(detail bool) func(w http.ResponseWriter, r *http.Request, v Microversion) {
	return func(w http.ResponseWriter, r *http.Request, v Microversion) {
		fs, err := a.Svc.Flavors(r.Context())
		if err != nil {
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

func (a *API) createFlavor(w http.ResponseWriter, r *http.Request, v Microversion) {
	var body struct {
		Flavor struct {
			Name        string  `json:"name"`
			ID          *string `json:"id"`
			VCPUs       int     `json:"vcpus"`
			RAM         int     `json:"ram"`
			Disk        int     `json:"disk"`
			Description string  `json:"description"`
		} `json:"flavor"`
	}
	if err := decode(r, &body); err != nil {
		WriteError(w, r, err)
		return
	}
	fb := body.Flavor
	req := api.CreateFlavorRequest{Name: fb.Name, VCPUs: fb.VCPUs, MemoryMiB: fb.RAM, DiskMiB: fb.Disk * 1024, Description: fb.Description}
	if fb.ID != nil {
		req.ID = *fb.ID
	}
	f, err := a.Svc.CreateFlavor(r.Context(), req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flavor": a.flavorView(r, v, f)})
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
