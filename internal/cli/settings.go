package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
)

// clusterCmd groups what applies to the whole cluster.
func (a *app) clusterCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Show and change the cluster's settings"}
	settings := &cobra.Command{Use: "settings", Short: "The cluster's defaults for what a request leaves out"}
	settings.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Show each setting, and the built-in default that applies while it is unset",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := a.client().ClusterSettings(cmd.Context())
			if err != nil {
				return err
			}
			return a.writeSettings(r)
		},
	}, a.settingsSetCmd())
	cmd.AddCommand(settings)
	return cmd
}

// settingsSetCmd changes the settings named by the flags given; 0 (or ""
// for the policy) returns a setting to its built-in default.
func (a *app) settingsSetCmd() *cobra.Command {
	var (
		bandwidth, downtime, perSource, transfers, perDest, perCluster int
		policy                                                         string
		insecureMigration                                              bool
	)
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Change cluster settings (only the flags given; 0 or \"\" returns one to its built-in default)",
		Example: "  godwit cluster settings set --max-per-cluster 8 --bandwidth 200\n" +
			"  godwit cluster settings set --policy \"\"    # back to the built-in auto\n" +
			"  godwit cluster settings set --insecure-migration=true   # trusted lab networks only",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var u api.ClusterSettingsUpdate
			f := cmd.Flags()
			for name, dst := range map[string]**int{"bandwidth": &u.BandwidthMBPerS, "max-downtime": &u.MaxDowntimeMS,
				"max-per-source": &u.MaxPerSource, "max-transfers-per-source": &u.MaxTransfersPerSource,
				"max-per-destination": &u.MaxPerDestination, "max-per-cluster": &u.MaxPerCluster} {
				if f.Changed(name) {
					v, _ := f.GetInt(name)
					*dst = &v
				}
			}
			if f.Changed("policy") {
				p := api.Policy(policy)
				u.Policy = &p
			}
			if f.Changed("insecure-migration") {
				u.InsecureMigration = &insecureMigration
			}
			if u == (api.ClusterSettingsUpdate{}) {
				return usageError{fmt.Errorf("nothing to change: give at least one setting's flag (see godwit cluster settings set --help)")}
			}
			r, err := a.client().UpdateClusterSettings(cmd.Context(), u)
			if err != nil {
				return err
			}
			return a.writeSettings(r)
		},
	}
	f := cmd.Flags()
	f.IntVar(&bandwidth, "bandwidth", 0, "bandwidth cap of each live migration, MB/s")
	f.IntVar(&downtime, "max-downtime", 0, "longest pause at each live switch-over, ms")
	f.StringVar(&policy, "policy", "", "convergence policy of each live migration: auto, pre-copy, auto-converge or post-copy")
	f.IntVar(&perSource, "max-per-source", 0, "a drain's moves out of the host at once")
	f.IntVar(&transfers, "max-transfers-per-source", 0, "of those, how many send memory at once (they share the host's link)")
	f.IntVar(&perDest, "max-per-destination", 0, "a drain's moves into one destination at once")
	f.IntVar(&perCluster, "max-per-cluster", 0, "a drain's migrations in the whole cluster at once")
	f.BoolVar(&insecureMigration, "insecure-migration", false,
		"in a cluster with a CA, send live moves' memory and disks unencrypted (=true; trusted networks only) or encrypted again (=false)")
	return cmd
}

// writeSettings prints the settings as a table: each one's value, and
// the built-in default where it is unset.
func (a *app) writeSettings(r api.ClusterSettingsReply) error {
	if a.structured() {
		return a.print(r)
	}
	s, d := r.Settings, r.Defaults
	t := newTable(a.out, "SETTING", "VALUE", "UNIT")
	num := func(v, def int, builtin string) string {
		if v != 0 {
			return strconv.Itoa(v)
		}
		if def != 0 {
			return strconv.Itoa(def) + " (built-in)"
		}
		return builtin + " (built-in)"
	}
	str := func(v, def string) string {
		if v != "" {
			return v
		}
		return def + " (built-in)"
	}
	t.row("bandwidth", num(s.BandwidthMBPerS, d.BandwidthMBPerS, "QEMU's cap"), "MB/s")
	t.row("max-downtime", num(s.MaxDowntimeMS, d.MaxDowntimeMS, "the policy's"), "ms")
	t.row("policy", str(string(s.Policy), string(d.Policy)), "")
	t.row("max-per-source", num(s.MaxPerSource, d.MaxPerSource, ""), "moves")
	t.row("max-transfers-per-source", num(s.MaxTransfersPerSource, d.MaxTransfersPerSource, ""), "transfers")
	t.row("max-per-destination", num(s.MaxPerDestination, d.MaxPerDestination, ""), "moves")
	t.row("max-per-cluster", num(s.MaxPerCluster, d.MaxPerCluster, ""), "migrations")
	t.row("insecure-migration", strconv.FormatBool(s.InsecureMigration), "")
	return t.flush()
}
