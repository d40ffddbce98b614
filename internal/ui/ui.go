// Package ui is the dashboard the controller serves at /ui/: plain HTML,
// CSS and JavaScript modules embedded in the binary, with no build step
// and no dependency. The page is a client of the public REST API like the
// CLI: it logs in with an API token, reads the cluster, follows the
// event stream (GET /v1/events) and acts through the same routes, so the
// controller's policy applies to it unchanged. The files themselves hold
// no data and are served to anyone.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is where the dashboard is served.
const Prefix = "/ui/"

// csp lets the page load only its own files and talk only to its own
// origin: no inline script, no other site.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

type file struct {
	data []byte
	etag string
}

var files = load()

func load() map[string]file {
	m := map[string]file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m[strings.TrimPrefix(p, "static/")] = file{data: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("ui: the embedded files cannot be read: " + err.Error())
	}
	return m
}

// Files lists the dashboard's files, for tests.
func Files() []string {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	return names
}

// Handler serves GET /ui/{file...}: the page for /ui/, else the named
// file; 404 for any other. Files are revalidated by ETag, so an upgraded
// controller's page is fetched at once.
func Handler(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "" {
		name = "index.html"
	}
	f, ok := files[path.Clean(name)]
	if !ok {
		http.Error(w, "no such file of the dashboard: "+name, http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
}

// Redirect sends / to the dashboard.
func Redirect(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, Prefix, http.StatusFound)
}
