package hostapi

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/errs"
)

var (
	uuidRE   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// FuzzFileNames: the IDs and hashes that name an agent's files (VM IDs in
// paths and bodies, image hashes) are accepted only as lowercase UUIDs and
// 64 hex digits: no separator, dot or other byte to leave a directory.
func FuzzFileNames(f *testing.F) {
	for _, s := range []string{"0f8fad5b-d9cb-469f-a165-70867728950e", "0F8FAD5B-D9CB-469F-A165-70867728950E", "../../../../etc/passwd",
		strings.Repeat("a", 64), strings.Repeat("a", 63) + "/", "0f8fad5b-d9cb-469f-a165-70867728950\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := CheckVMID(s); (err == nil) != uuidRE.MatchString(s) || err != nil && !errors.Is(err, errs.ErrInvalid) {
			t.Fatalf("CheckVMID(%q) = %v", s, err)
		}
		if err := CheckSHA256(s); (err == nil) != sha256RE.MatchString(s) || err != nil && !errors.Is(err, errs.ErrInvalid) {
			t.Fatalf("CheckSHA256(%q) = %v", s, err)
		}
	})
}

// FuzzParseWait: a wait_ms value gives a wait between 0 and MaxWait,
// whatever it holds (a huge one once overflowed into a negative wait),
// and a number in range gives that many milliseconds.
func FuzzParseWait(f *testing.F) {
	for _, s := range []string{"", "250", "-1", "5000", "5001", "9223372036854775807", "9223372036855", "1e3", "0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w := ParseWait(s)
		if w < 0 || w > MaxWait {
			t.Fatalf("ParseWait(%q) = %v", s, w)
		}
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms >= 0 && ms <= MaxWait.Milliseconds() && w.Milliseconds() != ms {
			t.Fatalf("ParseWait(%q) = %v", s, w)
		}
	})
}
