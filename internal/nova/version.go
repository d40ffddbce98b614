package nova

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/godwit/godwit/internal/errs"
)

// Microversion is a compute API microversion, 2.N.
type Microversion struct{ Major, Minor int }

// The microversions served: every difference of Nova's API from 2.1 to
// MaxVersion is honoured (docs/nova-compat.md lists those that touch
// what godwit serves).
var (
	MinVersion = Microversion{2, 1}
	MaxVersion = Microversion{2, 60}
)

func (v Microversion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v is minor or later (of 2.x).
func (v Microversion) AtLeast(minor int) bool { return v.Minor >= minor }

func (v Microversion) less(o Microversion) bool {
	return v.Major < o.Major || (v.Major == o.Major && v.Minor < o.Minor)
}

// ParseMicroversion reads the version a request asks for: the
// OpenStack-API-Version header ("compute 2.53"), else the legacy
// X-OpenStack-Nova-API-Version ("2.53"); "latest" is MaxVersion; none is
// 2.1. One outside MinVersion..MaxVersion is refused (406, as Nova does).
func ParseMicroversion(h http.Header) (Microversion, error) {
	raw := ""
	for _, v := range h.Values("OpenStack-API-Version") {
		for _, part := range strings.Split(v, ",") {
			if svc, ver, ok := strings.Cut(strings.TrimSpace(part), " "); ok && strings.EqualFold(svc, "compute") {
				raw = strings.TrimSpace(ver)
			}
		}
	}
	if raw == "" {
		raw = strings.TrimSpace(h.Get("X-OpenStack-Nova-API-Version"))
	}
	switch raw {
	case "":
		return MinVersion, nil
	case "latest":
		return MaxVersion, nil
	}
	maj, min, ok := strings.Cut(raw, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if !ok || err1 != nil || err2 != nil || a < 0 || b < 0 {
		return Microversion{}, errs.Invalid("invalid microversion %q: it is MAJOR.MINOR, e.g. 2.53", raw)
	}
	v := Microversion{a, b}
	if v.less(MinVersion) || MaxVersion.less(v) {
		return Microversion{}, notAcceptable{fmt.Sprintf("Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, MinVersion, MaxVersion)}
	}
	return v, nil
}

// notAcceptable is a microversion out of range: 406.
type notAcceptable struct{ msg string }

func (e notAcceptable) Error() string { return e.msg }

// versioned wraps a compute handler: it parses the microversion (406 or
// 400 if it cannot), says which it served in the reply's headers, and
// passes it on.
func versioned(h func(w http.ResponseWriter, r *http.Request, v Microversion)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := ParseMicroversion(r.Header)
		hd := w.Header()
		hd.Set("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
		if err != nil {
			if na, ok := err.(notAcceptable); ok {
				writeStatus(w, r, http.StatusNotAcceptable, na.msg)
				return
			}
			WriteError(w, r, err)
			return
		}
		hd.Set("OpenStack-API-Version", "compute "+v.String())
		hd.Set("X-OpenStack-Nova-API-Version", v.String())
		h(w, r, v)
	}
}
