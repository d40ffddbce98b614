package service

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/store"
)

// Subnet sizes a network may have: from a /8 down to a /29, which holds a
// gateway and five VMs. Smaller ones are more trouble than use.
const (
	minPrefix = 8
	maxPrefix = 29
)

// CreateNetwork validates and records a network. Subnets of two networks
// never overlap: an address means one VM. Networks are made one at a
// time, so the overlap check and the insert are atomic.
func (c *Service) CreateNetwork(ctx context.Context, req api.CreateNetworkRequest) (api.Network, error) {
	if err := api.ValidateName("network", req.Name); err != nil {
		return api.Network{}, errs.Invalid("%v", err)
	}
	prefix, err := parseSubnet(req.Subnet)
	if err != nil {
		return api.Network{}, err
	}
	gw := firstHost(prefix)
	if req.Gateway != "" {
		if gw, err = netip.ParseAddr(req.Gateway); err != nil || !gw.Is4() {
			return api.Network{}, errs.Invalid("gateway %q is not an IPv4 address", req.Gateway)
		}
		if !usable(prefix, gw) {
			return api.Network{}, errs.Invalid("gateway %s is not a host address of %s: use one from %s to %s", gw, prefix, firstHost(prefix), lastHost(prefix))
		}
	}
	mtu := req.MTU
	if mtu == 0 {
		mtu = api.DefaultMTU
	}
	if mtu < api.MinMTU || mtu > api.MaxMTU {
		return api.Network{}, errs.Invalid("mtu must be between %d and %d, not %d", api.MinMTU, api.MaxMTU, mtu)
	}

	c.netMu.Lock()
	defer c.netMu.Unlock()
	nets, err := c.store.Networks(ctx)
	if err != nil {
		return api.Network{}, err
	}
	for _, n := range nets {
		if n.Name == req.Name {
			return api.Network{}, errs.Conflict("network %q already exists (subnet %s); choose another name or delete it first", n.Name, n.Subnet)
		}
		if other, err := netip.ParsePrefix(n.Subnet); err == nil && other.Overlaps(prefix) {
			return api.Network{}, errs.Conflict("subnet %s overlaps network %s (%s): choose a subnet outside it", prefix, n.Name, other)
		}
	}
	n := api.Network{
		Name: req.Name, Type: api.NetworkBridge, Subnet: prefix.String(), Gateway: gw.String(), MTU: mtu,
		Bridge: bridgeName(req.Name), CreatedAt: time.Now().UTC(),
	}
	if err := c.store.CreateNetwork(ctx, n); err != nil {
		return api.Network{}, err
	}
	c.log.Info("network created", "network", n.Name, "subnet", n.Subnet, "gateway", n.Gateway, "mtu", n.MTU)
	return n, nil
}

// Networks lists the networks.
func (c *Service) Networks(ctx context.Context) ([]api.Network, error) { return c.store.Networks(ctx) }

// Network returns one network, or a not-found error that says how to
// list them.
func (c *Service) Network(ctx context.Context, name string) (api.Network, error) {
	n, err := c.store.Network(ctx, name)
	if errors.Is(err, errs.ErrNotFound) {
		return n, errs.NotFound("network %q not found; list networks with: godwit network list", name)
	}
	return n, err
}

// DeleteNetwork removes a network no VM uses; while ports use it, the
// conflict names their VMs.
func (c *Service) DeleteNetwork(ctx context.Context, name string) error {
	if _, err := c.Network(ctx, name); err != nil {
		return err
	}
	err := c.store.DeleteNetwork(ctx, name)
	if !errors.Is(err, errs.ErrConflict) {
		if err == nil {
			c.log.Info("network deleted", "network", name)
		}
		return err
	}
	ports, perr := c.store.Ports(ctx, store.PortFilter{Network: name})
	if perr != nil {
		return err
	}
	byID := map[string]string{}
	if vms, err := c.store.VMs(ctx, store.VMFilter{}); err == nil {
		for _, v := range vms {
			byID[v.ID] = v.Name
		}
	}
	var names []string
	for _, p := range ports {
		// A port without a VM is one a crash cut short: its ID it is.
		names = append(names, cmp.Or(byID[p.VMID], p.VMID))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return errs.Conflict("network %s is in use by %d port(s) of VM(s) %s: delete those VMs first", name, len(ports), strings.Join(names, ", "))
}

// parseSubnet reads an IPv4 CIDR that names its network address.
func parseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return p, errs.Invalid("subnet %q is not an IPv4 CIDR such as 10.99.0.0/24", s)
	}
	if p.Bits() < minPrefix || p.Bits() > maxPrefix {
		return p, errs.Invalid("subnet %s: use a prefix from /%d to /%d", p, minPrefix, maxPrefix)
	}
	if p.Masked() != p {
		return p, errs.Invalid("subnet %s has host bits set: did you mean %s?", p, p.Masked())
	}
	return p, nil
}

// bridgeName is the Linux bridge of a network on every host: "gw-" and
// the name, or for long names its start and a hash, within 15 characters.
func bridgeName(network string) string {
	if len(network) <= 12 {
		return "gw-" + network
	}
	sum := sha256.Sum256([]byte(network))
	return "gw-" + network[:7] + "-" + hex.EncodeToString(sum[:2])
}

// firstHost and lastHost bound a subnet's host addresses (its network
// and broadcast addresses excluded).
func firstHost(p netip.Prefix) netip.Addr { return p.Addr().Next() }

func lastHost(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n |= 1<<(32-p.Bits()) - 1 // broadcast
	n--
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// usable says whether a is a host address of p.
func usable(p netip.Prefix, a netip.Addr) bool {
	return p.Contains(a) && a.Compare(firstHost(p)) >= 0 && a.Compare(lastHost(p)) <= 0
}

// cidr is a port's address with its network's prefix length, as the
// guest configures it.
func cidr(ip string, n api.Network) string {
	p, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return ip
	}
	return fmt.Sprintf("%s/%d", ip, p.Bits())
}
