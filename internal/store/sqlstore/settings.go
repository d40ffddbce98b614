package sqlstore

import (
	"context"
	"errors"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// clusterSettings is the id of the one settings document.
const clusterSettings = "cluster"

func settingsIndex(*api.ClusterSettings) index { return index{id: clusterSettings} }

// ClusterSettings implements store.Store.
func (s *Store) ClusterSettings(ctx context.Context) (api.ClusterSettings, error) {
	v, err := s.settings.get(ctx, clusterSettings)
	if errors.Is(err, errs.ErrNotFound) {
		return api.ClusterSettings{}, nil
	}
	return v, err
}

// UpdateClusterSettings implements store.Store.
func (s *Store) UpdateClusterSettings(ctx context.Context, fn func(*api.ClusterSettings) error) (api.ClusterSettings, error) {
	v, err := s.settings.update(ctx, clusterSettings, fn)
	if !errors.Is(err, errs.ErrNotFound) {
		return v, err
	}
	// The first update: create the record, then update it (a concurrent
	// first update that created it first is as good).
	if err := s.settings.create(ctx, api.ClusterSettings{}); err != nil && !errors.Is(err, errs.ErrConflict) {
		return v, err
	}
	return s.settings.update(ctx, clusterSettings, fn)
}
