package controller

import (
	"net/http"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/httpx"
	"github.com/godwit/godwit/internal/version"
)

// Handler returns the controller's HTTP API.
//
// Every response is JSON; every failure is an *api.Error whose status
// comes from the sentinel it wraps (httpx.Error). Authorization will be
// added in one place here, as a wrapper around the mux, once users exist.
func (c *Controller) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /v1/version", func(w http.ResponseWriter, r *http.Request) {
		httpx.JSON(w, http.StatusOK, api.Version{Version: version.Version, Store: c.store.Kind()})
	})

	m.HandleFunc("GET /v1/hosts", c.listHosts)
	m.HandleFunc("GET /v1/hosts/{name}", c.getHost)
	m.HandleFunc("POST /v1/internal/heartbeat", c.heartbeat)

	m.HandleFunc("GET /v1/vms", c.listVMs)
	m.HandleFunc("POST /v1/vms", c.createVM)
	m.HandleFunc("GET /v1/vms/{name}", c.getVM)
	m.HandleFunc("DELETE /v1/vms/{name}", c.deleteVM)
	m.HandleFunc("POST /v1/vms/{name}/{action}", c.vmAction)
	m.HandleFunc("GET /v1/vms/{name}/console", c.console)

	m.HandleFunc("GET /v1/images", c.listImages)
	m.HandleFunc("POST /v1/images", c.importImage)
	m.HandleFunc("GET /v1/images/{name}", c.getImage)
	m.HandleFunc("DELETE /v1/images/{name}", c.deleteImage)
	m.HandleFunc("GET /v1/images/{name}/files/{role}", c.imageFile)
	c.migrationRoutes(m)
	c.intentRoutes(m)
	return httpx.Mux(m)
}

func (c *Controller) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpx.Error(w, r, c.log, err)
}
