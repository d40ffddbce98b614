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
