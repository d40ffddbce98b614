package service

import (
	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/scheduler"
)

// pick is scheduler.Pick under the cluster's TCG gate.
func (c *Service) pick(hosts []api.Host, p scheduler.Placement) (api.Host, error) {
	p.AllowUnsafeTCG = c.cfg.AllowUnsafeTCGMigration
	return scheduler.Pick(hosts, p)
}

// refuseUnsafeTCG is scheduler.RefuseUnsafeTCG unless the cluster allows
// unsafe TCG live migrations (--allow-unsafe-tcg-migration).
func (c *Service) refuseUnsafeTCG(hosts ...api.Host) error {
	if c.cfg.AllowUnsafeTCGMigration {
		return nil
	}
	return scheduler.RefuseUnsafeTCG(hosts...)
}

// Pick is scheduler.Pick under the cluster's TCG gate.
func (c *Service) Pick(hosts []api.Host, p scheduler.Placement) (api.Host, error) {
	return c.pick(hosts, p)
}
