// Package nova serves OpenStack's compute API — Nova's v2.1, with
// microversions up to MaxVersion — and the subsets of Identity (Keystone
// v3) and Image (Glance v2) that its clients need, beside godwit's own
// API on the controller's listener, so that the openstack and nova
// clients, and the scripts and playbooks built on them, drive godwit
// unchanged.
//
// It only translates. Every call runs through the same intent and
// service methods as godwit's own routes, behind the same policy table
// (internal/controller), and Keystone's tokens are godwit's API tokens;
// the one table of mapping.go says which Nova action becomes which
// godwit intent, service operation and driver strategy
// (docs/nova-compat.md prints it).
package nova

import (
	"net/http"
	"strings"

	"github.com/godwit/godwit/internal/intent"
	"github.com/godwit/godwit/internal/service"
)

// Where each API is served.
const (
	IdentityPrefix = "/identity"
	ComputePrefix  = "/compute"
	ImagePrefix    = "/image"
)

// API is the OpenStack APIs of one controller.
type API struct {
	Svc     *service.Service
	Intents *intent.Runner
}

// Route is one route; the controller registers each behind its policy
// table's rule.
type Route struct {
	Pattern string
	Handler http.HandlerFunc
}

// Owns reports whether a path is one of the OpenStack APIs', whose
// errors are written in their formats (WriteError).
func Owns(path string) bool {
	for _, p := range []string{IdentityPrefix, ComputePrefix, ImagePrefix} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// Routes lists every route of the three APIs.
func (a *API) Routes() []Route {
	var rs []Route
	rs = append(rs, a.identityRoutes()...)
	rs = append(rs, a.computeRoutes()...)
	rs = append(rs, a.quotaRoutes()...)
	rs = append(rs, a.flavorRoutes()...)
	rs = append(rs, a.migrationRoutes()...)
	rs = append(rs, a.hostRoutes()...)
	rs = append(rs, a.imageRoutes()...)
	return rs
}

// RequestIDHeaders puts a request's ID (req- and a UUID) in the headers
// OpenStack's services send it in and its clients log (and Tempest
// requires), when path is one of the OpenStack APIs'. The controller
// makes the ID for every request — the one its audit record keeps, and
// Nova's instance actions show — and calls this before the handler, so
// that refusals carry it too.
func RequestIDHeaders(h http.Header, path, id string) {
	if !Owns(path) {
		return
	}
	h.Set("X-Openstack-Request-Id", id)
	if strings.HasPrefix(path, ComputePrefix) {
		h.Set("X-Compute-Request-Id", id)
	}
}

// baseURL is the URL the client reached the controller by.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
