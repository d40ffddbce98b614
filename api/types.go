// Package api holds godwit's public REST types and its Go client.
//
// It imports nothing from internal/: a program that talks to a godwit
// controller needs only this package. Sizes are in MiB, rates in bytes/s,
// bandwidth caps in MB/s (see MB), times are RFC 3339 in JSON, and every
// error the server returns decodes into *Error. A field whose unit is not
// one of these says it in its name (max_downtime_ms, timeout_seconds).
//
// The migration and intent vocabulary is typed (strategies.go,
// migrations.go, intents.go): kinds, states with Final, policies,
// techniques and driver strategies. The types are strings, so the JSON
// is the words themselves.
package api

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Host states as the controller sees them.
const (
	HostUp   = "up"
	HostDown = "down"
	// HostIncompatible: the host's agent heartbeats, but its version does
	// not work with the controller's (too old or too new; StateReason says
	// which side to upgrade). The controller refuses its heartbeats, so
	// it counts as down for everything else.
	HostIncompatible = "incompatible"
)

// Host is one hypervisor host, as reported by its agent's heartbeats.
type Host struct {
	Name    string `json:"name"`
	Address string `json:"address"` // agent base URL, e.g. http://127.0.0.1:7401
	State   string `json:"state"`   // up, down or incompatible
	Enabled bool   `json:"enabled"` // false: the scheduler places nothing here
	// StateReason says why a host is incompatible.
	StateReason string `json:"state_reason,omitempty"`
	// DisabledReason says why a host was taken out of scheduling, when
	// the one who did said (Nova's os-services disable-log-reason).
	DisabledReason string `json:"disabled_reason,omitempty"`
	// ForcedDown is an operator's word that the host is down (powered
	// off or fenced), set through Nova's os-services force-down: an
	// evacuation takes it as it takes --host-is-down. A host that
	// heartbeats is up all the same.
	ForcedDown bool `json:"forced_down,omitempty"`

	CPUs      int      `json:"cpus"`
	MemoryMiB int      `json:"memory_mib"`
	DiskMiB   int      `json:"disk_mib"` // capacity of the local pool
	CPUModel  string   `json:"cpu_model"`
	CPUFlags  []string `json:"cpu_flags,omitempty"`
	Pools     []Pool   `json:"pools"`

	Hypervisor  string `json:"hypervisor"`  // qemu or fake
	Accelerator string `json:"accelerator"` // kvm or tcg (what VMs on this host run under)
	AccelReason string `json:"accel_reason,omitempty"`
	// QEMUVersion is the QEMU release the host runs VMs on, "10.0.2" (a
	// fake host's: the one it claims); empty when unknown (an agent too
	// old to report it). Under TCG, QEMU before 9.0 loses guest writes in
	// a live migration, which the controller therefore refuses (unless
	// it runs with --allow-unsafe-tcg-migration).
	QEMUVersion string `json:"qemu_version"`
	// PostCopy says the host's driver can switch a live migration to
	// post-copy (under KVM, or TCG on QEMU 9.0 or later).
	PostCopy bool   `json:"post_copy"`
	Version  string `json:"version"` // agent version

	// Allocated resources: the sum of the flavors of VMs placed here.
	AllocatedCPUs      int `json:"allocated_cpus"`
	AllocatedMemoryMiB int `json:"allocated_memory_mib"`
	AllocatedDiskMiB   int `json:"allocated_disk_mib"`
	VMs                int `json:"vms"`

	LastHeartbeat time.Time `json:"last_heartbeat"`
	RegisteredAt  time.Time `json:"registered_at"`

	// Lease is the host's lease on the shared pool as the controller sees
	// it; absent when the controller does not watch the pool.
	Lease *HostLease `json:"lease,omitempty"`
}

// HostLease is a host's lease on the shared pool, observed by the
// controller on its own clock. Expired means the host has fenced itself:
// it runs nothing on the shared pool any more.
type HostLease struct {
	State       string `json:"state"` // renewing, lapsing, expired, unknown
	Seq         uint64 `json:"seq"`
	StillMS     int64  `json:"still_ms"`      // how long seq has stood still
	TTLMS       int64  `json:"ttl_ms"`        // the host's promise: fenced this long after its last renewal
	ExpiresInMS int64  `json:"expires_in_ms"` // until the controller counts it expired
}

// Pool kinds.
const (
	PoolLocal  = "local"
	PoolShared = "shared"
)

// Pool is a storage pool an agent can place disks in.
type Pool struct {
	Name    string `json:"name"` // local or shared
	Kind    string `json:"kind"`
	Path    string `json:"path"`
	FreeMiB int    `json:"free_mib"`
	// ID identifies the backing storage: hosts that report the same shared
	// pool ID see the same files.
	ID string `json:"id,omitempty"`
}

// VM power states. Desired state is one of Running or Stopped; observed
// state is any of them.
const (
	VMPending  = "pending"  // record exists, not yet placed or created
	VMCreating = "creating" // agent is preparing disks and starting QEMU
	VMRunning  = "running"
	VMStopped  = "stopped"
	VMDeleting = "deleting"
	VMError    = "error"   // needs attention; see StateReason
	VMUnknown  = "unknown" // its host is down
	// VMCrashed: the guest kernel panicked and its host holds it paused
	// there (OnPanic pause); StateReason says why. Reboot, start or stop it.
	VMCrashed = "crashed"
)

// Flavor is the virtual hardware of a VM.
type Flavor struct {
	VCPUs     int `json:"vcpus"`
	MemoryMiB int `json:"memory_mib"`
	DiskMiB   int `json:"disk_mib"` // 0: no disk
}

// Validate checks a flavor's sizes against the limits below and says
// which one is off and what it may be.
func (f Flavor) Validate() error {
	switch {
	case f.VCPUs < 1 || f.VCPUs > MaxVCPUs:
		return fmt.Errorf("vcpus must be between 1 and %d, not %d", MaxVCPUs, f.VCPUs)
	case f.MemoryMiB < MinMemoryMiB || f.MemoryMiB > MaxMemoryMiB:
		return fmt.Errorf("memory_mib must be between %d and %d, not %d", MinMemoryMiB, MaxMemoryMiB, f.MemoryMiB)
	case f.DiskMiB < 0 || f.DiskMiB > MaxDiskMiB:
		return fmt.Errorf("disk_mib must be between 0 (no disk) and %d, not %d", MaxDiskMiB, f.DiskMiB)
	}
	return nil
}

// Limits on a VM's sizes, generous for real hosts and small enough to
// catch unit mistakes (a memory size in bytes, say). The controller
// refuses requests beyond them, and agents refuse commands beyond them.
const (
	MaxVCPUs     = 256
	MinMemoryMiB = 64
	MaxMemoryMiB = 4 << 20 // 4 TiB
	MaxDiskMiB   = 64 << 20
	MaxCmdline   = 2048 // bytes of a VM's or an image's kernel command line
)

// Limits on a migration's tuning.
const (
	MaxDowntimeLimitMS = 60_000
	MaxBandwidthMBPerS = 100_000
)

// VM is a virtual machine record.
type VM struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// DisplayName is the name people gave the VM, as a Nova server's
	// name: free text (any Unicode, at most 255 characters, no control
	// characters), not unique. Empty: the VM goes by its name, the
	// unique identifier every route takes.
	DisplayName string `json:"display_name,omitempty"`
	// Description is free text about the VM, for people: at most 255
	// characters, no control characters; empty: none.
	Description string `json:"description,omitempty"`
	// AccessIPv4 is the VM's IPv4 access address, as a Nova server's
	// accessIPv4: an address recorded for people and tools to reach the
	// VM by (a NAT or floating address, say), in canonical form. Godwit
	// configures it nowhere (not on a NIC, not in the guest); it keeps
	// and shows it. Empty: none.
	AccessIPv4 string `json:"access_ipv4,omitempty"`
	// AccessIPv6 is the VM's IPv6 access address, as a Nova server's
	// accessIPv6: recorded for people and tools, in canonical form
	// (2001:db8::10), configured nowhere. Empty: none.
	AccessIPv6 string `json:"access_ipv6,omitempty"`
	Project    string `json:"project"`
	Host       string `json:"host,omitempty"`
	Image      string `json:"image"`
	// ImageSHA256 is the SHA-256 of the image's disk file that the VM's
	// disk was made from (at create, or at its last rebuild from an
	// image): the base its disk is layered on. Every later copy of the
	// VM is layered on a base with this checksum or not at all, so an
	// image deleted and imported again with other content under the
	// same name is never taken for it. Empty when the image has no disk.
	ImageSHA256 string `json:"image_sha256,omitempty"`
	Flavor      Flavor `json:"flavor"`
	// FlavorName is the stored flavor (NamedFlavor) the VM's sizes came
	// from, at create or at its last resize; empty when they were given
	// as sizes. The VM keeps its sizes when that flavor is deleted.
	FlavorName string `json:"flavor_name,omitempty"`
	// Hotplug ceilings, fixed when the VM starts: resize goes up to them
	// online. BootMemoryMiB is the memory it booted with; the rest of
	// Flavor.MemoryMiB is hot-plugged (virtio-mem).
	MaxVCPUs      int    `json:"max_vcpus,omitempty"`
	MaxMemoryMiB  int    `json:"max_memory_mib,omitempty"`
	BootMemoryMiB int    `json:"boot_memory_mib,omitempty"`
	Pool          string `json:"pool"` // where its disk lives: local or shared
	DesiredState  string `json:"desired_state"`
	State         string `json:"state"` // observed
	StateReason   string `json:"state_reason,omitempty"`
	Cmdline       string `json:"cmdline,omitempty"` // appended to the image's
	PID           int    `json:"pid,omitempty"`
	// StaleCopies names hosts that still hold an old copy of this VM
	// (after an evacuation): when such a host returns, its agent is told
	// to remove the copy (keeping shared-pool disks) and never starts it.
	StaleCopies []string `json:"stale_copies,omitempty"`
	// OnPanic is what the host does when the guest kernel panics
	// (OnPanic*); empty on VMs recorded before it existed: restart.
	OnPanic string `json:"on_panic,omitempty"`
	// LastPanic is the guest's last kernel panic, with the count of all.
	LastPanic *GuestPanic `json:"last_panic,omitempty"`
	// Ports are the VM's NICs, in the guest's order (eth0 first). Fixed
	// at create: their MACs and addresses stay the same wherever it runs.
	Ports []Port `json:"ports,omitempty"`
	// UserData is handed to the guest in its NoCloud seed (cloud-init's
	// user-data), as given at create.
	UserData string `json:"user_data,omitempty"`
	// KeyName is the key pair the VM was created with (Nova's
	// key_name); empty: none.
	KeyName string `json:"key_name,omitempty"`
	// PublicKey is that key pair's public key as it was at create: the
	// guest gets it in its NoCloud seed (meta-data public-keys) on every
	// host it runs on. Deleting the key pair changes no VM.
	PublicKey string `json:"public_key,omitempty"`
	// Metadata is key-value pairs people and tools record on the VM
	// (Nova's server metadata), as given at create; godwit reads none.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Lock, when set, is the VM's lock (Nova's locked server): changes a
	// member asks of the VM are refused (409) until it is unlocked;
	// admins are not stopped. Nil: not locked.
	Lock      *VMLock   `json:"lock,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// VMLock is who locked a VM, when and why (POST /v1/vms/{name}/lock).
type VMLock struct {
	// By is the ID of the token that locked the VM.
	By string `json:"by"`
	// ByName is that token's name, for people.
	ByName string `json:"by_name"`
	// ByAdmin is set when an admin locked it: then only an admin
	// unlocks it (Nova's locked_by "admin"); a member's lock is unlocked
	// by any member of the VM's project (Nova's locked_by "owner").
	ByAdmin bool `json:"by_admin,omitempty"`
	// Reason is why, as the locker gave it; empty: none given.
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// LockVMRequest is the (optional) body of POST /v1/vms/{name}/lock.
type LockVMRequest struct {
	// Reason says why the VM is locked (Nova's locked_reason): at most
	// 255 characters, no control characters.
	Reason string `json:"reason,omitempty"`
}

// CreateVMRequest is the body of POST /v1/vms.
type CreateVMRequest struct {
	Name string `json:"name"`
	// DisplayName is the name people give the VM: free text (any
	// Unicode, at most 255 characters, no control characters), not
	// unique; empty: the VM goes by its name.
	DisplayName string `json:"display_name,omitempty"`
	// Description is free text about the VM: at most 255 characters,
	// no control characters.
	Description string `json:"description,omitempty"`
	// AccessIPv4 is an IPv4 address recorded for people and tools to
	// reach the VM by (a NAT or floating address, say), as a Nova
	// server's accessIPv4; godwit configures it nowhere. Empty or an
	// IPv4 address such as 203.0.113.10, kept in canonical form.
	AccessIPv4 string `json:"access_ipv4,omitempty"`
	// AccessIPv6 is an IPv6 address recorded for people and tools, as a
	// Nova server's accessIPv6; godwit configures it nowhere. Empty or
	// an IPv6 address such as 2001:db8::10, kept in canonical form.
	AccessIPv6 string `json:"access_ipv6,omitempty"`
	Project    string `json:"project,omitempty"` // default "default"
	Image      string `json:"image"`
	// Flavor gives the VM's sizes; or leave it out and name a stored
	// flavor in FlavorName.
	Flavor Flavor `json:"flavor,omitzero"`
	// FlavorName names a stored flavor (by name or ID) whose sizes the
	// VM gets; Flavor must then be left out.
	FlavorName string `json:"flavor_name,omitempty"`
	Pool       string `json:"pool,omitempty"` // default local
	Host       string `json:"host,omitempty"` // pin to a host; default: scheduled
	// Hotplug ceilings for online resize; 0 picks the defaults (twice
	// the vCPUs, at least 4; for memory, no hotplug: MemoryMiB).
	MaxVCPUs     int `json:"max_vcpus,omitempty"`
	MaxMemoryMiB int `json:"max_memory_mib,omitempty"`
	// Cmdline is appended to the image's kernel command line.
	Cmdline string `json:"cmdline,omitempty"`
	// Start defaults to true.
	Start *bool `json:"start,omitempty"`
	// OnPanic is what the host does when the guest kernel panics:
	// restart (the default), pause or none (OnPanic*).
	OnPanic string `json:"on_panic,omitempty"`
	// Networks asks for the VM's NICs, in order (at most MaxNICs).
	Networks []NICRequest `json:"networks,omitempty"`
	// UserData is cloud-init user-data for the guest's NoCloud seed (at
	// most MaxUserDataBytes).
	UserData string `json:"user_data,omitempty"`
	// KeyName names one of the caller's key pairs (godwit keypair
	// list): its public key goes into the guest's NoCloud seed, where
	// cloud-init adds it to the default user's authorized_keys.
	KeyName string `json:"key_name,omitempty"`
	// Metadata is key-value pairs to record on the VM (ValidateMetadata).
	Metadata map[string]string `json:"metadata,omitempty"`
}

// MaxMetadataItems bounds a VM's metadata, as Nova's default quota does.
const MaxMetadataItems = 128

// ValidateMetadata checks a VM's metadata: at most MaxMetadataItems
// pairs, each key 1 to 255 characters and each value at most 255, no
// control characters.
func ValidateMetadata(m map[string]string) error {
	if len(m) > MaxMetadataItems {
		return fmt.Errorf("metadata has %d items; give at most %d", len(m), MaxMetadataItems)
	}
	for k, v := range m {
		if k == "" {
			return fmt.Errorf("a metadata key is empty; give each value a key")
		}
		if err := ValidateDisplayText("metadata key", k); err != nil {
			return err
		}
		if err := ValidateDisplayText("metadata value of "+strconv.Quote(k), v); err != nil {
			return err
		}
	}
	return nil
}

// UpdateVMRequest is the body of PATCH /v1/vms/{name}: the fields to
// change. A field left out keeps its value; "" clears it.
type UpdateVMRequest struct {
	// DisplayName, when given, becomes the VM's display name: free
	// text, at most 255 characters, no control characters.
	DisplayName *string `json:"display_name,omitempty"`
	// Description, when given, becomes the VM's description: at most
	// 255 characters, no control characters.
	Description *string `json:"description,omitempty"`
	// AccessIPv4, when given, becomes the VM's IPv4 access address,
	// recorded for people and tools and configured nowhere: an IPv4
	// address such as 203.0.113.10, kept in canonical form.
	AccessIPv4 *string `json:"access_ipv4,omitempty"`
	// AccessIPv6, when given, becomes the VM's IPv6 access address,
	// recorded for people and tools and configured nowhere: an IPv6
	// address such as 2001:db8::10, kept in canonical form.
	AccessIPv6 *string `json:"access_ipv6,omitempty"`
	// Metadata, when given (not null), replaces the VM's metadata; {}
	// clears it (ValidateMetadata).
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Empty reports whether the request changes nothing.
func (r UpdateVMRequest) Empty() bool {
	return r.DisplayName == nil && r.Description == nil && r.AccessIPv4 == nil && r.AccessIPv6 == nil && r.Metadata == nil
}

// Apply writes the fields the request gives into v: the access
// addresses in canonical form, metadata replaced ({} clears it).
func (r UpdateVMRequest) Apply(v *VM) {
	if r.DisplayName != nil {
		v.DisplayName = *r.DisplayName
	}
	if r.Description != nil {
		v.Description = *r.Description
	}
	if r.AccessIPv4 != nil {
		v.AccessIPv4 = CanonicalAccessIP(*r.AccessIPv4)
	}
	if r.AccessIPv6 != nil {
		v.AccessIPv6 = CanonicalAccessIP(*r.AccessIPv6)
	}
	if r.Metadata != nil {
		v.Metadata = nil
		if len(r.Metadata) > 0 {
			v.Metadata = r.Metadata
		}
	}
}

// Validate checks the fields the request gives.
func (r UpdateVMRequest) Validate() error {
	for _, f := range []struct {
		name string
		v    *string
	}{{"display_name", r.DisplayName}, {"description", r.Description}} {
		if f.v == nil {
			continue
		}
		if err := ValidateDisplayText(f.name, *f.v); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		v    *string
		v6   bool
	}{{"access_ipv4", r.AccessIPv4, false}, {"access_ipv6", r.AccessIPv6, true}} {
		if f.v == nil {
			continue
		}
		if err := ValidateAccessIP(f.name, *f.v, f.v6); err != nil {
			return err
		}
	}
	return ValidateMetadata(r.Metadata)
}

// MaxDisplayTextLen bounds a VM's display name and description, in
// characters (Unicode code points), as Nova bounds a server's name and
// description.
const MaxDisplayTextLen = 255

// ValidateDisplayText checks the free text of a VM's display name or
// description (field names it in the error): valid UTF-8, at most
// MaxDisplayTextLen characters and no control characters (newlines and
// tabs included). Empty text is valid: it clears the field.
func ValidateDisplayText(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8; send the text encoded as UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > MaxDisplayTextLen {
		return fmt.Errorf("%s is %d characters; use at most %d", field, n, MaxDisplayTextLen)
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return fmt.Errorf("%s holds control character %U; use plain text on one line", field, c)
		}
	}
	return nil
}

// maxAccessIPLen bounds the text of an access address echoed back in an
// error: the longest IPv6 address is 45 characters.
const maxAccessIPLen = 64

// ValidateAccessIP checks a VM's access address (field names it in the
// error): empty, or an address of the field's family as net/netip
// parses it, an IPv6 one when v6, else an IPv4 one. An IPv4-mapped IPv6
// address (::ffff:203.0.113.10) is an IPv6 address, not an IPv4 one; a
// zone (fe80::1%eth0), a prefix length or a port is refused. The address
// is stored as CanonicalAccessIP gives it.
func ValidateAccessIP(field, s string, v6 bool) error {
	if s == "" {
		return nil
	}
	family, other, example := "IPv4", "access_ipv6", "203.0.113.10"
	if v6 {
		family, other, example = "IPv6", "access_ipv4", "2001:db8::10"
	}
	if len(s) > maxAccessIPLen {
		return fmt.Errorf("%s is %d bytes long, not an %s address; give one like %s", field, len(s), family, example)
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return fmt.Errorf("%s %q is not an %s address; give one like %s", field, s, family, example)
	case a.Zone() != "":
		return fmt.Errorf("%s %q has a zone (%%%s); give the %s address without one, like %s", field, s, a.Zone(), family, example)
	case v6 && a.Is4():
		return fmt.Errorf("%s %q is an IPv4 address; give it as %s, or an IPv6 address like %s", field, s, other, example)
	case !v6 && a.Is4In6():
		return fmt.Errorf("%s %q is an IPv4-mapped IPv6 address; give the IPv4 address itself, like %s", field, s, a.Unmap())
	case !v6 && !a.Is4():
		return fmt.Errorf("%s %q is an IPv6 address; give it as %s, or an IPv4 address like %s", field, s, other, example)
	}
	return nil
}

// CanonicalAccessIP is the canonical form of an access address that
// ValidateAccessIP accepts (netip's: "2001:DB8:0::1" is "2001:db8::1");
// s itself when it is empty or no address.
func CanonicalAccessIP(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	return a.String()
}

// VMActionRequest is the body of POST /v1/vms/{name}/{start,stop,reboot}.
type VMActionRequest struct {
	// Force skips the graceful ACPI shutdown on stop.
	Force bool `json:"force,omitempty"`
	// TimeoutSeconds bounds a graceful stop before QEMU is killed.
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
}

// Image kinds.
const (
	ImageDisk       = "disk"        // a qcow2 root disk, booted by firmware
	ImageKernel     = "kernel"      // kernel + initrd, direct boot
	ImageKernelDisk = "kernel+disk" // root disk booted with a given kernel
)

// ImageFile is one file of an image.
type ImageFile struct {
	Role   string `json:"role"` // kernel, initrd or disk
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Image is an entry of the controller's image store.
type Image struct {
	Name      string      `json:"name"`
	Kind      string      `json:"kind"`
	Cmdline   string      `json:"cmdline,omitempty"`
	Files     []ImageFile `json:"files"`
	CreatedAt time.Time   `json:"created_at"`
}

// File returns the image's file with the given role, if any.
func (im Image) File(role string) (ImageFile, bool) {
	for _, f := range im.Files {
		if f.Role == role {
			return f, true
		}
	}
	return ImageFile{}, false
}

// Image file roles, the multipart field names of POST /v1/images.
const (
	RoleKernel = "kernel"
	RoleInitrd = "initrd"
	RoleDisk   = "disk"
)

// ImportImageMeta is the "meta" part of the multipart POST /v1/images.
type ImportImageMeta struct {
	Name    string `json:"name"`
	Cmdline string `json:"cmdline,omitempty"`
}

// Version is the body of GET /v1/version.
type Version struct {
	Version string `json:"version"`
	Store   string `json:"store"` // sqlite or postgres
	// Auth says the controller asks for API tokens (a cluster with a
	// CA); without it every caller is an admin.
	Auth bool `json:"auth,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// MaxNameLen bounds VM, image, host and project names (a DNS label).
const MaxNameLen = 63

// ValidateName checks a VM, image, host or project name and returns an
// error that says what a good one looks like.
func ValidateName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name is required", kind)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%s name %q is %d characters; use at most %d", kind, name, len(name), MaxNameLen)
	case !nameRE.MatchString(name):
		return fmt.Errorf("%s name %q is invalid: use lowercase letters, digits and '-', starting and ending with a letter or digit", kind, name)
	}
	return nil
}
