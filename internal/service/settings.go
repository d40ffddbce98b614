package service

import (
	"cmp"
	"context"
	"fmt"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// MaxConcurrencyLimit bounds the concurrency limits, in settings and
// requests: far above what one link carries usefully.
const MaxConcurrencyLimit = 64

// BuiltinSettings are godwit's own defaults, where neither a request nor
// the cluster's settings say (docs/intents.md says why these): two moves
// out of a draining host at once, of which one sends memory while the
// next prepares its destination; one into each destination, four in the
// cluster; QEMU's own bandwidth cap and each policy's own downtime.
var BuiltinSettings = api.ClusterSettings{
	Policy:                api.PolicyAuto,
	MaxPerSource:          2,
	MaxTransfersPerSource: 1,
	MaxPerDestination:     1,
	MaxPerCluster:         4,
}

// Settings returns the cluster's settings, as set, and the built-in
// defaults that apply where a setting is zero.
func (c *Service) Settings(ctx context.Context) (api.ClusterSettingsReply, error) {
	s, err := c.settings(ctx)
	return api.ClusterSettingsReply{Settings: s, Defaults: BuiltinSettings}, err
}

// EffectiveSettings is what applies where a request leaves a field out:
// each setting, or its built-in default.
func (c *Service) EffectiveSettings(ctx context.Context) (api.ClusterSettings, error) {
	s, err := c.settings(ctx)
	b := BuiltinSettings
	return api.ClusterSettings{
		BandwidthMBPerS:       cmp.Or(s.BandwidthMBPerS, b.BandwidthMBPerS),
		MaxDowntimeMS:         cmp.Or(s.MaxDowntimeMS, b.MaxDowntimeMS),
		Policy:                cmp.Or(s.Policy, b.Policy),
		MaxPerSource:          cmp.Or(s.MaxPerSource, b.MaxPerSource),
		MaxTransfersPerSource: cmp.Or(s.MaxTransfersPerSource, b.MaxTransfersPerSource),
		MaxPerDestination:     cmp.Or(s.MaxPerDestination, b.MaxPerDestination),
		MaxPerCluster:         cmp.Or(s.MaxPerCluster, b.MaxPerCluster),
		InsecureMigration:     s.InsecureMigration,
		UpdatedAt:             s.UpdatedAt,
	}, err
}

// settings reads the settings, from memory after the first read: this
// process is their only writer.
func (c *Service) settings(ctx context.Context) (api.ClusterSettings, error) {
	c.settingsMu.Lock()
	defer c.settingsMu.Unlock()
	if c.cached != nil {
		return *c.cached, nil
	}
	s, err := c.store.ClusterSettings(ctx)
	if err != nil {
		return s, err
	}
	c.cached = &s
	return s, nil
}

// UpdateSettings changes the settings u names, after checking them all.
func (c *Service) UpdateSettings(ctx context.Context, u api.ClusterSettingsUpdate) (api.ClusterSettingsReply, error) {
	for _, l := range []struct {
		name string
		v    *int
		max  int
		how  string
	}{
		{"bandwidth_mb_per_s", u.BandwidthMBPerS, MaxBandwidthMBPerS, "MB/s"},
		{"max_downtime_ms", u.MaxDowntimeMS, MaxDowntimeLimitMS, "ms"},
		{"max_per_source", u.MaxPerSource, MaxConcurrencyLimit, "moves"},
		{"max_transfers_per_source", u.MaxTransfersPerSource, MaxConcurrencyLimit, "transfers"},
		{"max_per_destination", u.MaxPerDestination, MaxConcurrencyLimit, "moves"},
		{"max_per_cluster", u.MaxPerCluster, MaxConcurrencyLimit, "migrations"},
	} {
		if l.v != nil && (*l.v < 0 || *l.v > l.max) {
			return api.ClusterSettingsReply{}, errs.Invalid("%s must be between 1 and %d %s (0 for the built-in default)", l.name, l.max, l.how)
		}
	}
	if u.Policy != nil && *u.Policy != "" && !u.Policy.Known() {
		return api.ClusterSettingsReply{}, errs.Invalid("policy %q is unknown; use one of auto, pre-copy, auto-converge or post-copy (or \"\" for the built-in default)", *u.Policy)
	}
	c.settingsMu.Lock()
	defer c.settingsMu.Unlock()
	var wasInsecure bool
	s, err := c.store.UpdateClusterSettings(ctx, func(s *api.ClusterSettings) error {
		wasInsecure = s.InsecureMigration
		set(&s.BandwidthMBPerS, u.BandwidthMBPerS)
		set(&s.MaxDowntimeMS, u.MaxDowntimeMS)
		set(&s.Policy, u.Policy)
		set(&s.MaxPerSource, u.MaxPerSource)
		set(&s.MaxTransfersPerSource, u.MaxTransfersPerSource)
		set(&s.MaxPerDestination, u.MaxPerDestination)
		set(&s.MaxPerCluster, u.MaxPerCluster)
		set(&s.InsecureMigration, u.InsecureMigration)
		if per := cmp.Or(s.MaxPerSource, BuiltinSettings.MaxPerSource); s.MaxTransfersPerSource > per {
			return errs.Invalid("max_transfers_per_source (%d) cannot exceed max_per_source (%d): raise max_per_source or lower max_transfers_per_source",
				s.MaxTransfersPerSource, per)
		}
		return nil
	})
	if err != nil {
		return api.ClusterSettingsReply{}, err
	}
	c.cached = &s
	c.log.Info("cluster settings changed", "settings", s)
	if s.InsecureMigration && !wasInsecure && c.cfg.AgentTLS != nil {
		c.log.Warn("insecure_migration is on: live moves started from now on send guest memory and disks between hosts unencrypted and " +
			"unauthenticated; use it only on a trusted network (godwit cluster settings set --insecure-migration=false turns it off)")
	}
	return api.ClusterSettingsReply{Settings: s, Defaults: BuiltinSettings}, nil
}

// encryptMigrations says whether a migration starting now is encrypted:
// in a cluster with a CA, unless insecure_migration is on.
func (c *Service) encryptMigrations(ctx context.Context) (bool, error) {
	if c.cfg.AgentTLS == nil {
		return false, nil
	}
	s, err := c.settings(ctx)
	if err != nil {
		return false, fmt.Errorf("read the cluster's settings: %w", err)
	}
	return !s.InsecureMigration, nil
}

// set copies *from into *to when from is given.
func set[T any](to *T, from *T) {
	if from != nil {
		*to = *from
	}
}
