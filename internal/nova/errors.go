package nova

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// novaFaults are the names Nova gives its error bodies, by status:
// {"itemNotFound": {"code": 404, "message": "..."}}.
var novaFaults = map[int]string{
	http.StatusBadRequest:            "badRequest",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "itemNotFound",
	http.StatusMethodNotAllowed:      "badMethod",
	http.StatusNotAcceptable:         "notAcceptable",
	http.StatusConflict:              "conflictingRequest",
	http.StatusRequestEntityTooLarge: "overLimit",
	http.StatusUnsupportedMediaType:  "badMediaType",
	http.StatusNotImplemented:        "notImplemented",
	http.StatusServiceUnavailable:    "serviceUnavailable",
}

// WriteError writes err in the format of the API whose path r names:
// Nova's fault body, Keystone's {"error": {...}}, or Glance's text. The
// message is godwit's, which says what to do.
//
// A compute call refused by a project's quota says so as Nova does
// (403, "Quota exceeded for cores: …"), whichever handler refused it.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	status := api.StatusFor(errs.Code(err))
	msg := err.Error()
	if q, ok := asQuotaExceeded(err); ok && strings.HasPrefix(r.URL.Path, ComputePrefix) {
		msg = quotaExceeded(q)
	}
	writeStatus(w, r, status, msg)
}

func writeStatus(w http.ResponseWriter, r *http.Request, status int, msg string) {
	switch {
	case strings.HasPrefix(r.URL.Path, IdentityPrefix):
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Keystone uri="`+baseURL(r)+IdentityPrefix+`"`)
		}
		writeJSON(w, status, map[string]any{"error": map[string]any{"code": status, "title": http.StatusText(status), "message": msg}})
	case strings.HasPrefix(r.URL.Path, ImagePrefix):
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "%d %s\n\n%s\n\n   ", status, http.StatusText(status), msg)
	default:
		name := novaFaults[status]
		if name == "" {
			name = "computeFault"
		}
		if status == http.StatusUnprocessableEntity {
			// Nova has no 422: what godwit refuses as unprocessable (an
			// unsafe move) Nova clients read as a bad request.
			status, name = http.StatusBadRequest, "badRequest"
		}
		writeJSON(w, status, map[string]any{name: map[string]any{"code": status, "message": msg}})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body leniently: OpenStack's clients send fields
// godwit has no use for (metadata, key names, security groups), which
// are ignored; what godwit reads is checked by the handler.
func decode(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return errs.Invalid("the request body is not the JSON this call takes: %v", err)
	}
	return nil
}
