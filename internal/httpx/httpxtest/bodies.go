// Package httpxtest holds what the servers' tests of request decoding
// share: one fuzz target over a table of request body types
// (FuzzBodies), and the list of the types a package's handlers decode
// (DecodedTypes), so that a test fails when the table misses one.
package httpxtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/httpx"
)

// Body is one request body type of a server.
type Body struct {
	new   func() any
	check func(any) error
}

// Of is the body type T; check, when not nil, is the validation its
// handler does past httpx.Decode (which calls T's Validate).
func Of[T any](check func(*T) error) Body {
	b := Body{new: func() any { return new(T) }}
	if check != nil {
		b.check = func(v any) error { return check(v.(*T)) }
	}
	return b
}

// Name is the type's full name, as DecodedTypes lists it.
func (b Body) Name() string {
	t := reflect.TypeOf(b.new()).Elem()
	return t.PkgPath() + "." + t.Name()
}

// decode decodes body as the server does: httpx.Decode, then check.
func (b Body) decode(body []byte) (any, error) {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	v := b.new()
	if err := httpx.Decode(r, v); err != nil {
		return nil, err
	}
	if b.check != nil {
		if err := b.check(v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// FuzzBodies fuzzes bodies: an input's first byte picks the type (inputs
// whose byte is past the table are skipped, so the table is append-only:
// the corpus names types by index), the rest is the body. Decoding may
// refuse anything, with an errs.ErrInvalid error, but never panic; a body
// it accepts re-encodes to JSON that decodes and validates again to a
// value of the same encoding (the round trip).
func FuzzBodies(f *testing.F, bodies []Body) {
	names := map[string]bool{}
	for i, b := range bodies {
		if names[b.Name()] {
			f.Fatalf("%s is in the table twice", b.Name())
		}
		names[b.Name()] = true
		f.Add(append([]byte{byte(i)}, "{}"...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 || int(in[0]) >= len(bodies) {
			return
		}
		b := bodies[in[0]]
		v, err := b.decode(in[1:])
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("%s: refused with %v; want errs.ErrInvalid", b.Name(), err)
			}
			return
		}
		enc, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: accepted %q, which does not encode: %v", b.Name(), in[1:], err)
		}
		v2, err := b.decode(enc)
		if err != nil {
			t.Fatalf("%s: accepted %q but not its encoding %s: %v", b.Name(), in[1:], enc, err)
		}
		if enc2, _ := json.Marshal(v2); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s: %q decodes to %s, which decodes to %s", b.Name(), in[1:], enc, enc2)
		}
	})
}

// Missing returns the types of decoded (DecodedTypes) that bodies lacks.
func Missing(decoded []string, bodies []Body) []string {
	var missing []string
	for _, d := range decoded {
		if !slices.ContainsFunc(bodies, func(b Body) bool { return b.Name() == d }) {
			missing = append(missing, d)
		}
	}
	return missing
}
