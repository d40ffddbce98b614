package scheduler

import (
	"errors"
	"fmt"
	"strings"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
)

// QEMU before 9.0 loses guest writes when it live-migrates a TCG guest:
// its TCG memory accesses could miss the migration dirty bitmap (fixed
// upstream by 03bfc2188f06, "physmem: Fix migration dirty bitmap
// coherency with TCG memory access", first in 9.0.0; Debian 12 ships
// 7.2). Under KVM the kernel keeps the dirty log, so any QEMU is safe.
// The service therefore refuses a live migration out of or into a TCG
// host on an older QEMU, or on one whose version it does not know (an
// agent too old to report it), unless the cluster allows it (godwit serve
// --allow-unsafe-tcg-migration).
// Cold migrations copy no memory and are unaffected.

// UnsafeTCG says why a live migration out of or into h would lose guest
// writes ("runs TCG on QEMU 7.2.22"), or "" when it would not.
func UnsafeTCG(h api.Host) string {
	switch {
	case driver.LiveMigrationSafe(h.Accelerator, h.QEMUVersion):
		return ""
	case h.QEMUVersion == "":
		return "runs TCG on a QEMU of unknown version (its agent does not report it)"
	}
	return "runs TCG on QEMU " + h.QEMUVersion
}

// unsafeTCGError refuses a live migration the TCG gate forbids. It is a
// 422 (errs.ErrNotSupported) that a migrate without a kind tells apart
// from other refusals: it falls back to cold on it.
type unsafeTCGError struct{ msg string }

func (e *unsafeTCGError) Error() string { return e.msg }
func (e *unsafeTCGError) Unwrap() error { return errs.ErrNotSupported }

// IsUnsafeTCG reports whether err is the TCG gate's refusal.
func IsUnsafeTCG(err error) bool {
	var e *unsafeTCGError
	return errors.As(err, &e)
}

// RefuseUnsafeTCG returns the refusal of a live migration between hosts
// when any of them fails the TCG gate, or nil.
func RefuseUnsafeTCG(hosts ...api.Host) error {
	var why []string
	for _, h := range hosts {
		if w := UnsafeTCG(h); w != "" {
			why = append(why, h.Name+" "+w)
		}
	}
	if len(why) == 0 {
		return nil
	}
	return &unsafeTCGError{msg: fmt.Sprintf("live migration refused: %s; QEMU before %s loses guest writes when it live-migrates a TCG guest "+
		"(fixed upstream by commit 03bfc2188f06, first in QEMU 9.0.0). Install QEMU %s or later on the hosts (Debian 12: from bookworm-backports) "+
		"or run them under KVM; meanwhile move the VM cold (godwit migrate --cold, or drain with --on-failure cold), "+
		"or, in a lab that accepts the risk, run the controller with godwit serve --allow-unsafe-tcg-migration",
		strings.Join(why, " and "), driver.TCGMigrationSafeQEMU, driver.TCGMigrationSafeQEMU)}
}

// RefuseLive refuses, with the TCG gate's error (a migrate without a kind
// falls back to cold on it), a live move of a TCG guest that has
// hot-plugged memory. QEMU's TCG dirty-bitmap sync resets the TLB dirty
// state of a RAM block from the block's own offset instead of its RAM
// address, so only the block at address 0 is tracked right. godwit puts
// the boot memory there (the qemu driver's memory()); virtio-mem's block
// comes after it, and once memory is plugged there and dirtied, the
// reset lands across both blocks and the source QEMU dies in the move
// (8 of 8 tries on QEMU 10.0.2, docs/migration.md). Not under KVM, whose
// dirty log the kernel keeps. No setting lifts it: the move cannot work.
func RefuseLive(p Placement) error {
	if !p.Live || p.HotpluggedMiB == 0 || p.Source.Accelerator != driver.AccelTCG {
		return nil
	}
	return &unsafeTCGError{msg: fmt.Sprintf("live migration refused: the vm has %d MiB of hot-plugged memory and %s runs TCG, "+
		"where QEMU's dirty tracking of a second RAM block kills the source QEMU in a live move (docs/migration.md, \"virtio-mem under TCG\"); "+
		"move it cold (godwit migrate --cold, or drain with --on-failure cold), or resize it back to its boot memory first; under KVM it moves live",
		p.HotpluggedMiB, p.Source.Name)}
}

// Pick chooses the host with the most free memory among those that pass
// every filter, or explains why none does; hosts must carry their
// allocations. For a live move under the TCG gate (p.AllowUnsafeTCG
// unset) it refuses an unsafe source at once, passes over unsafe
// destinations when another can take the VM, and when only unsafe ones
// could, refuses with the gate's reason (422) rather than "no capacity".
func Pick(hosts []api.Host, p Placement) (api.Host, error) {
	if err := RefuseLive(p); err != nil {
		return api.Host{}, err
	}
	if !p.Live || p.AllowUnsafeTCG {
		return pick(hosts, p)
	}
	if err := RefuseUnsafeTCG(p.Source); err != nil {
		return api.Host{}, err
	}
	dst, err := pick(hosts, p)
	if err != nil {
		p.AllowUnsafeTCG = true
		if d, uerr := pick(hosts, p); uerr == nil {
			return api.Host{}, RefuseUnsafeTCG(d)
		}
	}
	return dst, err
}
