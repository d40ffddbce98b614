package cli

import (
	"strings"
	"testing"
)

func TestParseMiB(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"256", 256, true}, {"256M", 256, true}, {"256MiB", 256, true}, {"256mb", 256, true}, {" 256 M ", 256, true},
		{"1G", 1024, true}, {"1.5G", 1536, true}, {"2GiB", 2048, true}, {"1gb", 1024, true}, {"1T", 1 << 20, true},
		{"0", 0, true}, {"0G", 0, true},
		{"", 0, false}, {"-1G", 0, false}, {"1.3M", 0, false}, {"12X", 0, false}, {"G", 0, false},
		{"1e3", 0, false}, {"1K", 0, false}, {"1..5G", 0, false}, {"NaN", 0, false}, {"9999999T", 0, false},
	} {
		got, err := parseMiB(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseMiB(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		// Every rejection says what would have been accepted.
		if err != nil && !strings.Contains(err.Error(), "256M") && !strings.Contains(err.Error(), "whole number of MiB") {
			t.Errorf("parseMiB(%q) error %q does not say what is accepted", tt.in, err)
		}
	}
}

func TestMiBString(t *testing.T) {
	for n, want := range map[int]string{0: "0", 1: "1M", 256: "256M", 1023: "1023M", 1024: "1G", 1536: "1.5G", 24064: "23.5G", 262144: "256G", 258047: "252G"} {
		if got := mib(n); got != want {
			t.Errorf("mib(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSizeFlag(t *testing.T) {
	var s sizeFlag
	if err := s.Set("1.5G"); err != nil || int(s) != 1536 || s.String() != "1.5G" || s.Type() != "size" {
		t.Errorf("sizeFlag 1.5G = %d %q, %v", s, s.String(), err)
	}
	if err := s.Set("lots"); err == nil || int(s) != 1536 {
		t.Errorf("sizeFlag took %q (now %d)", "lots", s)
	}
}
