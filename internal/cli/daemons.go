package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/agent"
	"github.com/godwit/godwit/internal/controller"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/fake"
	"github.com/godwit/godwit/internal/service"
)

func (a *app) serveCmd() *cobra.Command {
	var cfg controller.Config
	maxDisk, maxKernel := sizeFlag(service.DefaultMaxDiskUpload>>20), sizeFlag(service.DefaultMaxKernelUpload>>20)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the controller: REST API, scheduler, state",
		Long: `Run the controller: the REST API, the host registry fed by agent heartbeats,
the scheduler and the state machines. It runs until SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = a.logger()
			cfg.MaxDiskUpload, cfg.MaxKernelUpload = int64(maxDisk)<<20, int64(maxKernel)<<20
			return controller.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:7400", "API address")
	f.StringSliceVar(&cfg.AllowHosts, "allow-host", nil, "a name clients reach the API by, accepted in the Host header besides IP addresses, localhost and this machine's hostname (repeatable; stops DNS rebinding)")
	f.StringVar(&cfg.DataDir, "data-dir", "/var/lib/godwit/controller", "database and image store directory")
	f.StringVar(&cfg.TLSDir, "tls-dir", "", "the cluster's CA and the controller's certificate (godwit init): serve HTTPS, reach agents over mutual TLS; empty for plain HTTP")
	f.StringVar(&cfg.StoreDSN, "store", "", "store: empty for SQLite in --data-dir, sqlite:PATH, or postgres://USER:PASS@HOST/DB")
	f.DurationVar(&cfg.HostDownAfter, "host-down-after", 10*time.Second, "mark a host down after this long without a heartbeat")
	f.StringVar(&cfg.SharedDir, "shared-dir", "", "the agents' shared pool, when this machine sees it: hosts whose lease there expired count as fenced for evacuate")
	f.BoolVar(&cfg.NoColdFallback, "no-cold-fallback", false, "a migrate without --live or --cold never falls back to a cold move")
	f.BoolVar(&cfg.NoPostCopy, "no-post-copy", false, "the auto convergence policy never switches to post-copy (it throttles instead)")
	f.BoolVar(&cfg.AllowUnsafeTCGMigration, "allow-unsafe-tcg-migration", false, "allow live migration to and from TCG hosts on QEMU before 9.0, which loses guest writes (labs only)")
	f.Var(&maxDisk, "max-disk-upload", "largest disk file an image import may upload (larger ones are refused with 413)")
	f.Var(&maxKernel, "max-kernel-upload", "largest kernel or initrd file an image import may upload")
	f.DurationVar(&cfg.UploadIdle, "upload-idle-timeout", controller.DefaultUploadIdle, "cut off an image upload that sends nothing for this long")
	a.daemonConfig(cmd, ControllerConfigFile)
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
			cfg.NoLease = cfg.LeaseTTL == 0
			// A watchdog only for a driver with processes to kill.
			if _, fences := driver.Fencing(cfg.Driver); fences && !cfg.NoLease && cfg.SharedDir != "" {
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				cfg.Watchdog = exe
			}
			return agent.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "", "host name in the cluster (default: the hostname)")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:7401", "agent API address")
	f.StringVar(&cfg.Advertise, "advertise", "", "URL the controller reaches this agent at (default: http://<listen>)")
	f.StringVar(&cfg.Controller, "controller", "http://127.0.0.1:7400", "controller URL")
	f.StringSliceVar(&cfg.AllowHosts, "allow-host", nil, "a name the controller and other agents reach this agent by, accepted in the Host header besides IP addresses, localhost, this machine's hostname and the names in --listen and --advertise (repeatable; stops DNS rebinding)")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", "", "serve Prometheus metrics (GET /metrics) on this address in plain HTTP, e.g. 127.0.0.1:9741; empty for none (the API itself takes only cluster certificates)")
	f.StringVar(&cfg.StateDir, "state-dir", "/var/lib/godwit/agent", "local pool, image cache and VM state")
	f.StringVar(&cfg.TLSDir, "tls-dir", "", "the host's certificate and the cluster's CA (default <state-dir>/tls); with one there the agent serves HTTPS to the controller and hosts only")
	f.StringVar(&cfg.Join, "join", "", "join token (godwit host add NAME prints it): get this host's certificate before starting")
	f.StringVar(&cfg.SharedDir, "shared-dir", "", "shared pool every host sees (NFS or similar); empty for none")
	f.StringVar(&cfg.Driver, "driver", "qemu", "hypervisor driver: "+oneOf(driver.Names()))
	f.StringVar(&cfg.Accel, "accel", "auto", "accelerator: kvm, tcg, or auto (probe KVM by booting a kernel, else tcg); with --driver fake, kvm or tcg is the one it claims")
	f.StringVar(&cfg.QEMUBinary, "qemu", "", "the qemu-system-x86_64 binary to run (default: the one on PATH); godwit needs QEMU 9.0 or newer under TCG (docs/migration.md)")
	f.StringVar(&cfg.QEMUUser, "qemu-user", "", "run QEMU as this user once it is set up (QEMU's -run-with user=; the user must exist); default: as the agent")
	f.BoolVar(&cfg.NoPostCopyPreempt, "no-postcopy-preempt", false, "keep post-copy page requests on the migration stream instead of a channel of their own (QEMU's postcopy-preempt; for measurements)")
	f.StringToStringVar(&cfg.Uplinks, "uplink", nil, "NET=IFACE: this host's interface to network NET, put on NET's bridge (repeatable)")
	f.StringVar(&cfg.AccelReason, "accel-reason", "", "why --accel was chosen (set by godwit up)")
	_ = f.MarkHidden("accel-reason")
	f.StringVar(&cfg.FakeQEMUVersion, "fake-qemu-version", "", "with --driver fake: the QEMU version the host claims to run (default "+fake.DefaultQEMUVersion+"); with --accel tcg and a version before 9.0 it plays a host whose live migrations are unsafe")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat", 2*time.Second, "heartbeat interval")
	f.DurationVar(&cfg.DirtySampleEvery, "dirty-sample-every", 5*time.Second, "how often to measure each running guest's dirty rate for the convergence engine (negative: never)")
	f.IntVar(&cfg.CPUs, "cpus", 0, "CPUs to offer (default: all)")
	f.Var(&memory, "memory", "memory to offer, e.g. 4G (default: all)")
	f.DurationVar(&cfg.LeaseRenew, "lease-renew", 2*time.Second, "how often to renew the host's lease on the shared pool")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", 10*time.Second, "how long after its last renewal the host is fenced and the controller may rebuild its VMs elsewhere; 0 turns leases and fencing off")
	f.DurationVar(&cfg.FenceAfter, "fence-after", 0, "kill this host's shared-pool VMs when the lease was not renewed for this long (default: 70% of --lease-ttl)")
	a.daemonConfig(cmd, AgentConfigFile)
	return cmd
}

func (a *app) agentWatchdogCmd() *cobra.Command {
	var cfg agent.WatchdogConfig
	var confPath string
	cmd := &cobra.Command{
		Use:   "agent-watchdog",
		Short: "Fence a host whose agent stopped renewing its lease (started by godwit agent, or by systemd)",
		Long: `Fence a host whose agent stopped renewing its lease on the shared pool: kill
its shared-pool QEMUs before the lease expires. godwit agent starts one when
none runs; under systemd, godwit-agent-watchdog.service runs it with --stay
from the agent's config file, so that it outlives the agent's restarts.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ok, err := a.watchdogFromAgentConfig(cmd, &cfg, confPath, cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			cfg.Logger = a.logger() // at the file's log-level
			if !ok {
				cfg.Logger.Info("the agent's configuration keeps no lease (no shared pool, lease-ttl 0 or a driver without processes): nothing to guard")
				return nil
			}
			return agent.RunWatchdog(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&confPath, "config", "", "the agent's config file (e.g. "+AgentConfigFile+"): state-dir, name, driver, lease-ttl and fence-after come from it unless given as flags")
	f.StringVar(&cfg.StateDir, "state-dir", "", "the agent's state directory")
	f.StringVar(&cfg.Driver, "driver", "qemu", "the agent's hypervisor driver: "+oneOf(driver.Names()))
	f.StringVar(&cfg.Host, "name", "", "host name, for the log")
	f.DurationVar(&cfg.FenceAfter, "fence-after", 0, "fence after this long without a lease renewal")
	f.DurationVar(&cfg.Poll, "poll", 0, "how often to look for renewals (default: fence-after/10, at most 250ms)")
	f.BoolVar(&cfg.Stay, "stay", false, "keep running when the agent is gone and nothing is left to guard (a service manager's watchdog; the agent's own leaves)")
	return cmd
}

// watchdogFromAgentConfig fills what the watchdog flags left out from the
// agent's config file, read exactly as godwit agent reads it, so that the
// two never disagree on the state directory or on when to fence. It
// reports false when that agent keeps no lease, so has no watchdog.
func (a *app) watchdogFromAgentConfig(wcmd *cobra.Command, cfg *agent.WatchdogConfig, path string, explicit bool) (bool, error) {
	if path == "" {
		return true, nil
	}
	acmd := a.agentCmd()
	// The agent's file may set the root's log-level too, which a command
	// outside the tree lacks.
	lvl := a.logLevel
	acmd.Flags().StringVar(&lvl, "log-level", lvl, "")
	if err := acmd.ParseFlags(nil); err != nil {
		return false, err
	}
	if err := loadDaemonConfig(acmd, path, explicit); err != nil {
		return false, err
	}
	if !wcmd.Flags().Changed("log-level") {
		if !validLogLevel(lvl) {
			return false, fmt.Errorf("%s: log-level must be debug, info, warn or error, not %q", path, lvl)
		}
		a.logLevel = lvl
	}
	af := acmd.Flags()
	get := func(name string) string { return af.Lookup(name).Value.String() }
	wf := wcmd.Flags()
	if !wf.Changed("state-dir") {
		cfg.StateDir = get("state-dir")
	}
	if !wf.Changed("driver") {
		cfg.Driver = get("driver")
	}
	if !wf.Changed("name") {
		cfg.Host = get("name")
	}
	ttl, _ := af.GetDuration("lease-ttl")
	if !wf.Changed("fence-after") {
		cfg.FenceAfter, _ = af.GetDuration("fence-after")
		if cfg.FenceAfter <= 0 {
			cfg.FenceAfter = ttl * 7 / 10 // the agent's default (agent.Config)
		}
	}
	_, fences := driver.Fencing(cfg.Driver)
	return fences && ttl > 0 && get("shared-dir") != "", nil
}
