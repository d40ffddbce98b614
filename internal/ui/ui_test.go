package ui

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/{file...}", Handler)
	mux.HandleFunc("GET /{$}", Redirect)
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w
}

// The page and every file it names are served with their types, the
// content security policy and an ETag; anything else is 404.
func TestFiles(t *testing.T) {
	w := serve(t, "/ui/", nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `<script type="module" src="app.js">`) {
		t.Fatalf("/ui/: %d %q", w.Code, w.Body.String())
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	// Every file index.html and the modules name is there.
	names := map[string]bool{}
	ref := regexp.MustCompile(`(?:src|href)="([a-z.]+)"|from "\./([a-z.]+)"`)
	for _, f := range []string{"index.html", "app.js", "dom.js"} {
		for _, m := range ref.FindAllStringSubmatch(string(files[f].data), -1) {
			names[m[1]+m[2]] = true
		}
	}
	if len(names) < 5 {
		t.Fatalf("found only %v named by the page", names)
	}
	types := map[string]string{".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
	for n := range names {
		w := serve(t, "/ui/"+n, nil)
		if w.Code != http.StatusOK {
			t.Errorf("%s: HTTP %d", n, w.Code)
			continue
		}
		for ext, typ := range types {
			if strings.HasSuffix(n, ext) && !strings.HasPrefix(w.Header().Get("Content-Type"), typ) {
				t.Errorf("%s: Content-Type %q, want %s (browsers refuse modules of another type)", n, w.Header().Get("Content-Type"), typ)
			}
		}
		if again := serve(t, "/ui/"+n, map[string]string{"If-None-Match": w.Header().Get("ETag")}); again.Code != http.StatusNotModified {
			t.Errorf("%s with its ETag: HTTP %d, want 304", n, again.Code)
		}
	}
	for _, p := range []string{"/ui/nope.js", "/ui/../ui.go", "/ui/static/app.js"} {
		if w := serve(t, p, nil); w.Code != http.StatusNotFound && w.Code != http.StatusTemporaryRedirect {
			t.Errorf("%s: HTTP %d, want 404 (or the mux's redirect to the cleaned path)", p, w.Code)
		}
	}
	if w := serve(t, "/", nil); w.Code != http.StatusFound || w.Header().Get("Location") != Prefix {
		t.Errorf("/: %d to %q", w.Code, w.Header().Get("Location"))
	}
}
