package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/driver"
)

// godwitHome is where godwit keeps local state: $GODWIT_HOME, else
// ~/.godwit.
func godwitHome() string {
	if d := os.Getenv("GODWIT_HOME"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".godwit"
	}
	return filepath.Join(home, ".godwit")
}

func defaultClusterDir() string { return filepath.Join(godwitHome(), "cluster") }

func (a *app) upCmd() *cobra.Command {
	cfg := cluster.Config{}
	var detach bool
	var memory sizeFlag
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a whole cluster on this machine: a controller and N host agents",
		Long: `Run a whole cluster on this machine: a controller and N host agents as separate
processes on loopback, each host with its own state directory, all sharing one
shared-pool directory. Each process logs to DIR/logs/NAME.log.

It runs in the foreground until Ctrl-C; with --detach it runs in the background
until 'godwit down'. Either way, stopping it stops the VMs, then the agents,
then the controller.`,
		Example: `  godwit up                          # 3 hosts, QEMU, KVM if it works here
  godwit up --hosts 5 --driver fake --detach
  godwit down`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case cfg.Hosts < 1 || cfg.Hosts > 64:
				return usagef("--hosts must be between 1 and 64")
			case !slices.Contains(driver.Names(), cfg.Driver):
				return usagef("--driver must be %s", oneOf(driver.Names()))
			case cfg.Accel != "auto" && cfg.Accel != "kvm" && cfg.Accel != "tcg":
				return usagef("--accel must be auto, kvm or tcg")
			case cfg.Port < 1 || cfg.Port+cfg.Hosts > 65535:
				return usagef("--port %d leaves no room for %d hosts after it", cfg.Port, cfg.Hosts)
			case cfg.HostCPUs < 0:
				return usagef("--host-cpus must not be negative")
			}
			cfg.HostMemoryMiB = int(memory)
			cfg.LogLevel = a.logLevel
			if detach {
				acc, err := cluster.Detach(cmd.Context(), cfg, a.errOut)
				if err != nil {
					return err
				}
				fmt.Fprint(a.out, cluster.Usage(cfg, acc, false))
				return nil
			}
			cfg.Logger, cfg.Out = a.logger(), a.out
			return cluster.Up(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Hosts, "hosts", 3, "number of hosts")
	f.StringVar(&cfg.Driver, "driver", "qemu", "hypervisor driver: "+oneOf(driver.Names()))
	f.StringVar(&cfg.Accel, "accel", "auto", "accelerator: kvm, tcg, or auto (probed once for all hosts)")
	f.StringVar(&cfg.Dir, "dir", defaultClusterDir(), "state directory (default under $GODWIT_HOME when set)")
	f.IntVar(&cfg.Port, "port", 7400, "controller port; host I listens on port+I")
	f.StringVar(&cfg.Subnet, "subnet", cluster.DefaultSubnet, "subnet of the cluster's one network, local; this machine takes its first address, on the network's bridge")
	f.IntVar(&cfg.HostCPUs, "host-cpus", 0, "CPUs each host offers (default: all of this machine's)")
	f.Var(&memory, "host-memory", "memory each host offers, e.g. 4G (default: all of this machine's)")
	f.BoolVar(&detach, "detach", false, "run in the background; stop it with godwit down")
	f.BoolVar(&cfg.Insecure, "insecure", false, "no CA: plain HTTP on loopback and unencrypted migrations (by default the cluster has a CA in DIR/pki)")
	return cmd
}

func (a *app) downCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop a cluster started with godwit up (VMs included)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			was, err := cluster.Down(cmd.Context(), abs, a.errOut)
			if err != nil {
				return err
			}
			if !was {
				fmt.Fprintf(a.out, "no cluster is running in %s\n", abs)
				return nil
			}
			fmt.Fprintln(a.out, "cluster stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultClusterDir(), "state directory of the cluster")
	return cmd
}
