// Package errs holds the few sentinel errors every godwit layer wraps, and
// the one place they are mapped to API error codes and HTTP statuses.
package errs

import (
	"context"
	"errors"
	"fmt"

	"github.com/godwit/godwit/api"
)

// Sentinels. Wrap them with fmt.Errorf("...: %w", ErrX) or use the helpers
// below; callers test with errors.Is.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid")
	ErrNoCapacity   = errors.New("no capacity")
	ErrNotSupported = errors.New("not supported")
	ErrUnavailable  = errors.New("unavailable")
	ErrForbidden    = errors.New("forbidden")
	// ErrUnauthenticated: no credentials, or ones that are unknown,
	// revoked or expired (401).
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrTooLarge        = errors.New("too large") // an upload over its limit
)

// coded is an error whose message is meant for the user as is, tagged with
// a sentinel for errors.Is.
type coded struct {
	msg      string
	sentinel error
}

func (e *coded) Error() string { return e.msg }
func (e *coded) Unwrap() error { return e.sentinel }

func newf(sentinel error, format string, args ...any) error {
	return &coded{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}

// NotFound, Conflict, Invalid, NoCapacity, NotSupported, Unavailable and
// TooLarge return an error with exactly the given message that matches the sentinel.
func NotFound(format string, args ...any) error   { return newf(ErrNotFound, format, args...) }
func Conflict(format string, args ...any) error   { return newf(ErrConflict, format, args...) }
func Invalid(format string, args ...any) error    { return newf(ErrInvalid, format, args...) }
func NoCapacity(format string, args ...any) error { return newf(ErrNoCapacity, format, args...) }
func NotSupported(format string, args ...any) error {
	return newf(ErrNotSupported, format, args...)
}
func Unavailable(format string, args ...any) error { return newf(ErrUnavailable, format, args...) }
func Forbidden(format string, args ...any) error   { return newf(ErrForbidden, format, args...) }
func Unauthenticated(format string, args ...any) error {
	return newf(ErrUnauthenticated, format, args...)
}
func TooLarge(format string, args ...any) error { return newf(ErrTooLarge, format, args...) }

// Code maps an error to its API error code.
func Code(err error) string {
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		return ae.Code
	case errors.Is(err, ErrNotFound):
		return api.CodeNotFound
	case errors.Is(err, ErrForbidden):
		return api.CodeForbidden
	case errors.Is(err, ErrUnauthenticated):
		return api.CodeUnauthenticated
	case errors.Is(err, ErrInvalid):
		return api.CodeInvalid
	case errors.Is(err, ErrNoCapacity):
		return api.CodeNoCapacity
	case errors.Is(err, ErrConflict):
		return api.CodeConflict
	case errors.Is(err, ErrNotSupported):
		return api.CodeNotSupported
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return api.CodeUnavailable
	case errors.Is(err, ErrTooLarge):
		return api.CodeTooLarge
	}
	return api.CodeInternal
}

// FromAPI turns an *api.Error received from another godwit process back
// into an error that matches the sentinels.
func FromAPI(err error) error {
	var ae *api.Error
	if !errors.As(err, &ae) {
		return err
	}
	var s error
	switch ae.Code {
	case api.CodeNotFound:
		s = ErrNotFound
	case api.CodeForbidden:
		s = ErrForbidden
	case api.CodeUnauthenticated:
		s = ErrUnauthenticated
	case api.CodeInvalid:
		s = ErrInvalid
	case api.CodeNoCapacity:
		s = ErrNoCapacity
	case api.CodeConflict:
		s = ErrConflict
	case api.CodeNotSupported:
		s = ErrNotSupported
	case api.CodeUnavailable:
		s = ErrUnavailable
	case api.CodeTooLarge:
		s = ErrTooLarge
	default:
		// Keep the message, not the status: the caller adds its own.
		return errors.New(ae.Message)
	}
	return &coded{msg: ae.Message, sentinel: s}
}
