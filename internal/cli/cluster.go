package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/cluster"
)

func defaultClusterDir() string {
	if d := os.Getenv("GODWIT_HOME"); d != "" {
		return filepath.Join(d, "cluster")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".godwit", "cluster")
}

func (a *app) upCmd() *cobra.Command {
	cfg := cluster.Config{}
	var detach bool
	var memory string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a whole cluster on this machine: a controller and N host agents",
		Long: `Run a whole cluster on this machine: a controller and N host agents as separate
processes on loopback, each host with its own state directory, all sharing one
shared-pool directory. Ctrl-C (or godwit down) stops the VMs, the agents and the
controller, in that order.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Hosts < 1 || cfg.Hosts > 64 {
				return usageError{fmt.Errorf("--hosts must be between 1 and 64")}
			}
			if cfg.Driver != "qemu" && cfg.Driver != "fake" {
				return usageError{fmt.Errorf("--driver must be qemu or fake")}
			}
			if memory != "" {
				m, err := parseMiB(memory)
				if err != nil {
					return usageError{fmt.Errorf("--host-memory: %w", err)}
				}
				cfg.AgentArgs = append(cfg.AgentArgs, "--memory", fmt.Sprint(m))
			}
			if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
				return err
			}
			if detach {
				return a.upDetached(cmd, cfg)
			}
			cfg.Logger, cfg.Out = a.logger(), a.out
			return cluster.Up(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Hosts, "hosts", 3, "number of hosts")
	f.StringVar(&cfg.Driver, "driver", "qemu", "hypervisor driver: qemu or fake")
	f.StringVar(&cfg.Accel, "accel", "auto", "accelerator: kvm, tcg, or auto (probe once)")
	f.StringVar(&cfg.Dir, "dir", defaultClusterDir(), "state directory (env GODWIT_HOME)")
	f.IntVar(&cfg.Port, "port", 7400, "controller port; hosts listen on the ports after it")
	f.StringVar(&memory, "host-memory", "", "memory each host offers (default: all of this machine's)")
	f.BoolVar(&detach, "detach", false, "run in the background; stop it with godwit down")
	return cmd
}

// upDetached re-runs `godwit up` in the background, in its own session
// with its output in DIR/logs/up.log, and returns once the cluster is up.
func (a *app) upDetached(cmd *cobra.Command, cfg cluster.Config) error {
	if pid := cluster.Running(cfg.Dir); pid != 0 {
		return fmt.Errorf("a cluster is already running in %s (pid %d); stop it with: godwit down --dir %s", cfg.Dir, pid, cfg.Dir)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var args []string
	for _, arg := range os.Args[1:] {
		if arg != "--detach" && arg != "--detach=true" {
			args = append(args, arg)
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "logs"), 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(cfg.Dir, "logs", "up.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	child := exec.Command(exe, args...)
	child.Stdout, child.Stderr = lf, lf
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = child.Wait(); close(done) }()
	fmt.Fprintf(a.errOut, "starting a %d-host cluster in the background (log: %s)…\n", cfg.Hosts, logPath)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("the cluster failed to start:\n%s", b)
		case <-time.After(300 * time.Millisecond):
		}
		if cluster.Running(cfg.Dir) == child.Process.Pid && cluster.Ready(cmd.Context(), cfg.Port, cfg.Hosts) == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster did not come up within 3 minutes; see %s", logPath)
		}
	}
	acc := "?"
	if hs, err := api.NewClient(cluster.ControllerURL(cfg.Port)).Hosts(cmd.Context()); err == nil && len(hs) > 0 {
		acc = hs[0].Accelerator
	}
	fmt.Fprint(a.out, cluster.Usage(cfg, acc))
	return nil
}

func (a *app) downCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop a cluster started with godwit up --detach (VMs included)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			was, err := cluster.Down(cmd.Context(), dir, a.errOut)
			if err != nil {
				return err
			}
			if !was {
				fmt.Fprintf(a.out, "no cluster is running in %s\n", dir)
				return nil
			}
			fmt.Fprintln(a.out, "cluster stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultClusterDir(), "state directory of the cluster (env GODWIT_HOME)")
	return cmd
}
