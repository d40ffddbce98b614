package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
)

func (a *app) hostCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "Show the cluster's hosts; take them out of scheduling and back"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List hosts with their state and allocations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hs, err := a.client().Hosts(cmd.Context())
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(hs)
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
			if a.structured() {
				return a.print(h)
			}
			return writeHost(a, h, time.Now())
		},
	}, a.hostEnableCmd(true), a.hostEnableCmd(false), a.hostAddCmd(), a.hostRevokeCmd())
	return cmd
}

// hostAddCmd prints a join token for a new host.
func (a *app) hostAddCmd() *cobra.Command {
	var req api.JoinTokenRequest
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Print a one-time join token with which host NAME gets its certificate (godwit agent --join)",
		Long: `Print a one-time join token for host NAME. On that host, run the agent with
--name NAME --join TOKEN: it checks the controller's CA against the token,
gets its certificate and then talks to the controller over mutual TLS only.
The token is good once, for 24 hours; a new one replaces it. Needs a
cluster with a CA (godwit init).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.client().JoinToken(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(t)
			}
			fmt.Fprintf(a.out, "%s\n", t.Token)
			fmt.Fprintf(a.errOut, "good once, for %s: on host %s run\n  godwit agent --name %s --join TOKEN --controller URL ...\n", t.ExpiresIn, args[0], args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Controller, "controller-url", "", "the controller's URL as the host reaches it (default: --server)")
	return cmd
}

// hostRevokeCmd revokes a host's certificates.
func (a *app) hostRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke host NAME's certificates: the controller refuses it until it joins again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.client().RevokeHost(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(r)
			}
			fmt.Fprintf(a.out, "revoked %d certificate(s) of host %s\n", r.Revoked, args[0])
			return nil
		},
	}
}

// hostEnableCmd is host enable (back into scheduling) or host disable
// (out of it, VMs left where they are).
func (a *app) hostEnableCmd(enable bool) *cobra.Command {
	use, short := "disable HOST", "Take a host out of scheduling; its VMs stay (to move them: godwit drain HOST)"
	if enable {
		use, short = "enable HOST", "Return a host to scheduling (after a drain or disable)"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := a.client().SetHostEnabled(cmd.Context(), args[0], enable)
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(h)
			}
			if enable {
				fmt.Fprintf(a.out, "host %s enabled: the scheduler places VMs on it again\n", h.Name)
			} else {
				fmt.Fprintf(a.out, "host %s disabled: the scheduler places nothing new on it; %s stay where they are (to move them: godwit drain %s)\n", h.Name, plural(h.VMs, "VM"), h.Name)
			}
			return nil
		},
	}
}

func writeHosts(a *app, hs []api.Host, now time.Time) error {
	// CPUS and MEMORY are allocated/total; LAST-HEARTBEAT is an age.
	t := newTable(a.out, "NAME", "STATE", "ENABLED", "ACCEL", "QEMU", "CPUS", "MEMORY", "VMS", "LAST-HEARTBEAT")
	for _, h := range hs {
		t.row(h.Name, h.State, yesNo(h.Enabled), dash(h.Accelerator), dash(h.QEMUVersion),
			fmt.Sprintf("%d/%d", h.AllocatedCPUs, h.CPUs),
			mib(h.AllocatedMemoryMiB)+"/"+mib(h.MemoryMiB),
			fmt.Sprint(h.VMs), ago(h.LastHeartbeat, now))
	}
	if err := t.flush(); err != nil {
		return err
	}
	// Why a host is not up, when the controller knows (an agent of an
	// incompatible version): under the table, where a long reason fits.
	for _, h := range hs {
		if h.StateReason != "" {
			fmt.Fprintf(a.out, "%s is %s: %s\n", h.Name, h.State, h.StateReason)
		}
	}
	return nil
}

func writeHost(a *app, h api.Host, now time.Time) error {
	state := h.State
	if h.StateReason != "" {
		state += " (" + h.StateReason + ")"
	}
	kv := []string{"Name", h.Name, "Address", h.Address, "State", state, "Enabled", yesNo(h.Enabled),
		"Hypervisor", h.Hypervisor, "Accelerator", h.Accelerator, "Accelerator reason", h.AccelReason,
		"QEMU version", qemuVersion(h),
		"CPU model", h.CPUModel,
		"CPUs", fmt.Sprintf("%d allocated of %d", h.AllocatedCPUs, h.CPUs),
		"Memory", mib(h.AllocatedMemoryMiB) + " allocated of " + mib(h.MemoryMiB),
		"Local disk", mib(h.AllocatedDiskMiB) + " allocated of " + mib(h.DiskMiB)}
	for _, p := range h.Pools {
		kind := ""
		if p.Kind != p.Name {
			kind = p.Kind + ", "
		}
		kv = append(kv, "Pool "+p.Name, fmt.Sprintf("%s (%s%s free)", p.Path, kind, mib(p.FreeMiB)))
	}
	if l := h.Lease; l != nil {
		ms := func(v int64) time.Duration {
			return (time.Duration(v) * time.Millisecond).Round(100 * time.Millisecond)
		}
		kv = append(kv, "Lease", fmt.Sprintf("%s (seq %d, unchanged for %s, TTL %s)", l.State, l.Seq, ms(l.StillMS), ms(l.TTLMS)))
	}
	kv = append(kv, "VMs", fmt.Sprint(h.VMs), "Agent version", h.Version,
		"Last heartbeat", ago(h.LastHeartbeat, now), "Registered", timestamp(h.RegisteredAt))
	return fields(a.out, kv...)
}

// qemuVersion is a host's QEMU release, with a warning where live
// migration would lose guest writes (TCG before QEMU 9.0).
func qemuVersion(h api.Host) string {
	v := h.QEMUVersion
	if v == "" {
		v = "unknown (the agent does not report it)"
	}
	if !driver.LiveMigrationSafe(h.Accelerator, h.QEMUVersion) {
		v += " — TCG before QEMU " + driver.TCGMigrationSafeQEMU + " loses guest writes in live migration: refused (godwit serve --allow-unsafe-tcg-migration overrides)"
	}
	return v
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// plural is "1 VM", "2 VMs".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
