package service

import (
	"context"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// HostServiceUpdate changes a host's scheduling and records an
// operator's word about it, as Nova's os-services does; nil fields are
// left as they are.
type HostServiceUpdate struct {
	Enabled        *bool
	DisabledReason *string // kept while the host is disabled; enabling clears it
	ForcedDown     *bool
}

// UpdateHostService applies u to a host. Enabling a host being drained
// is refused, as SetHostEnabled refuses it.
func (c *Service) UpdateHostService(ctx context.Context, name string, u HostServiceUpdate) (api.Host, error) {
	if u.Enabled != nil && *u.Enabled {
		if _, err := c.SetHostEnabled(ctx, name, true); err != nil {
			return api.Host{}, err
		}
	}
	h, err := c.store.UpdateHost(ctx, name, func(h *api.Host) error {
		if u.Enabled != nil {
			h.Enabled = *u.Enabled
			if h.Enabled {
				h.DisabledReason = ""
			}
		}
		if u.DisabledReason != nil && !h.Enabled {
			h.DisabledReason = *u.DisabledReason
		}
		if u.ForcedDown != nil {
			h.ForcedDown = *u.ForcedDown
		}
		return nil
	})
	if err != nil {
		if errs.Code(err) == api.CodeNotFound {
			return api.Host{}, errs.NotFound("host %q not found; list hosts with: godwit host list", name)
		}
		return api.Host{}, err
	}
	c.log.Info("host service changed", "host", name, "enabled", h.Enabled, "disabled_reason", h.DisabledReason, "forced_down", h.ForcedDown)
	return c.Host(ctx, name)
}
