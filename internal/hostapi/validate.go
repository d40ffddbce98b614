package hostapi

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// What an agent accepts. Every ID and hash that reaches it names a file
// (a VM's directory, disk and seed; an image file in the cache), so each
// is checked where the request enters: IDs in paths by the agent's routes
// (CheckVMID), bodies by their Validate methods, which httpx.Decode calls.
// Sizes are bounded by api's limits, the controller's own, so that a
// negative or absurd one is refused with 400 rather than crashing a
// driver.

// MaxStopTimeoutSeconds bounds a graceful stop's wait.
const MaxStopTimeoutSeconds = 3600

// MaxPublicKeys bounds the SSH keys a VM's seed carries (a VM has one
// key pair; the bound leaves room).
const MaxPublicKeys = 16

// maxCompletionTimeoutPerGiBS bounds a migration's completion timeout.
const maxCompletionTimeoutPerGiBS = 3600

// CheckVMID checks a VM ID: a UUID in lowercase hex, as the controller
// makes them (service.NewID).
func CheckVMID(id string) error {
	if !isUUID(id) {
		return errs.Invalid("vm id %q is not a vm id: send the lowercase UUID the controller gave the vm", id)
	}
	return nil
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isLowerHex(c) {
				return false
			}
		}
	}
	return true
}

// CheckSHA256 checks a file hash: 64 lowercase hex digits.
func CheckSHA256(sum string) error {
	ok := len(sum) == 64
	for i := 0; ok && i < len(sum); i++ {
		ok = isLowerHex(sum[i])
	}
	if !ok {
		return errs.Invalid("sha256 %q is not a file hash: send 64 lowercase hex digits", sum)
	}
	return nil
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// inRange checks lo <= v <= hi for the named field.
func inRange(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return errs.Invalid("%s must be between %d and %d, not %d", name, lo, hi, v)
	}
	return nil
}

// Validate checks a VM definition: its ID, its image's files, its sizes
// and its NICs.
func (c CreateVM) Validate() error {
	if err := CheckVMID(c.ID); err != nil {
		return err
	}
	for _, err := range []error{
		inRange("vcpus", c.VCPUs, 1, api.MaxVCPUs),
		inRange("memory_mib", c.MemoryMiB, 1, api.MaxMemoryMiB),
		inRange("disk_mib", c.DiskMiB, 0, api.MaxDiskMiB),
		inRange("max_vcpus", c.MaxVCPUs, 0, api.MaxVCPUs),
		inRange("max_memory_mib", c.MaxMemoryMiB, 0, api.MaxMemoryMiB),
		inRange("boot_memory_mib", c.BootMemoryMiB, 0, api.MaxMemoryMiB),
		inRange("bytes of cmdline", len(c.Cmdline), 0, api.MaxCmdline),
		inRange("bytes of the image's cmdline", len(c.Image.Cmdline), 0, api.MaxCmdline),
		inRange("bytes of user_data", len(c.UserData), 0, api.MaxUserDataBytes),
		inRange("nics", len(c.NICs), 0, api.MaxNICs),
		inRange("public_keys", len(c.PublicKeys), 0, MaxPublicKeys),
	} {
		if err != nil {
			return err
		}
	}
	for _, k := range c.PublicKeys {
		if k == "" || len(k) > api.MaxPublicKeyBytes || strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return errs.Invalid("a public key must be one line of 1 to %d bytes without control characters", api.MaxPublicKeyBytes)
		}
	}
	if c.OnPanic != "" && !slices.Contains(api.OnPanicPolicies, c.OnPanic) {
		return errs.Invalid("on_panic %q is unknown; use one of %v", c.OnPanic, api.OnPanicPolicies)
	}
	for _, f := range c.Image.Files {
		if f.Role != api.RoleKernel && f.Role != api.RoleInitrd && f.Role != api.RoleDisk {
			return errs.Invalid("image file role %q is unknown; use kernel, initrd or disk", f.Role)
		}
		if err := CheckSHA256(f.SHA256); err != nil {
			return fmt.Errorf("image %q, %s file: %w", c.Image.Name, f.Role, err)
		}
		if f.Size < 0 {
			return errs.Invalid("image %q, %s file: size must not be negative, not %d", c.Image.Name, f.Role, f.Size)
		}
	}
	for _, n := range c.NICs {
		if hw, err := net.ParseMAC(n.MAC); err != nil || len(hw) != 6 {
			return errs.Invalid("nic mac %q is not a MAC address", n.MAC)
		}
		if n.MTU != 0 {
			if err := inRange("nic mtu", n.MTU, api.MinMTU, api.MaxMTU); err != nil {
				return err
			}
		}
	}
	return nil
}

// Validate checks a stop's timeout.
func (s StopVM) Validate() error {
	return inRange("timeout_seconds", s.TimeoutSeconds, 0, MaxStopTimeoutSeconds)
}

// Validate checks an outgoing migration: its targets (the only kinds
// QEMU is handed: CheckTargets) and its tuning.
func (m MigrateOut) Validate() error {
	if err := CheckTargets(m.URI, m.NBD); err != nil {
		return err
	}
	for _, err := range []error{
		inRange("max_downtime_ms", m.MaxDowntimeMS, 0, api.MaxDowntimeLimitMS),
		inRange("bandwidth_mb_per_s", m.BandwidthMBPerS, 0, api.MaxBandwidthMBPerS),
		inRange("bandwidth_mbps", m.BandwidthMBps, 0, api.MaxBandwidthMBPerS),
		inRange("completion_timeout_per_gib_s", m.CompletionTimeoutPerGiBS, 0, maxCompletionTimeoutPerGiBS),
	} {
		if err != nil {
			return err
		}
	}
	if m.Policy != "" && !m.Policy.Known() {
		return errs.Invalid("policy %q is unknown", m.Policy)
	}
	switch m.TimeoutAction {
	case "", "force", "abort": // converge.TimeoutForce, TimeoutAbort
	default:
		return errs.Invalid("timeout_action %q is unknown; use force or abort", m.TimeoutAction)
	}
	return nil
}

// Validate checks a disk import: the VM, which must have a disk, the
// source agent's URL (CheckAgentURL) and host name, and the token.
func (d ImportDisk) Validate() error {
	if err := d.VM.Validate(); err != nil {
		return err
	}
	if d.VM.DiskMiB == 0 {
		return errs.Invalid("import needs a vm with a disk (disk_mib)")
	}
	if err := CheckAgentURL(d.Source); err != nil {
		return err
	}
	if err := api.ValidateName("source host", d.SourceHost); err != nil {
		return errs.Invalid("import needs the source agent's host name, which its certificate carries: %v", err)
	}
	return CheckTransferToken(d.Token)
}

// Validate checks a resize: each size zero (kept) or within api's limits.
func (r ResizeVM) Validate() error {
	for _, err := range []error{
		inRange("vcpus", r.VCPUs, 0, api.MaxVCPUs),
		inRange("memory_mib", r.MemoryMiB, 0, api.MaxMemoryMiB),
		inRange("disk_mib", r.DiskMiB, 0, api.MaxDiskMiB),
		inRange("max_vcpus", r.MaxVCPUs, 0, api.MaxVCPUs),
		inRange("max_memory_mib", r.MaxMemoryMiB, 0, api.MaxMemoryMiB),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the stale copies the controller names: their IDs name
// files on the agent.
func (r HeartbeatReply) Validate() error {
	for _, v := range r.Remove {
		if err := CheckVMID(v.ID); err != nil {
			return err
		}
	}
	return nil
}
