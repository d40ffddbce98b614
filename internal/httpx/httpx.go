// Package httpx holds the small HTTP helpers the controller and the agent
// share: the one server constructor (Serve, whose middleware wraps every
// handler), JSON replies, strict JSON request decoding, and the one place
// errors become HTTP statuses. Clients are built by api.NewHTTPClient.
package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// MaxBody bounds JSON request bodies.
const MaxBody = 1 << 20

// JSON writes v with the given status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Error writes err as an *api.Error with the status its sentinel maps to.
// Internal errors are logged; their text is still sent, since operators
// need it more than secrecy on a cluster-internal API.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := errs.Code(err)
	status := api.StatusFor(code)
	if status >= 500 && log != nil {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	JSON(w, status, &api.Error{Code: code, Message: err.Error()})
}

// Validator is a request body that checks its own fields (IDs, hashes,
// sizes); Decode calls Validate, so that a request is checked once, where
// it enters.
type Validator interface {
	Validate() error
}

// Decode reads a JSON body into v strictly: one object, no unknown fields,
// at most MaxBody bytes; then, when v is a Validator, validates it. Its
// errors say what is wrong and match errs.ErrInvalid.
func Decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errs.Invalid("request body must be JSON (Content-Type: application/json), not %q", ct)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return errs.Invalid("read request body: %v", err)
	}
	if len(body) > MaxBody {
		return errs.Invalid("request body is larger than %d bytes", MaxBody)
	}
	if err := DecodeBytes(body, v); err != nil {
		return err
	}
	if val, ok := v.(Validator); ok {
		if err := val.Validate(); err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				err = errs.Invalid("%v", err)
			}
			return err
		}
	}
	return nil
}

// DecodeBytes is Decode's parser, separate so it can be fuzzed.
func DecodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errs.Invalid("request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return errs.Invalid("malformed JSON at byte %d: %v", se.Offset, err)
		case errors.As(err, &te):
			return errs.Invalid("field %q must be a %s, not %s", te.Field, te.Type, te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return errs.Invalid("%s; see the API reference for the accepted fields", strings.TrimPrefix(err.Error(), "json: "))
		}
		return errs.Invalid("malformed JSON: %v", err)
	}
	if dec.More() {
		return errs.Invalid("request body has data after the JSON object")
	}
	return nil
}

// Mux wraps a ServeMux so that unknown paths and wrong methods answer with
// a JSON *api.Error like every other failure, not the mux's plain text.
func Mux(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // it sets the path values; h alone would not
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		switch rec.Code {
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.Header().Get("Allow"))
			JSON(w, rec.Code, &api.Error{Code: api.CodeMethod,
				Message: fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, rec.Header().Get("Allow"))})
		case http.StatusNotFound:
			JSON(w, rec.Code, &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path)})
		default:
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		}
	})
}

// Offset reads the "offset" query parameter: a non-negative byte count,
// zero when absent.
func Offset(r *http.Request) (int64, error) {
	s := r.URL.Query().Get("offset")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errs.Invalid("offset must be a non-negative byte count, not %q", s)
	}
	return n, nil
}

// CopyFlushing copies a stream to an HTTP response, flushing each chunk so
// a followed console shows lines as they come.
func CopyFlushing(w http.ResponseWriter, r io.Reader) {
	fl, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// Middleware wraps a handler: it may act before and after the inner one,
// or answer without calling it.
type Middleware func(http.Handler) http.Handler

// Chain wraps h in mws, the first outermost: a request passes through
// mws[0], then mws[1], and so on, before it reaches h.
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Serve serves h on ln until ctx is done or stop closes, then shuts the
// server down, giving requests in flight a few seconds to finish. mws wrap
// h as Chain does, the first outermost.
//
// Serve is the only HTTP server in godwit (a test in internal/layers fails
// on any other http.Server or http.ListenAndServe): the controller and
// every agent serve through it, so authentication, TLS or anything else
// every server needs is added here once.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, stop <-chan struct{}, mws ...Middleware) error {
	srv := &http.Server{Handler: Chain(h, mws...), ReadHeaderTimeout: 10 * time.Second}
	var fresh freshConns
	srv.ConnState = fresh.track
	srv.RegisterOnShutdown(fresh.close)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	case <-stop:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx) // followed consoles may outlast it; they are cut
	return nil
}

// freshConns are a server's connections that have not sent a request
// yet. Shutdown waits for such a connection until it is 5 s old (net/http
// takes it for a request on its way), and HTTP clients leave them behind:
// Go's transport dials for a request that another connection then serves,
// and keeps the new one idle. So a server with a request in flight a
// moment before would take up to 5 s to stop, for nothing. Shutdown
// closes them at once instead (its listener is closed by then: a request
// racing the shutdown fails, as one a moment later would).
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// track is the server's ConnState hook.
func (f *freshConns) track(c net.Conn, st http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st != http.StateNew {
		delete(f.conns, c)
		return
	}
	if f.conns == nil {
		f.conns = map[net.Conn]bool{}
	}
	f.conns[c] = true
}

// close closes the connections that never sent a request.
func (f *freshConns) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
}

// StatusWriter records the status a handler answers with (200 when it
// writes without one), for metrics. It flushes (a followed console
// streams through it) and unwraps (http.ResponseController) like the
// writer it wraps.
type StatusWriter struct {
	http.ResponseWriter
	Status int
}

// NewStatusWriter wraps w.
func NewStatusWriter(w http.ResponseWriter) *StatusWriter {
	return &StatusWriter{ResponseWriter: w, Status: http.StatusOK}
}

func (w *StatusWriter) WriteHeader(status int) {
	w.Status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *StatusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
