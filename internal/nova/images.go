package nova

import (
	"net/http"

	"github.com/godwit/godwit/api"
)

// Images: the read-only subset of Glance v2 that `openstack server create
// --image NAME` and `openstack image list/show` need. An image's ID is
// its godwit name, which is unique and stable; images are imported with
// godwit image import.

func (a *API) imageRoutes() []Route {
	return []Route{
		{"GET " + ImagePrefix + "/{$}", a.imageVersions},
		{"GET " + ImagePrefix, a.imageVersions},
		{"GET " + ImagePrefix + "/v2/images", a.listImages},
		{"GET " + ImagePrefix + "/v2/images/{image_id}", a.showImage},
	}
}

func (a *API) imageVersions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusMultipleChoices, map[string]any{"versions": []any{map[string]any{
		"id": "v2.9", "status": "CURRENT",
		"links": []map[string]string{{"rel": "self", "href": baseURL(r) + ImagePrefix + "/v2/"}},
	}}})
}

func imageView(im api.Image) map[string]any {
	var size int64
	var checksum any
	format := "aki" // a kernel (and initrd), booted directly
	for _, f := range im.Files {
		size += f.Size
		if f.Role == api.RoleDisk {
			format, checksum = "qcow2", f.SHA256
		}
	}
	return map[string]any{
		"id": im.Name, "name": im.Name, "status": "active", "visibility": "public", "protected": false, "os_hidden": false,
		"size": size, "virtual_size": nil, "disk_format": format, "container_format": "bare",
		"checksum": nil, "os_hash_algo": "sha256", "os_hash_value": checksum,
		"min_disk": 0, "min_ram": 0, "owner": nil, "tags": []string{},
		"created_at": stamp(im.CreatedAt), "updated_at": stamp(im.CreatedAt),
		"self": "/v2/images/" + im.Name, "file": "/v2/images/" + im.Name + "/file", "schema": "/v2/schemas/image",
		"godwit_kind": im.Kind,
	}
}

// listImages is GET /v2/images, filtered by name or id as clients ask.
func (a *API) listImages(w http.ResponseWriter, r *http.Request) {
	ims, err := a.Svc.Images(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	out := []map[string]any{}
	for _, im := range ims {
		if n := q.Get("name"); n != "" && n != im.Name {
			continue
		}
		if id := q.Get("id"); id != "" && id != im.Name {
			continue
		}
		out = append(out, imageView(im))
	}
	writeJSON(w, http.StatusOK, map[string]any{"images": out, "schema": "/v2/schemas/images", "first": "/v2/images"})
}

func (a *API) showImage(w http.ResponseWriter, r *http.Request) {
	im, err := a.Svc.Image(r.Context(), r.PathValue("image_id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, imageView(im))
}
