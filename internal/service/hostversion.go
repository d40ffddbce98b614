package service

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/version"
)

// Agents of another release: the controller accepts an agent whose
// version version.Compatible allows (the same major, minor versions at
// most one apart), so a cluster is upgraded one minor release at a time
// while it runs. It refuses the heartbeats of any other with 403 and the
// rule in the message, which the agent logs, and lists the host as
// incompatible with the same reason: nothing it reports is recorded, so
// the host goes down, and nothing is placed on it, until its agent or the
// controller is upgraded. Refusals are kept in memory only: a restarted
// controller learns them again from the next heartbeat.

// refusedHosts are the hosts whose recent heartbeats were refused.
type refusedHosts struct {
	mu    sync.Mutex
	hosts map[string]api.Host // the refused report, State and StateReason set
}

// checkVersion refuses a heartbeat from an agent of an incompatible
// version, and forgets an earlier refusal once the host's agent fits.
func (c *Service) checkVersion(hb hostapi.Heartbeat) error {
	ctrl := c.cfg.Version
	if ctrl == "" {
		ctrl = version.Version
	}
	err := version.Compatible(ctrl, hb.Host.Version)
	c.refused.mu.Lock()
	defer c.refused.mu.Unlock()
	if err == nil {
		delete(c.refused.hosts, hb.Host.Name)
		return nil
	}
	if c.refused.hosts == nil {
		c.refused.hosts = map[string]api.Host{}
	}
	h := hb.Host
	_, known := c.refused.hosts[h.Name]
	h.State, h.StateReason, h.LastHeartbeat = api.HostIncompatible, err.Error(), time.Now().UTC()
	c.refused.hosts[h.Name] = h
	if !known {
		c.log.Warn("heartbeat refused: the agent's version does not work with this controller", "host", h.Name, "agent_version", h.Version, "controller_version", ctrl, "err", err)
	}
	return errs.Forbidden("host %s refused: %v (docs/deploy.md, Upgrades)", h.Name, err)
}

// withRefused shows the hosts whose agents were refused lately as
// incompatible: a known host in place of its stored state, a new one
// added. A refusal older than HostDownAfter has lapsed (the agent
// stopped, likely for its upgrade).
func (c *Service) withRefused(hosts []api.Host) []api.Host {
	c.refused.mu.Lock()
	defer c.refused.mu.Unlock()
	stale := time.Now().Add(-c.cfg.HostDownAfter)
	for name, r := range c.refused.hosts {
		if r.LastHeartbeat.Before(stale) {
			delete(c.refused.hosts, name)
			continue
		}
		i := slices.IndexFunc(hosts, func(h api.Host) bool { return h.Name == name })
		if i < 0 {
			hosts = append(hosts, r)
			continue
		}
		h := &hosts[i]
		h.State, h.StateReason, h.Version, h.LastHeartbeat = r.State, r.StateReason, r.Version, r.LastHeartbeat
	}
	slices.SortFunc(hosts, func(a, b api.Host) int { return strings.Compare(a.Name, b.Name) })
	return hosts
}
