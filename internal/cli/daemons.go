package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/agent"
	"github.com/godwit/godwit/internal/controller"
)

func (a *app) serveCmd() *cobra.Command {
	var cfg controller.Config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the controller: REST API, scheduler, state",
		Long: `Run the controller: the REST API, the host registry fed by agent heartbeats,
the scheduler and the state machines. It runs until SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = a.logger()
			return controller.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:7400", "API address")
	f.StringVar(&cfg.DataDir, "data-dir", "/var/lib/godwit/controller", "database and image store directory")
	f.StringVar(&cfg.StoreDSN, "store", "", "store: empty for SQLite in --data-dir, sqlite:PATH, or postgres://USER:PASS@HOST/DB")
	f.DurationVar(&cfg.HostDownAfter, "host-down-after", 10*time.Second, "mark a host down after this long without a heartbeat")
	f.BoolVar(&cfg.NoColdFallback, "no-cold-fallback", false, "a migrate without --live or --cold never falls back to a cold move")
	return cmd
}

func (a *app) agentCmd() *cobra.Command {
	var cfg agent.Config
	var memory sizeFlag
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a host agent: runs VMs on this host for the controller",
		Long: `Run a host agent: it registers with the controller, heartbeats, and runs VMs
on this host for it. It runs until SIGINT or SIGTERM (its VMs keep running and
are reattached when it starts again) or until the controller asks it to shut
down.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = a.logger()
			cfg.MemoryMiB = int(memory)
			return agent.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "", "host name in the cluster (default: the hostname)")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:7401", "agent API address")
	f.StringVar(&cfg.Advertise, "advertise", "", "URL the controller reaches this agent at (default: http://<listen>)")
	f.StringVar(&cfg.Controller, "controller", "http://127.0.0.1:7400", "controller URL")
	f.StringVar(&cfg.StateDir, "state-dir", "/var/lib/godwit/agent", "local pool, image cache and VM state")
	f.StringVar(&cfg.SharedDir, "shared-dir", "", "shared pool every host sees (NFS or similar); empty for none")
	f.StringVar(&cfg.Driver, "driver", "qemu", "hypervisor driver: qemu or fake")
	f.StringVar(&cfg.Accel, "accel", "auto", "accelerator: kvm, tcg, or auto (probe KVM by booting a kernel, else tcg)")
	f.StringVar(&cfg.AccelReason, "accel-reason", "", "why --accel was chosen (set by godwit up)")
	_ = f.MarkHidden("accel-reason")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat", 2*time.Second, "heartbeat interval")
	f.IntVar(&cfg.CPUs, "cpus", 0, "CPUs to offer (default: all)")
	f.Var(&memory, "memory", "memory to offer, e.g. 4G (default: all)")
	return cmd
}
