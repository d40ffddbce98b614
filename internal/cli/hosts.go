package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
)

func (a *app) hostCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "Show the cluster's hosts"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List hosts with their state and allocations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hs, err := a.client().Hosts(cmd.Context())
			if err != nil {
				return err
			}
			if a.json() {
				return printJSON(a.out, hs)
			}
			return writeHosts(a, hs, time.Now())
		},
	}, &cobra.Command{
		Use:   "show HOST",
		Short: "Show one host in detail",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := a.client().Host(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json() {
				return printJSON(a.out, h)
			}
			return writeHost(a, h, time.Now())
		},
	})
	return cmd
}

func writeHosts(a *app, hs []api.Host, now time.Time) error {
	t := newTable(a.out, "NAME", "STATE", "ENABLED", "ACCEL", "VCPUS", "MEMORY", "VMS", "HEARTBEAT")
	for _, h := range hs {
		t.row(h.Name, h.State, yesNo(h.Enabled), h.Accelerator,
			fmt.Sprintf("%d/%d", h.AllocatedCPUs, h.CPUs),
			mib(h.AllocatedMemoryMiB)+"/"+mib(h.MemoryMiB),
			fmt.Sprint(h.VMs), age(h.LastHeartbeat, now)+" ago")
	}
	return t.flush()
}

func writeHost(a *app, h api.Host, now time.Time) error {
	var pools []string
	for _, p := range h.Pools {
		pools = append(pools, fmt.Sprintf("%s (%s, %s free)", p.Name, p.Path, mib(p.FreeMiB)))
	}
	accel := h.Accelerator
	if h.AccelReason != "" {
		accel += " (" + h.AccelReason + ")"
	}
	return fields(a.out,
		"Name", h.Name, "Address", h.Address, "State", h.State, "Enabled", yesNo(h.Enabled),
		"Hypervisor", h.Hypervisor, "Accelerator", accel,
		"CPUs", fmt.Sprintf("%d allocated of %d (CPU model: %s)", h.AllocatedCPUs, h.CPUs, h.CPUModel),
		"Memory", mib(h.AllocatedMemoryMiB)+" allocated of "+mib(h.MemoryMiB),
		"Local disk", mib(h.AllocatedDiskMiB)+" allocated of "+mib(h.DiskMiB),
		"Pools", strings.Join(pools, "; "), "VMs", fmt.Sprint(h.VMs),
		"Agent version", h.Version,
		"Last heartbeat", age(h.LastHeartbeat, now)+" ago", "Registered", h.RegisteredAt.Format(time.RFC3339))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
