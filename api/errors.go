package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes carried in an Error. They mirror the few sentinel errors the
// server uses internally, so a client can branch on them.
const (
	CodeInvalid         = "invalid"         // 400: the request is wrong; the message says how
	CodeNotFound        = "not_found"       // 404
	CodeForbidden       = "forbidden"       // 403: the caller may not do this; the message says why
	CodeUnauthenticated = "unauthenticated" // 401: no token, or one that is unknown, revoked or expired
	CodeConflict        = "conflict"        // 409: the state of things forbids it now
	CodeNoCapacity      = "no_capacity"     // 409: no host can take it
	CodeNotSupported    = "not_supported"   // 422/501: the host or driver cannot do it
	CodeMethod          = "method"          // 405
	CodeTooLarge        = "too_large"       // 413: an upload over its limit; the message names it
	CodeMisdirected     = "misdirected"     // 421: the Host header names no name this server answers to
	CodeMediaType       = "media_type"      // 415: a write's body must be JSON (Content-Type: application/json)
	CodeInternal        = "internal"        // 500
	CodeUnavailable     = "unavailable"     // 503: a host or the store is unreachable
)

// Error is the JSON body of every non-2xx response.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
	}
	return e.Message
}

// StatusFor returns the HTTP status an error code is sent with.
func StatusFor(code string) int {
	switch code {
	case CodeInvalid:
		return http.StatusBadRequest
	case CodeNotFound:
		return http.StatusNotFound
	case CodeForbidden:
		return http.StatusForbidden
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeConflict, CodeNoCapacity:
		return http.StatusConflict
	case CodeNotSupported:
		return http.StatusUnprocessableEntity
	case CodeMethod:
		return http.StatusMethodNotAllowed
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeMisdirected:
		return http.StatusMisdirectedRequest
	case CodeMediaType:
		return http.StatusUnsupportedMediaType
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// IsCode reports whether err is an *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
