package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Every client gets the explicit transport limits; only the options the
// caller sets vary; equal settings share one transport (one pool).
func TestNewHTTPClientSettings(t *testing.T) {
	plain := NewHTTPClient(HTTPOptions{})
	timed := NewHTTPClient(HTTPOptions{Timeout: 3 * time.Second})
	stream := NewHTTPClient(HTTPOptions{ResponseHeaderTimeout: 7 * time.Second})

	if plain.Timeout != 0 || stream.Timeout != 0 || timed.Timeout != 3*time.Second {
		t.Errorf("timeouts: plain %v, timed %v, stream %v; want 0, 3s, 0", plain.Timeout, timed.Timeout, stream.Timeout)
	}
	pt, ok := plain.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport is %T, want *http.Transport", plain.Transport)
	}
	if pt.TLSHandshakeTimeout != tlsHandshakeTimeout || pt.IdleConnTimeout != idleConnTimeout ||
		pt.DialContext == nil || pt.ResponseHeaderTimeout != 0 {
		t.Errorf("plain transport: tls %v, idle %v, dial set %v, header %v", pt.TLSHandshakeTimeout, pt.IdleConnTimeout, pt.DialContext != nil, pt.ResponseHeaderTimeout)
	}
	if timed.Transport != plain.Transport {
		t.Error("clients with the same transport settings do not share a transport")
	}
	st := stream.Transport.(*http.Transport)
	if st == pt || st.ResponseHeaderTimeout != 7*time.Second {
		t.Errorf("stream transport: shared with plain %v, header timeout %v; want its own with 7s", st == pt, st.ResponseHeaderTimeout)
	}
	if NewClient("http://x").HTTP.Transport != plain.Transport {
		t.Error("NewClient does not use NewHTTPClient's transport")
	}
}

// The response header timeout cuts a server that stays silent, and not a
// stream that has answered and then goes slowly.
func TestNewHTTPClientHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			time.Sleep(300 * time.Millisecond)
			_, _ = io.WriteString(w, "late")
			return
		}
		select { // silent until the test ends
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	c := NewHTTPClient(HTTPOptions{ResponseHeaderTimeout: 100 * time.Millisecond})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/silent", nil)
	start := time.Now()
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a silent server answered")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the silent server was cut after %v, not by the header timeout", d)
	}

	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/stream", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "late" {
		t.Errorf("stream body %q, %v; want %q", b, err, "late")
	}
}
