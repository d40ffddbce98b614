package driver

import (
	"net"
	"regexp"

	"github.com/godwit/godwit/internal/errs"
)

var ifnameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$`)

// CheckNICs refuses NICs a host could not plug, in words the caller can
// act on, before anything is made: every driver calls it from Create.
// One MAC appears once per VM.
func CheckNICs(spec VMSpec) error {
	seen := map[string]bool{}
	for _, n := range spec.NICs {
		mac, err := net.ParseMAC(n.MAC)
		switch {
		case n.Port == "":
			return errs.Invalid("vm %s: a nic needs its port's id", spec.ID)
		case err != nil || len(mac) != 6:
			return errs.Invalid("vm %s: nic mac %q is not an Ethernet address", spec.ID, n.MAC)
		case mac[0]&1 == 1:
			return errs.Invalid("vm %s: nic mac %s is a multicast address", spec.ID, n.MAC)
		case seen[mac.String()]:
			return errs.Invalid("vm %s: mac %s appears on two nics", spec.ID, n.MAC)
		case net.ParseIP(n.IP) == nil || net.ParseIP(n.IP).To4() == nil:
			return errs.Invalid("vm %s: nic %s address %q is not IPv4", spec.ID, n.MAC, n.IP)
		case !ifnameRE.MatchString(n.Bridge):
			return errs.Invalid("vm %s: nic %s bridge %q is not an interface name", spec.ID, n.MAC, n.Bridge)
		case n.Uplink != "" && !ifnameRE.MatchString(n.Uplink):
			return errs.Invalid("vm %s: nic %s uplink %q is not an interface name", spec.ID, n.MAC, n.Uplink)
		case n.MTU < 576 || n.MTU > 65535:
			return errs.Invalid("vm %s: nic %s mtu %d is out of range", spec.ID, n.MAC, n.MTU)
		}
		seen[mac.String()] = true
	}
	return nil
}
