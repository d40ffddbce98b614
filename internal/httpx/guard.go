package httpx

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"github.com/godwit/godwit/api"
)

// Guard's defences are for the APIs' browser-borne attackers. The
// controller and the agents listen on loopback by default, where nothing
// authenticates a request (yet), so any web page the operator opens can
// send them requests: a cross-site form or fetch (CSRF), or a page whose
// name is made to resolve to 127.0.0.1 (DNS rebinding), which the
// browser then treats as the page's own origin. Guard refuses:
//
//   - a Host header that is not an IP address, localhost, this machine's
//     hostname or a name in GuardConfig.Hosts: 421. A rebinding page's
//     requests carry the page's name.
//   - a write a browser marks cross-site (Sec-Fetch-Site, or an Origin
//     other than the Host: http.CrossOriginProtection): 403. It covers
//     the writes a browser can send without asking first — forms, and
//     a fetch with no body.
//   - a write (POST, PUT, PATCH, DELETE) whose Content-Type is not
//     application/json, or that has a body without one: 415. A browser
//     cannot send JSON to another site without a CORS preflight, which
//     these servers never grant. Routes that take uploads
//     (GuardConfig.Uploads) are exempt; their handlers check their type.
//
// Writes without a body and without a Content-Type pass (a plain
// "curl -X POST", or a client of an older version), since no browser
// sends those cross-site without an Origin. JSON bodies are bounded to
// MaxBody bytes as they are read.

// GuardConfig says what Guard lets in.
type GuardConfig struct {
	// Hosts are the names, besides IP addresses, localhost and this
	// machine's hostname, that the Host header may carry: the names
	// clients reach this server by (matched without case or port).
	Hosts []string
	// Uploads lists the routes, "METHOD /path" exactly, whose bodies are
	// not JSON (the controller's multipart image upload).
	Uploads []string
}

// Guard returns the middleware that applies cfg.
func Guard(cfg GuardConfig) Middleware {
	names := map[string]bool{"localhost": true}
	if h, err := os.Hostname(); err == nil && h != "" {
		names[strings.ToLower(h)] = true
	}
	for _, h := range cfg.Hosts {
		if h != "" {
			names[strings.TrimSuffix(strings.ToLower(h), ".")] = true
		}
	}
	uploads := map[string]bool{}
	for _, u := range cfg.Uploads {
		uploads[u] = true
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		JSON(w, http.StatusForbidden, &api.Error{Code: api.CodeForbidden,
			Message: fmt.Sprintf("cross-site %s %s refused: this API takes no requests from web pages of other sites; use godwit or another HTTP client", r.Method, r.URL.Path)})
	}))
	return func(next http.Handler) http.Handler {
		checked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !api.IsWrite(r.Method) || uploads[r.Method+" "+r.URL.Path] {
				next.ServeHTTP(w, r)
				return
			}
			if msg := jsonWrite(r); msg != "" {
				JSON(w, http.StatusUnsupportedMediaType, &api.Error{Code: api.CodeMediaType, Message: msg})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
			next.ServeHTTP(w, r)
		})
		protected := cop.Handler(checked)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !hostAllowed(r.Host, names) {
				JSON(w, http.StatusMisdirectedRequest, &api.Error{Code: api.CodeMisdirected,
					Message: fmt.Sprintf("host %q is not a name this server answers to: use its IP address, localhost or its hostname, or add the name with --allow-host", r.Host)})
				return
			}
			protected.ServeHTTP(w, r)
		})
	}
}

// HostOf returns the host part of an address (host:port) or a URL, ""
// when it has none: a server's own names for GuardConfig.Hosts.
func HostOf(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		return u.Hostname()
	}
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return ""
}

// jsonWrite returns why a write's content type is refused, or "".
func jsonWrite(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength == 0 {
			return "" // no body, no type: nothing a browser sends cross-site
		}
		return fmt.Sprintf("%s %s has a body but no Content-Type; send JSON with Content-Type: application/json", r.Method, r.URL.Path)
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return fmt.Sprintf("%s %s takes JSON, not %q; send it with Content-Type: application/json", r.Method, r.URL.Path, ct)
	}
	return ""
}

// hostAllowed reports whether a Host header names this server: an IP
// address, or one of names. An empty Host (HTTP/1.0) names nothing a
// page could have rebound.
func hostAllowed(host string, names map[string]bool) bool {
	if host == "" {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return names[strings.TrimSuffix(strings.ToLower(h), ".")]
}
