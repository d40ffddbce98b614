package controller

import (
	"context"
	"net/http"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/httpx"
	"github.com/godwit/godwit/internal/nova"
)

// body says whether a request carries a JSON body.
type body int

const (
	none     body = iota // no body is read
	optional             // an empty body is the zero request
	required             // a JSON object must be sent
)

// call adapts one service method to HTTP: decode the request's body into
// Req, call f, encode its result with status (or the error, with the
// status its sentinel maps to).
func call[Req, Resp any](c *Controller, b body, status int, f func(context.Context, *http.Request, Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, ok := decode[Req](c, b, w, r)
		if !ok {
			return
		}
		resp, err := f(r.Context(), r, req)
		reply(c, w, r, status, resp, err)
	}
}

// decode reads the request's body into a Req as b says; on failure it has
// answered with the error and reports false.
func decode[Req any](c *Controller, b body, w http.ResponseWriter, r *http.Request) (Req, bool) {
	var req Req
	if b == required || (b == optional && r.ContentLength != 0) {
		if err := httpx.Decode(r, &req); err != nil {
			c.fail(w, r, err)
			return req, false
		}
	}
	return req, true
}

// get is call for a request without a body, answered with 200.
func get[Resp any](c *Controller, f func(context.Context, *http.Request) (Resp, error)) http.HandlerFunc {
	return call(c, none, http.StatusOK, func(ctx context.Context, r *http.Request, _ struct{}) (Resp, error) { return f(ctx, r) })
}

// intentKind is the one handler of the intent kinds (drain, evacuate, resize,
// rebuild): a request about the target named in the path, answered with
// the intent — 200 for a plan (dry run), 202 for an intent that now runs.
func intentKind[Req any](c *Controller, b body, f func(ctx context.Context, target string, req Req) (api.Intent, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, ok := decode[Req](c, b, w, r)
		if !ok {
			return
		}
		in, err := f(r.Context(), r.PathValue("name"), req)
		status := http.StatusAccepted
		if in.State == api.IntentPlanned {
			status = http.StatusOK
		}
		reply(c, w, r, status, in, err)
	}
}

// reply encodes v with status, or err.
func reply(c *Controller, w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		c.fail(w, r, err)
		return
	}
	httpx.JSON(w, status, v)
}

func (c *Controller) fail(w http.ResponseWriter, r *http.Request, err error) {
	if nova.Owns(r.URL.Path) {
		nova.WriteError(w, r, err)
		return
	}
	httpx.Error(w, r, c.log, err)
}
