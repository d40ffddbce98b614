package api

import (
	"context"
	"net/http"
	"time"
)

// ClusterSettings are the cluster's defaults: each applies where a
// request leaves its field out (zero). A zero setting leaves godwit's
// built-in default, shown beside it in Defaults.
type ClusterSettings struct {
	// Each live migration's tuning (migrate, and a drain's moves).
	BandwidthMBPerS int    `json:"bandwidth_mb_per_s"` // MB/s (api.MB); 0: QEMU's own cap
	MaxDowntimeMS   int    `json:"max_downtime_ms"`    // 0: the policy's (auto: 50 ms; the others QEMU's 300 ms)
	Policy          Policy `json:"policy"`             // "": auto
	// A drain's concurrency limits (docs/intents.md).
	MaxPerSource          int `json:"max_per_source"`
	MaxTransfersPerSource int `json:"max_transfers_per_source"`
	MaxPerDestination     int `json:"max_per_destination"`
	MaxPerCluster         int `json:"max_per_cluster"`
	// InsecureMigration, in a cluster with a CA, sends live moves' memory
	// and disk streams in the clear: for trusted lab networks, where TLS's
	// CPU cost matters. It changes nothing without a CA (moves are plain
	// there anyway) and nothing of the agents' API, which is TLS only.
	InsecureMigration bool `json:"insecure_migration"`

	UpdatedAt time.Time `json:"updated_at,omitempty"`
}

// ClusterSettingsReply is GET /v1/cluster/settings: the settings as set,
// and the built-in defaults that apply where a setting is zero.
type ClusterSettingsReply struct {
	Settings ClusterSettings `json:"settings"`
	Defaults ClusterSettings `json:"defaults"`
}

// ClusterSettingsUpdate is the body of PATCH /v1/cluster/settings: the
// settings to change (absent fields keep their value; 0 or "" returns a
// setting to the built-in default).
type ClusterSettingsUpdate struct {
	BandwidthMBPerS       *int    `json:"bandwidth_mb_per_s,omitempty"`
	MaxDowntimeMS         *int    `json:"max_downtime_ms,omitempty"`
	Policy                *Policy `json:"policy,omitempty"`
	MaxPerSource          *int    `json:"max_per_source,omitempty"`
	MaxTransfersPerSource *int    `json:"max_transfers_per_source,omitempty"`
	MaxPerDestination     *int    `json:"max_per_destination,omitempty"`
	MaxPerCluster         *int    `json:"max_per_cluster,omitempty"`
	InsecureMigration     *bool   `json:"insecure_migration,omitempty"`
}

// ClusterSettings returns the cluster's settings and the built-in defaults.
func (c *Client) ClusterSettings(ctx context.Context) (ClusterSettingsReply, error) {
	var r ClusterSettingsReply
	err := c.Do(ctx, http.MethodGet, "/v1/cluster/settings", nil, &r)
	return r, err
}

// UpdateClusterSettings changes the settings named in u.
func (c *Client) UpdateClusterSettings(ctx context.Context, u ClusterSettingsUpdate) (ClusterSettingsReply, error) {
	var r ClusterSettingsReply
	err := c.Do(ctx, http.MethodPatch, "/v1/cluster/settings", u, &r)
	return r, err
}
