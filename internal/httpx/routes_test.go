package httpx

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/errs"
)

// checked is a body that validates itself.
type checked struct {
	N int `json:"n"`
}

func (c checked) Validate() error {
	if c.N < 0 {
		return errs.Invalid("n must not be negative, not %d", c.N)
	}
	if c.N > 10 {
		return errors.New("n is too big") // not an errs error: still 400
	}
	return nil
}

// Decode validates what it decoded, always as invalid input.
func TestDecodeValidates(t *testing.T) {
	for body, want := range map[string]string{`{"n":1}`: "", `{"n":-1}`: "must not be negative", `{"n":11}`: "too big"} {
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		var c checked
		err := Decode(req, &c)
		if want == "" && err != nil || want != "" && (!errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), want)) {
			t.Errorf("Decode(%s) = %v; want %q", body, err, want)
		}
	}
}

// A route's wildcard that fails its rule is answered 400 before the
// handler runs; other wildcards and routes are untouched.
func TestRoutes(t *testing.T) {
	rt := NewRoutes(PathRules{"id": func(s string) error {
		if s != "good" {
			return errs.Invalid("id %q is bad", s)
		}
		return nil
	}})
	var ran []string
	for _, p := range []string{"GET /v/{id}", "POST /v/{id}/{action}", "GET /w/{name}", "GET /all/{id...}"} {
		rt.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { ran = append(ran, r.URL.Path) })
	}
	for path, status := range map[string]int{
		"/v/good": 200, "/v/bad": 400, "/v/..%2Fx": 400, "/w/anything": 200, "/all/good": 200, "/all/a/b": 400,
	} {
		method := "GET"
		rec := httptest.NewRecorder()
		rt.Handler().ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		if rec.Code != status {
			t.Errorf("GET %s = %d; want %d", path, rec.Code, status)
		}
	}
	rec := httptest.NewRecorder()
	rt.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v/evil/start", nil))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `id \"evil\" is bad`) {
		t.Errorf("POST /v/evil/start = %d %s", rec.Code, rec.Body)
	}
	if len(ran) != 3 {
		t.Errorf("handlers ran for %v; want the 3 good paths only", ran)
	}
	if got := len(rt.Patterns()); got != 4 {
		t.Errorf("%d patterns; want 4", got)
	}
}
