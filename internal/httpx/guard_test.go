package httpx

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// guarded is a server behind Guard whose handlers decode JSON (or, on the
// upload route, read the raw body) and answer 204.
func guarded(t *testing.T) *httptest.Server {
	t.Helper()
	m := http.NewServeMux()
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if api.IsWrite(r.Method) && (r.ContentLength != 0 || r.Header.Get("Content-Type") != "") {
			var v map[string]any
			if err := Decode(r, &v); err != nil {
				Error(w, r, nil, err)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /v1/upload", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(Guard(GuardConfig{Hosts: []string{"ctl.example"}, Uploads: []string{"POST /v1/upload"}})(m))
	t.Cleanup(srv.Close)
	return srv
}

// What a browser can send to a loopback API — a form, a text/plain fetch,
// a cross-site request, a rebound name — is refused; what godwit's
// clients send passes.
func TestGuard(t *testing.T) {
	srv := guarded(t)
	hostname, _ := os.Hostname()
	for _, tt := range []struct {
		name, method, path, ctype, body string
		header                          map[string]string
		status                          int
		code                            string
	}{
		{"json post", "POST", "/v1/x", "application/json", `{}`, nil, 204, ""},
		{"json with charset", "PUT", "/v1/x", "application/json; charset=utf-8", `{}`, nil, 204, ""},
		{"text/plain post", "POST", "/v1/x", "text/plain", `{}`, nil, 415, api.CodeMediaType},
		{"form post", "POST", "/v1/x", "application/x-www-form-urlencoded", `a=b`, nil, 415, api.CodeMediaType},
		{"multipart post", "POST", "/v1/x", "multipart/form-data; boundary=x", `--x--`, nil, 415, api.CodeMediaType},
		{"empty form post", "POST", "/v1/x", "application/x-www-form-urlencoded", ``, nil, 415, api.CodeMediaType},
		{"text/plain delete", "DELETE", "/v1/x", "text/plain", `x`, nil, 415, api.CodeMediaType},
		{"text/plain patch", "PATCH", "/v1/x", "text/plain", `x`, nil, 415, api.CodeMediaType},
		{"body without a type", "POST", "/v1/x", "", `{}`, nil, 415, api.CodeMediaType},
		{"no body, no type", "POST", "/v1/x", "", ``, nil, 204, ""},
		{"delete without a body", "DELETE", "/v1/x", "", ``, nil, 204, ""},
		{"get in any type", "GET", "/v1/x", "text/plain", ``, nil, 204, ""},
		{"upload route", "POST", "/v1/upload", "multipart/form-data; boundary=x", `--x--`, nil, 204, ""},
		{"upload path, other method", "PUT", "/v1/upload", "multipart/form-data; boundary=x", `--x--`, nil, 415, api.CodeMediaType},
		{"cross-site fetch", "POST", "/v1/x", "", ``, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, api.CodeForbidden},
		{"cross-site origin", "POST", "/v1/x", "application/json", `{}`, map[string]string{"Origin": "http://evil.example"}, 403, api.CodeForbidden},
		{"cross-site upload", "POST", "/v1/upload", "multipart/form-data; boundary=x", `--x--`, map[string]string{"Origin": "http://evil.example"}, 403, api.CodeForbidden},
		{"same-origin fetch", "POST", "/v1/x", "application/json", `{}`, map[string]string{"Sec-Fetch-Site": "same-origin"}, 204, ""},
		{"rebound name", "GET", "/v1/x", "", ``, map[string]string{"Host": "evil.example"}, 421, api.CodeMisdirected},
		{"rebound name with port", "POST", "/v1/x", "application/json", `{}`, map[string]string{"Host": "evil.example:7400"}, 421, api.CodeMisdirected},
		{"ipv4 host", "GET", "/v1/x", "", ``, map[string]string{"Host": "10.1.2.3:7400"}, 204, ""},
		{"ipv6 host", "GET", "/v1/x", "", ``, map[string]string{"Host": "[::1]:7400"}, 204, ""},
		{"localhost", "GET", "/v1/x", "", ``, map[string]string{"Host": "LocalHost:7400"}, 204, ""},
		{"configured name", "GET", "/v1/x", "", ``, map[string]string{"Host": "ctl.example."}, 204, ""},
		{"hostname", "GET", "/v1/x", "", ``, map[string]string{"Host": hostname}, 204, ""},
		{"body too large", "POST", "/v1/x", "application/json", `"` + strings.Repeat("a", MaxBody) + `"`, nil, 400, api.CodeInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			for k, v := range tt.header {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e api.Error
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode >= 400 {
				if err := json.Unmarshal(b, &e); err != nil || e.Message == "" {
					t.Errorf("error body is not an api.Error: %q", b)
				}
			}
			if resp.StatusCode != tt.status || e.Code != tt.code {
				t.Errorf("%s %s = %d %s %q; want %d %s", tt.method, tt.path, resp.StatusCode, e.Code, e.Message, tt.status, tt.code)
			}
		})
	}
}

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:7400": "127.0.0.1", "node5:7401": "node5", "[::1]:7401": "::1",
		"http://node5.example:7401": "node5.example", "http://[::1]:7401/": "::1", "": "", "node5": "",
	} {
		if got := HostOf(in); got != want {
			t.Errorf("HostOf(%q) = %q; want %q", in, got, want)
		}
	}
}
