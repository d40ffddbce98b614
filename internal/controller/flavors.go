package controller

import (
	"context"
	"net/http"

	"github.com/godwit/godwit/api"
)

// flavorRoutes are the routes of stored flavors: every project reads
// them, admins make and delete them. {name} is a flavor's name or ID.
func (c *Controller) flavorRoutes(m routes) {
	s := c.svc
	m.HandleFunc("GET /v1/flavors", get(c, func(ctx context.Context, r *http.Request) ([]api.NamedFlavor, error) { return s.Flavors(ctx) }))
	m.HandleFunc("GET /v1/flavors/{name}", get(c, func(ctx context.Context, r *http.Request) (api.NamedFlavor, error) {
		return s.Flavor(ctx, r.PathValue("name"))
	}))
	m.HandleFunc("POST /v1/flavors", call(c, required, http.StatusCreated, func(ctx context.Context, r *http.Request, req api.CreateFlavorRequest) (api.NamedFlavor, error) {
		return s.CreateFlavor(ctx, req)
	}))
	m.HandleFunc("DELETE /v1/flavors/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.DeleteFlavor(r.Context(), r.PathValue("name")); err != nil {
			c.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
