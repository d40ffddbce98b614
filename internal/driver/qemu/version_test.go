package qemu

import (
	"testing"

	"github.com/godwit/godwit/internal/driver"
)

func TestParseVersion(t *testing.T) {
	for out, want := range map[string]string{
		"QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright (c) 2003-2025 Fabrice Bellard and the QEMU Project developers\n": "10.0.2",
		"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u16)\n":                                                                                  "7.2.22",
		"QEMU emulator version 9.0.0\n":        "9.0.0",
		"qemu-system-x86_64: unknown option\n": "",
		"":                                     "",
	} {
		if got := parseVersion([]byte(out)); got != want {
			t.Errorf("parseVersion(%q) = %q; want %q", out, got, want)
		}
	}
}

// Post-copy is offered under KVM, and under TCG from QEMU 9.0 on.
func TestPostCopyCapability(t *testing.T) {
	for _, tt := range []struct {
		accel, version string
		want           bool
	}{
		{driver.AccelKVM, "7.2.22", true},
		{driver.AccelTCG, "7.2.22", false},
		{driver.AccelTCG, "", false},
		{driver.AccelTCG, "9.0.0", true},
		{driver.AccelTCG, "10.0.2", true},
	} {
		d := &Driver{cfg: Config{Accel: tt.accel}, version: tt.version}
		caps := d.Capabilities()
		if caps.PostCopy != tt.want || caps.QEMUVersion != tt.version {
			t.Errorf("%s on %q: post-copy %v, version %q; want %v", tt.accel, tt.version, caps.PostCopy, caps.QEMUVersion, tt.want)
		}
	}
}
