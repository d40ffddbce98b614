package agent

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/seed"
)

// network turns a VM's ports into the driver's NICs, with this host's
// uplinks, and writes the guest's NoCloud seed when the VM has ports,
// user-data or SSH keys. The seed is built from the request alone, so every host a
// VM runs on writes the same bytes: a live migration's destination
// attaches an identical device.
func (a *Agent) network(req hostapi.CreateVM) ([]driver.NIC, string, error) {
	if len(req.NICs) == 0 && req.UserData == "" && len(req.PublicKeys) == 0 {
		return nil, "", nil
	}
	nics := make([]driver.NIC, 0, len(req.NICs))
	cfg := seed.Config{InstanceID: req.ID, Hostname: req.Name, UserData: []byte(req.UserData), PublicKeys: req.PublicKeys}
	for _, n := range req.NICs {
		p, err := netip.ParsePrefix(n.Address)
		if err != nil || !p.Addr().Is4() {
			return nil, "", errs.Invalid("nic %s: bad address %q", n.MAC, n.Address)
		}
		nics = append(nics, driver.NIC{
			Port: n.Port, MAC: n.MAC, IP: p.Addr().String(), Bridge: n.Bridge,
			Uplink: a.cfg.Uplinks[n.Network], MTU: n.MTU, PortSecurity: n.PortSecurity,
		})
		cfg.NICs = append(cfg.NICs, seed.NIC{MAC: n.MAC, Address: n.Address, Gateway: n.Gateway, MTU: n.MTU})
	}
	dir := filepath.Join(a.cfg.StateDir, "seeds")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("seed directory: %w", err)
	}
	path := filepath.Join(dir, req.ID+".iso")
	if err := seed.WriteFile(path, cfg); err != nil {
		return nil, "", fmt.Errorf("vm %s: write its seed: %w", req.ID, err)
	}
	return nics, path, nil
}

// removeSeed removes a VM's seed once the VM has left this host.
func (a *Agent) removeSeed(id string) {
	if err := os.Remove(filepath.Join(a.cfg.StateDir, "seeds", id+".iso")); err != nil && !os.IsNotExist(err) {
		a.log.Warn("remove seed", "id", id, "err", err)
	}
}

// removeOrphanSeeds removes the seeds of VMs the driver does not have
// (an agent stopped between a VM's removal and its seed's).
func (a *Agent) removeOrphanSeeds(known []driver.Status) {
	ents, err := os.ReadDir(filepath.Join(a.cfg.StateDir, "seeds"))
	if err != nil {
		return
	}
	have := map[string]bool{}
	for _, s := range known {
		have[s.ID+".iso"] = true
	}
	for _, e := range ents {
		if !have[e.Name()] {
			a.removeSeed(strings.TrimSuffix(e.Name(), ".iso"))
		}
	}
}
