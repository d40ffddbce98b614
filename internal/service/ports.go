package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/store"
)

// macPrefix starts every MAC godwit hands out: 02 (locally administered,
// unicast) and "gw" in ASCII, leaving 24 random bits. The store refuses a
// MAC already taken anywhere in the cluster, and allocation draws again.
var macPrefix = [3]byte{0x02, 0x67, 0x77}

// allocAttempts bounds the draws of a MAC, and the retries of a lowest
// free address that another controller took first.
const allocAttempts = 8

// allocatePorts hands out the NICs a new VM asks for: a MAC each, and
// the asked-for or lowest free address of each network, recorded all
// or nothing. Allocations run one at a time in this controller (netMu);
// the store's uniqueness holds them apart from any other.
func (c *Service) allocatePorts(ctx context.Context, vmID string, reqs []api.NICRequest) ([]api.Port, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	c.netMu.Lock()
	defer c.netMu.Unlock()
	nets := map[string]api.Network{}
	for _, r := range reqs {
		n, err := c.store.Network(ctx, r.Network)
		if errors.Is(err, errs.ErrNotFound) {
			return nil, errs.Invalid("network %q not found; list networks with: godwit network list, or make it with: godwit network create", r.Network)
		}
		if err != nil {
			return nil, err
		}
		nets[r.Network] = n
	}
	for attempt := 1; ; attempt++ {
		ports, err := c.drawPorts(ctx, vmID, reqs, nets)
		if err != nil {
			return nil, err
		}
		err = c.store.CreatePorts(ctx, ports)
		if err == nil {
			return ports, nil
		}
		// A conflict on an address the VM asked for is the user's to
		// fix; one on a drawn MAC or a lowest free address is a race
		// with another controller, or bad luck: draw again.
		if !errors.Is(err, errs.ErrConflict) || attempt == allocAttempts || askedTaken(err, reqs) {
			return nil, err
		}
	}
}

// askedTaken says whether a conflict is on an address some request asked
// for by name.
func askedTaken(err error, reqs []api.NICRequest) bool {
	for _, r := range reqs {
		if r.IP != "" && strings.Contains(err.Error(), "address "+r.IP+" ") {
			return true
		}
	}
	return false
}

// drawPorts picks the MACs and addresses of one attempt.
func (c *Service) drawPorts(ctx context.Context, vmID string, reqs []api.NICRequest, nets map[string]api.Network) ([]api.Port, error) {
	now := time.Now().UTC()
	taken := map[string]map[netip.Addr]bool{} // by network
	ports := make([]api.Port, 0, len(reqs))
	for _, r := range reqs {
		n := nets[r.Network]
		prefix, _ := netip.ParsePrefix(n.Subnet)
		used, ok := taken[n.Name]
		if !ok {
			existing, err := c.store.Ports(ctx, store.PortFilter{Network: n.Name})
			if err != nil {
				return nil, err
			}
			used = map[netip.Addr]bool{}
			for _, p := range existing {
				if a, err := netip.ParseAddr(p.IP); err == nil {
					used[a] = true
				}
			}
			if gw, err := netip.ParseAddr(n.Gateway); err == nil {
				used[gw] = true
			}
			taken[n.Name] = used
		}
		var addr netip.Addr
		if r.IP != "" {
			a, err := netip.ParseAddr(r.IP)
			switch {
			case err != nil || !a.Is4():
				return nil, errs.Invalid("ip %q is not an IPv4 address", r.IP)
			case !usable(prefix, a):
				return nil, errs.Invalid("ip %s is outside network %s's host addresses (%s to %s)", a, n.Name, firstHost(prefix), lastHost(prefix))
			case a.String() == n.Gateway:
				return nil, errs.Conflict("ip %s is network %s's gateway: ask for another, or none to get the lowest free one", a, n.Name)
			case used[a]:
				return nil, errs.Conflict("ip %s is taken on network %s: ask for another, or none to get the lowest free one", a, n.Name)
			}
			addr = a
		} else {
			for a := firstHost(prefix); usable(prefix, a); a = a.Next() {
				if !used[a] {
					addr = a
					break
				}
			}
			if !addr.IsValid() {
				return nil, errs.NoCapacity("network %s (%s) has no free address left: delete VMs on it, or use another network", n.Name, n.Subnet)
			}
		}
		used[addr] = true
		ports = append(ports, api.Port{
			ID: NewID(), Network: n.Name, VMID: vmID, MAC: randomMAC(), IP: addr.String(),
			PortSecurity: !r.NoPortSecurity, CreatedAt: now,
		})
	}
	return ports, nil
}

func randomMAC() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return net.HardwareAddr{macPrefix[0], macPrefix[1], macPrefix[2], b[0], b[1], b[2]}.String()
}

// releasePorts frees a VM's MACs and addresses.
func (c *Service) releasePorts(ctx context.Context, vmID string) error {
	if err := c.store.DeletePorts(ctx, vmID); err != nil {
		return fmt.Errorf("release the ports of vm %s: %w", vmID, err)
	}
	return nil
}

// nics is what a VM's host plugs for its ports: each port with its
// network's bridge, MTU, prefix and gateway. Networks cannot change or go
// while ports use them, so every host gets the same, and the guest's
// seed is the same bytes wherever the VM runs.
func (c *Service) nics(ctx context.Context, vm api.VM) ([]hostapi.NIC, error) {
	out := make([]hostapi.NIC, 0, len(vm.Ports))
	for _, p := range vm.Ports {
		n, err := c.store.Network(ctx, p.Network)
		if err != nil {
			return nil, fmt.Errorf("vm %s: network %s of port %s: %w", vm.Name, p.Network, p.MAC, err)
		}
		out = append(out, hostapi.NIC{
			Port: p.ID, Network: n.Name, MAC: p.MAC, Address: cidr(p.IP, n), Gateway: n.Gateway,
			MTU: n.MTU, Bridge: n.Bridge, PortSecurity: p.PortSecurity,
		})
	}
	return out, nil
}

// releaseOrphanPorts frees the ports of VMs that have no record: a
// controller stopped between recording a VM's ports and its record, or
// between removing the record and the ports. Run at start, before any
// create can be between those two steps.
func (c *Service) releaseOrphanPorts(ctx context.Context) {
	ports, err := c.store.Ports(ctx, store.PortFilter{})
	if err != nil || len(ports) == 0 {
		return
	}
	vms, err := c.store.VMs(ctx, store.VMFilter{})
	if err != nil {
		return
	}
	ids := map[string]bool{}
	for _, v := range vms {
		ids[v.ID] = true
	}
	for _, p := range ports {
		if ids[p.VMID] {
			continue
		}
		ids[p.VMID] = true // once per VM
		if err := c.releasePorts(ctx, p.VMID); err != nil {
			c.log.Error("free orphan ports", "vm_id", p.VMID, "err", err)
			continue
		}
		c.log.Warn("freed the ports of a vm that has no record (a create or delete cut short)", "vm_id", p.VMID)
	}
}
