package api

import (
	"strings"
	"testing"
)

// Display text is free (any Unicode, spaces, punctuation) up to 255
// characters, counted as characters rather than bytes; invalid UTF-8
// and control characters are refused with an error that names the field
// and says what to do.
func TestValidateDisplayText(t *testing.T) {
	for _, s := range []string{"", "Web shop – Zürich 🚀", "  spaced  out  ", strings.Repeat("東", MaxDisplayTextLen)} {
		if err := ValidateDisplayText("display_name", s); err != nil {
			t.Errorf("%q: %v; want it valid", s, err)
		}
	}
	for _, c := range []struct{ s, says string }{
		{strings.Repeat("a", 256), "display_name is 256 characters; use at most 255"},
		{strings.Repeat("東", 256), "display_name is 256 characters; use at most 255"},
		{"a\x00b", "display_name holds control character U+0000; use plain text on one line"},
		{"a\rb", "holds control character U+000D"},
		{"a\u0085b", "holds control character U+0085"},
		{"a\xffb", "display_name is not valid UTF-8; send the text encoded as UTF-8"},
	} {
		err := ValidateDisplayText("display_name", c.s)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%q: %v; want an error saying %q", c.s, err, c.says)
		}
	}
	bad, ok := "x\ty", "fine"
	if err := (UpdateVMRequest{DisplayName: &ok, Description: &bad}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "description ") {
		t.Errorf("Validate with a bad description: %v; want the description named", err)
	}
	if err := (UpdateVMRequest{}).Validate(); err != nil {
		t.Errorf("Validate of an empty update: %v", err)
	}
}

// An access address is empty or an address of its field's family, kept
// in netip's canonical form; anything else (another family, an
// IPv4-mapped IPv6 address given as IPv4, a prefix, a port, a zone, a
// name) is refused with an error that names the field and shows a valid
// address.
func TestValidateAccessIP(t *testing.T) {
	for _, c := range []struct {
		s     string
		v6    bool
		canon string
	}{
		{"", false, ""},
		{"", true, ""},
		{"203.0.113.10", false, "203.0.113.10"},
		{"0.0.0.0", false, "0.0.0.0"},
		{"2001:DB8::1", true, "2001:db8::1"},
		{"2001:0db8:0000:0000:0000:0000:0000:0001", true, "2001:db8::1"},
		{"::1", true, "::1"},
		{"::ffff:203.0.113.10", true, "::ffff:203.0.113.10"}, // an IPv6 address
	} {
		field := map[bool]string{false: "access_ipv4", true: "access_ipv6"}[c.v6]
		if err := ValidateAccessIP(field, c.s, c.v6); err != nil {
			t.Errorf("%s %q: %v; want it valid", field, c.s, err)
		}
		if got := CanonicalAccessIP(c.s); got != c.canon {
			t.Errorf("CanonicalAccessIP(%q) = %q; want %q", c.s, got, c.canon)
		}
	}
	for _, c := range []struct {
		s    string
		v6   bool
		says string
	}{
		{"1.2.3", false, `access_ipv4 "1.2.3" is not an IPv4 address; give one like 203.0.113.10`},
		{"256.0.0.1", false, `access_ipv4 "256.0.0.1" is not an IPv4 address`},
		{"010.0.0.1", false, `is not an IPv4 address`},
		{"203.0.113.10/24", false, `access_ipv4 "203.0.113.10/24" is not an IPv4 address`},
		{"203.0.113.10:22", false, `is not an IPv4 address`},
		{" 203.0.113.10", false, `is not an IPv4 address`},
		{"example.com", false, `access_ipv4 "example.com" is not an IPv4 address; give one like 203.0.113.10`},
		{"2001:db8::1", false, `access_ipv4 "2001:db8::1" is an IPv6 address; give it as access_ipv6, or an IPv4 address like 203.0.113.10`},
		{"::ffff:203.0.113.10", false, `access_ipv4 "::ffff:203.0.113.10" is an IPv4-mapped IPv6 address; give the IPv4 address itself, like 203.0.113.10`},
		{"203.0.113.10", true, `access_ipv6 "203.0.113.10" is an IPv4 address; give it as access_ipv4, or an IPv6 address like 2001:db8::10`},
		{"2001:db8::g", true, `access_ipv6 "2001:db8::g" is not an IPv6 address; give one like 2001:db8::10`},
		{"[2001:db8::1]", true, `is not an IPv6 address`},
		{"fe80::1%eth0", true, `access_ipv6 "fe80::1%eth0" has a zone (%eth0); give the IPv6 address without one, like 2001:db8::10`},
		{strings.Repeat("1", 1000), false, "access_ipv4 is 1000 bytes long, not an IPv4 address; give one like 203.0.113.10"},
	} {
		field := map[bool]string{false: "access_ipv4", true: "access_ipv6"}[c.v6]
		err := ValidateAccessIP(field, c.s, c.v6)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s %q: %v; want an error saying %q", field, c.s, err, c.says)
		}
	}
	v4, v6 := "203.0.113.10", "2001:db8::1"
	if err := (UpdateVMRequest{AccessIPv4: &v6}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "access_ipv4 ") {
		t.Errorf("Validate with an IPv6 access_ipv4: %v; want access_ipv4 named", err)
	}
	if err := (UpdateVMRequest{AccessIPv4: &v4, AccessIPv6: &v6}).Validate(); err != nil {
		t.Errorf("Validate with good addresses: %v", err)
	}
	if err := (UpdateVMRequest{AccessIPv6: &v4}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "access_ipv6 ") {
		t.Errorf("Validate with an IPv4 access_ipv6: %v; want access_ipv6 named", err)
	}
}
