package driver

import "testing"

func TestQEMUAtLeast(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool // at least 9.0
	}{
		{"7.2.22", false},
		{"8.2.99", false},
		{"9.0.0", true},
		{"9.0", true},
		{"10.0.2", true},
		{"", false},
		{"garbage", false},
		{"9", false},
		{"10.0.2 (Debian)", false},
		{"v10.0.2", false},
	} {
		if got := QEMUAtLeast(tt.v, TCGMigrationSafeQEMU); got != tt.want {
			t.Errorf("QEMUAtLeast(%q, 9.0) = %v; want %v", tt.v, got, tt.want)
		}
	}
	if !QEMUAtLeast("9.1.0", "9.0.5") || QEMUAtLeast("9.0.4", "9.0.5") || !QEMUAtLeast("9.0.5", "9.0.5") {
		t.Error("micro versions compare wrongly")
	}
}

func TestLiveMigrationSafe(t *testing.T) {
	for _, tt := range []struct {
		accel, v string
		want     bool
	}{
		{AccelTCG, "7.2.22", false},
		{AccelTCG, "", false},
		{AccelTCG, "garbage", false},
		{AccelTCG, "9.0.0", true},
		{AccelTCG, "10.0.2", true},
		{AccelKVM, "7.2.22", true},
		{AccelKVM, "", true},
		{"none", "", true},
	} {
		if got := LiveMigrationSafe(tt.accel, tt.v); got != tt.want {
			t.Errorf("LiveMigrationSafe(%s, %q) = %v; want %v", tt.accel, tt.v, got, tt.want)
		}
	}
}
