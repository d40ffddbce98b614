package driver

import (
	"regexp"
	"strconv"
)

// QEMU releases godwit's rules depend on.
const (
	// TCGMigrationSafeQEMU is the first QEMU whose TCG keeps the migration
	// dirty bitmap coherent with guest writes (upstream commit
	// 03bfc2188f06, "physmem: Fix migration dirty bitmap coherency with
	// TCG memory access", first released in 9.0.0). An older QEMU loses
	// guest writes when it live-migrates a TCG guest; under KVM the kernel
	// keeps the dirty log, so every version is safe there.
	TCGMigrationSafeQEMU = "9.0"
)

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?$`)

// ParseQEMUVersion parses a QEMU version such as "10.0.2" or "9.0" into its
// major, minor and micro numbers; ok is false for an empty or malformed one.
func ParseQEMUVersion(v string) (major, minor, micro int, ok bool) {
	m := versionRE.FindStringSubmatch(v)
	if m == nil {
		return 0, 0, 0, false
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		micro, _ = strconv.Atoi(m[3])
	}
	return major, minor, micro, true
}

// QEMUAtLeast reports whether QEMU version v is at least want (both
// "major.minor[.micro]"). An unknown (empty) or malformed v is not.
func QEMUAtLeast(v, want string) bool {
	a1, a2, a3, ok := ParseQEMUVersion(v)
	b1, b2, b3, okw := ParseQEMUVersion(want)
	if !ok || !okw {
		return false
	}
	switch {
	case a1 != b1:
		return a1 > b1
	case a2 != b2:
		return a2 > b2
	}
	return a3 >= b3
}

// LiveMigrationSafe reports whether a live migration out of or into a host
// running accel on QEMU qemuVersion keeps every guest write: always under
// KVM (and any other accelerator, such as the fake driver's "none"), under
// TCG only from QEMU 9.0 on. An unknown version under TCG is not safe.
func LiveMigrationSafe(accel, qemuVersion string) bool {
	return accel != AccelTCG || QEMUAtLeast(qemuVersion, TCGMigrationSafeQEMU)
}
