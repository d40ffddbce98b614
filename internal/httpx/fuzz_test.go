package httpx

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/errs"
)

// FuzzOffset: an offset query parameter, however the query is written,
// is accepted only as a byte count of at least zero; refusals are
// errs.Invalid.
func FuzzOffset(f *testing.F) {
	for _, s := range []string{"", "offset=0", "offset=4096&follow=true", "offset=-1", "offset=%2B5", "offset=1e3", "offset=9223372036854775808", "offset=1;offset=2", "offset=%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		n, err := Offset(&http.Request{URL: &url.URL{Path: "/", RawQuery: query}})
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("%q refused with %v; want errs.ErrInvalid", query, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("%q accepted as offset %d", query, n)
		}
	})
}

// FuzzRoutes: a handler behind Routes sees only path values that passed
// their wildcard's rule, whatever the request's path (escapes, dots,
// slashes); a value that fails is answered 400 before it.
func FuzzRoutes(f *testing.F) {
	for _, s := range []string{"/v1/vms/abc", "/v1/vms/abc/start", "/v1/vms/..%2F..%2Fetc/start", "/v1/vms/%2e%2e", "/v1/vms/a%00b", "/v1/vms//start", "/v1/vms/ABC"} {
		f.Add(s)
	}
	rule := func(s string) error {
		if s == "" || strings.Trim(s, "0123456789abcdef") != "" {
			return errs.Invalid("id %q is not lowercase hex", s)
		}
		return nil
	}
	rt := NewRoutes(PathRules{"id": rule})
	handler := func(w http.ResponseWriter, r *http.Request) {
		if err := rule(r.PathValue("id")); err != nil {
			panic("the handler saw " + err.Error())
		}
		w.WriteHeader(http.StatusNoContent)
	}
	rt.HandleFunc("GET /v1/vms/{id}", handler)
	rt.HandleFunc("GET /v1/vms/{id}/{action}", handler)
	h := rt.Handler()
	f.Fuzz(func(t *testing.T, path string) {
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, &http.Request{Method: http.MethodGet, URL: u, RequestURI: path, Header: http.Header{}})
		switch w.Code {
		case http.StatusNoContent, http.StatusBadRequest, http.StatusNotFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect:
		default:
			t.Fatalf("GET %q = %d %s", path, w.Code, w.Body)
		}
	})
}
