package api

import (
	"regexp"
	"testing"
)

// FuzzValidateName: an accepted VM, image, host or project name is a DNS
// label: at most 63 lowercase letters, digits and inner '-', nothing
// else (no dot, slash, upper case, trailing newline).
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"web-1", "a", "-a", "a-", "A", "a.b", "../x", "a\x00", "ａ", "x\n"} {
		f.Add(s)
	}
	label := regexp.MustCompile(`\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\z`)
	f.Fuzz(func(t *testing.T, name string) {
		if err := ValidateName("vm", name); (err == nil) != label.MatchString(name) {
			t.Fatalf("ValidateName(%q) = %v", name, err)
		}
	})
}
