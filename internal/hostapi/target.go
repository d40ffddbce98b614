package hostapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/godwit/godwit/internal/errs"
)

// Migration targets. QEMU takes a migration URI of many kinds — exec:
// runs a shell command, file: and unix: write the guest's memory to a
// path — and connects a block copy to any NBD server it is named. An
// agent hands QEMU only what these functions accept: tcp:HOST:PORT for
// the memory stream and HOST:PORT for the disk, HOST an IP address
// (bracketed when IPv6), PORT 1-65535. The controller, which knows every
// host's registered address, also checks that the destination named
// itself (TargetOnHost).

// ParseMigrationURI returns the address of a tcp:HOST:PORT migration URI,
// or an invalid-input error that says what is accepted.
func ParseMigrationURI(uri string) (netip.AddrPort, error) {
	rest, ok := strings.CutPrefix(uri, "tcp:")
	if !ok {
		return netip.AddrPort{}, errs.Invalid("migration uri %q is refused: only tcp:HOST:PORT is accepted, HOST an IP address ([addr] for IPv6), PORT 1-65535", uri)
	}
	ap, err := parseTarget(rest)
	if err != nil {
		return ap, errs.Invalid("migration uri %q is refused: %v; send tcp:HOST:PORT", uri, err)
	}
	return ap, nil
}

// ParseNBDAddress returns the address of a block copy's NBD target,
// HOST:PORT, or an invalid-input error that says what is accepted.
func ParseNBDAddress(addr string) (netip.AddrPort, error) {
	ap, err := parseTarget(addr)
	if err != nil {
		return ap, errs.Invalid("nbd address %q is refused: %v; send HOST:PORT", addr, err)
	}
	return ap, nil
}

// CheckTargets checks a migration's URI and, when not empty, its NBD
// address.
func CheckTargets(uri, nbd string) error {
	if _, err := ParseMigrationURI(uri); err != nil {
		return err
	}
	if nbd != "" {
		if _, err := ParseNBDAddress(nbd); err != nil {
			return err
		}
	}
	return nil
}

// parseTarget parses HOST:PORT with HOST an IP literal: no names (which
// would be resolved where the stream leaves), no zones, no options.
func parseTarget(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	switch {
	case err != nil:
		return ap, errors.New("want HOST:PORT with HOST an IP address ([addr] for IPv6) and PORT 1-65535")
	case ap.Addr().Zone() != "":
		return ap, errors.New("an address with a zone is not accepted")
	case ap.Addr().IsUnspecified() || ap.Addr().IsMulticast():
		return ap, fmt.Errorf("%s is no host's address", ap.Addr())
	case ap.Port() == 0:
		return ap, errors.New("port 0 is no port to connect to")
	}
	return ap, nil
}

// resolveTimeout bounds the lookup of a host registered under a name.
const resolveTimeout = 5 * time.Second

// TargetOnHost checks that a destination's migration targets (its
// IncomingReply) are well formed and on the address the host registered
// with: agentURL, its api.Host.Address. A host registered under a name
// may use any address the name resolves to; one registered on no address
// or an unspecified one (0.0.0.0, ::) receives on loopback, as the agent
// does then.
func TargetOnHost(ctx context.Context, in IncomingReply, agentURL string) error {
	if err := CheckTargets(in.URI, in.NBD); err != nil {
		return err
	}
	allowed, err := hostAddrs(ctx, agentURL)
	if err != nil {
		return err
	}
	uri, _ := ParseMigrationURI(in.URI)
	targets := []netip.AddrPort{uri}
	if in.NBD != "" {
		nbd, _ := ParseNBDAddress(in.NBD)
		targets = append(targets, nbd)
	}
	for _, t := range targets {
		if !allowedAddr(t.Addr(), allowed) {
			return errs.Invalid("the destination offered migration target %s, which is not its registered address %s; it is refused (check the agent's --listen and --advertise)", t, agentURL)
		}
	}
	return nil
}

// hostAddrs returns the addresses a host registered at agentURL may
// receive migrations on.
func hostAddrs(ctx context.Context, agentURL string) ([]netip.Addr, error) {
	u, err := url.Parse(agentURL)
	if err != nil || u.Host == "" {
		return nil, errs.Invalid("the destination's registered address %q is no URL; its migration target cannot be checked", agentURL)
	}
	host := u.Hostname()
	a, err := netip.ParseAddr(host)
	switch {
	case host == "" || err == nil && a.IsUnspecified(): // every address of its machine: it receives on loopback
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}, nil
	case err == nil:
		return []netip.Addr{a.Unmap()}, nil
	}
	rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return nil, errs.Invalid("the destination's registered name %s does not resolve (%v); its migration target cannot be checked", host, err)
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	return addrs, nil
}

func allowedAddr(a netip.Addr, allowed []netip.Addr) bool {
	a = a.Unmap()
	for _, b := range allowed {
		if a == b.WithZone("") {
			return true
		}
	}
	return false
}
