package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
)

// clusterStatus is godwit status's one screen, and its -o json/yaml.
type clusterStatus struct {
	// Hosts is nil for a member (hosts are an admin's to see).
	Hosts      []api.Host      `json:"hosts"`
	VMsByState map[string]int  `json:"vms_by_state"`
	Intents    []api.Intent    `json:"intents"`    // running
	Migrations []api.Migration `json:"migrations"` // not yet ended
}

// statusCmd shows the cluster on one screen: hosts, VMs by state, and
// what is running.
func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "The cluster on one screen: hosts, VMs by state, running intents and migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.status(cmd.Context())
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(st)
			}
			return a.writeStatus(st, time.Now())
		},
	}
}

func (a *app) status(ctx context.Context) (clusterStatus, error) {
	c := a.client()
	st := clusterStatus{VMsByState: map[string]int{}}
	hs, err := c.Hosts(ctx)
	switch {
	case api.IsCode(err, api.CodeForbidden):
	case err != nil:
		return st, err
	default:
		st.Hosts = hs
	}
	vms, err := c.VMs(ctx)
	if err != nil {
		return st, err
	}
	for _, v := range vms {
		st.VMsByState[v.State]++
	}
	ins, err := c.Intents(ctx)
	if err != nil {
		return st, err
	}
	st.Intents = slices.DeleteFunc(ins, func(in api.Intent) bool { return in.State.Final() })
	ms, err := c.Migrations(ctx, "")
	if err != nil {
		return st, err
	}
	st.Migrations = slices.DeleteFunc(ms, func(m api.Migration) bool { return m.State.Final() })
	return st, nil
}

func (a *app) writeStatus(st clusterStatus, now time.Time) error {
	if st.Hosts != nil {
		if err := writeHosts(a, st.Hosts, now); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(a.out, "hosts: an admin's to see")
	}
	total := 0
	var by []string
	for _, s := range slices.Sorted(maps.Keys(st.VMsByState)) {
		total += st.VMsByState[s]
		by = append(by, fmt.Sprintf("%d %s", st.VMsByState[s], s))
	}
	fmt.Fprintf(a.out, "\nVMs: %d", total)
	if len(by) > 0 {
		fmt.Fprintf(a.out, " (%s)", strings.Join(by, ", "))
	}
	fmt.Fprintln(a.out)
	fmt.Fprintf(a.out, "\nIntents running: %d\n", len(st.Intents))
	if len(st.Intents) > 0 {
		if err := writeIntents(a.out, st.Intents, now); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.out, "\nMigrations running: %d\n", len(st.Migrations))
	if len(st.Migrations) == 0 {
		return nil
	}
	t := newTable(a.out, "ID", "VM", "KIND", "STATE", "FROM", "TO", "PROGRESS", "AGE")
	for _, m := range st.Migrations {
		t.row(m.ID, m.VM, string(m.Kind), string(m.State), m.Source, m.Destination, fmt.Sprintf("%.0f%%", migrationPercent(m.Progress)), age(m.CreatedAt, now))
	}
	return t.flush()
}
