package httpx

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// tag is a middleware that records its name on the way in and out.
func tag(name string) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("X-Trace", name+">")
			next.ServeHTTP(w, r)
		})
	}
}

// Serve wraps the handler in its middlewares, the first outermost, and
// returns when stop closes.
func TestServeMiddlewares(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("X-Trace", "handler")
		_, _ = io.WriteString(w, "ok")
	})
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), ln, h, stop, tag("a"), tag("b")) }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ln.Addr().String()+"/", nil)
	resp, err := api.NewHTTPClient(api.HTTPOptions{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := strings.Join(resp.Header.Values("X-Trace"), ""), "a>b>handler"; got != want || string(b) != "ok" {
		t.Errorf("trace %q, body %q; want %q, %q", got, b, want, "ok")
	}

	close(stop)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after stop closed")
	}
}

// With no middlewares Chain returns the handler itself.
func TestChainEmpty(t *testing.T) {
	called := false
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })
	Chain(h).ServeHTTP(nil, nil)
	if !called {
		t.Error("Chain with no middlewares did not call the handler")
	}
}

// A connection that never sent a request (a client's spare one) does not
// hold the shutdown: net/http would wait until it is 5 s old; Serve
// closes it and returns.
func TestServeShutdownClosesFreshConns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), ln, http.NotFoundHandler(), stop) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond) // accepted
	close(stop)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read on a connection that sent nothing: %v; want EOF (closed by the shutdown)", err)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return after stop closed")
	}
}
