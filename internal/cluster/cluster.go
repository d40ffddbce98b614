// Package cluster runs a cluster of godwit processes on one machine: a
// controller and N agents as separate processes, each with its own state
// directory and log, all sharing one shared-pool directory (Local). It is
// the one way to run such a cluster: godwit up supervises one (Up,
// Detach, Down), and the end-to-end tests and the benchmark start theirs
// with the options they need (driver, accelerator, addresses, network
// namespaces, more flags), read guest heartbeats through its API
// (Heartbeat, WaitHeartbeat) and stop every process by PID.
//
// For godwit up it probes the accelerator once for all hosts, starts the
// processes on loopback, waits until every host is up, and on shutdown
// stops the agents (and their VMs) before the controller. PID files in
// the cluster directory let godwit down stop a cluster running in the
// background, and stop what a supervisor that died left behind.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/accel"
	"github.com/godwit/godwit/internal/hostinfo"
	"github.com/godwit/godwit/internal/hostnet"
	"github.com/godwit/godwit/internal/pki"
)

// Config says what cluster to run.
type Config struct {
	Dir    string // state, logs and the shared pool live here
	Hosts  int    // number of agents, host1..hostN
	Driver string // qemu or fake
	Accel  string // kvm, tcg or auto (probed once, by Up)
	Port   int    // controller port; host I listens on Port+I
	// HostCPUs and HostMemoryMiB cap what each host offers (0: all of
	// this machine's).
	HostCPUs      int
	HostMemoryMiB int
	// Subnet is the local cluster's one network, "local" (default
	// DefaultSubnet); with the qemu driver its gateway is this machine's
	// address on the network's bridge, so the machine reaches every VM.
	Subnet   string
	LogLevel string // of every process: debug, info, warn, error
	// Insecure runs the cluster without a CA: plain HTTP on loopback,
	// unencrypted migrations. By default it has one (DIR/pki).
	Insecure bool
	Exe      string // the godwit binary (default: this one)
	Logger   *slog.Logger
	Out      io.Writer // where the usage block goes

	timeouts Timeouts // zero fields take the defaults
}

// URL is the API address of cfg's cluster.
func (cfg Config) URL() string {
	scheme := "https://"
	if cfg.Insecure {
		scheme = "http://"
	}
	return scheme + agentAddr(cfg.Port, 0)
}

// Client is a client of the controller at url of the cluster in dir, as
// a user: trusting the cluster's CA when it has one, with its admin
// token.
func Client(dir, url string) (*api.Client, error) {
	c := api.NewClient(url)
	if b, err := os.ReadFile(TokenFile(dir)); err == nil {
		c.Token = strings.TrimSpace(string(b))
	}
	cfg, err := pki.LoadTrust(CAFile(dir))
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	c.HTTP = api.NewHTTPClient(api.HTTPOptions{TLS: cfg})
	return c, nil
}

func agentAddr(port, i int) string { return "127.0.0.1:" + strconv.Itoa(port+i) }

func (cfg *Config) setDefaults() error {
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the godwit binary: %w", err)
		}
		cfg.Exe = exe
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	cfg.timeouts.setDefaults()
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return err
	}
	cfg.Dir = abs
	return nil
}

// UpArgs is the command line that runs cfg's cluster in the foreground
// (what godwit up --detach starts in the background).
func UpArgs(cfg Config) []string {
	args := []string{"up", "--dir", cfg.Dir, "--hosts", strconv.Itoa(cfg.Hosts), "--driver", cfg.Driver,
		"--accel", cfg.Accel, "--port", strconv.Itoa(cfg.Port)}
	args = positive(args, "--host-cpus", cfg.HostCPUs)
	args = positive(args, "--host-memory", cfg.HostMemoryMiB)
	if cfg.Subnet != "" {
		args = append(args, "--subnet", cfg.Subnet)
	}
	if cfg.LogLevel != "" {
		args = append(args, "--log-level", cfg.LogLevel)
	}
	if cfg.Insecure {
		args = append(args, "--insecure")
	}
	return args
}

// Check says why cfg's cluster cannot start now, or nil: one already runs
// in the directory, processes of an earlier one are left, a port is taken,
// or the qemu driver lacks QEMU.
func Check(cfg Config) error {
	if pid := Running(cfg.Dir); pid != 0 {
		return errRunning{cfg.Dir, pid}
	}
	return check(cfg)
}

// check is Check for a caller that already holds the directory.
func check(cfg Config) error {
	if ms := leftovers(cfg.Dir); len(ms) > 0 {
		return fmt.Errorf("processes of an earlier godwit up in %s are still running (%s); stop them with: godwit down --dir %s",
			cfg.Dir, describe(ms), cfg.Dir)
	}
	for i := 0; i <= cfg.Hosts; i++ {
		addr := agentAddr(cfg.Port, i)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s is taken (another godwit up, or another program); pick free ports with --port: the controller takes --port and host I takes --port+I", addr)
		}
		ln.Close()
	}
	if cfg.Driver == "qemu" {
		if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
			return errors.New("the qemu driver needs qemu-system-x86_64: apt-get install qemu-system-x86 (or run godwit up --driver fake)")
		}
	}
	return nil
}

// Up runs the cluster until ctx is cancelled, then stops it: the agents
// first, each stopping its VMs, then the controller.
func Up(ctx context.Context, cfg Config) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	for _, d := range []string{"logs", "run", "shared", "hosts"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o700); err != nil {
			return fmt.Errorf("create the cluster directory: %w", err)
		}
	}
	if pid := Running(cfg.Dir); pid != 0 && pid != os.Getpid() {
		return errRunning{cfg.Dir, pid} // one that predates up.lock
	}
	release, err := acquire(cfg.Dir)
	if err != nil {
		return err
	}
	defer release()
	os.Remove(readyFile(cfg.Dir))
	if err := check(cfg); err != nil {
		return err
	}
	acc, reason, err := resolveAccel(ctx, cfg)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errors.New("interrupted before the cluster was up; nothing was started")
	}

	s, err := newSupervisor(cfg, acc, reason)
	if err != nil {
		return err
	}
	var bridge string
	defer func() {
		os.Remove(readyFile(cfg.Dir))
		s.stop()
		if bridge != "" {
			if err := hostnet.DeleteBridge(context.WithoutCancel(ctx), bridge); err != nil {
				cfg.Logger.Warn("remove the local network's bridge", "bridge", bridge, "err", err)
			}
		}
	}()
	if err := s.local.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return errors.New("interrupted before the cluster was up; stopped what had started")
		}
		return err
	}
	if bridge, err = localNetwork(ctx, cfg, s.local.Client()); err != nil {
		return err
	}
	if err := os.WriteFile(readyFile(cfg.Dir), []byte(acc+"\n"), 0o600); err != nil {
		return fmt.Errorf("write ready file: %w", err)
	}
	fmt.Fprint(cfg.Out, Usage(cfg, acc, true))
	return s.watch(ctx)
}

// LocalNetwork names the local cluster's network; DefaultSubnet is its
// subnet unless --subnet says otherwise.
const (
	LocalNetwork  = "local"
	DefaultSubnet = "10.213.0.0/24"
)

// localNetwork makes the local cluster's network, and with the qemu
// driver its bridge on this machine holding the gateway address, which
// every host's agent then plugs its VMs into. It returns the bridge to
// remove when the cluster stops ("" for none).
func localNetwork(ctx context.Context, cfg Config, c *api.Client) (string, error) {
	subnet := cfg.Subnet
	if subnet == "" {
		subnet = DefaultSubnet
	}
	n, err := c.Network(ctx, LocalNetwork)
	if err != nil {
		if n, err = c.CreateNetwork(ctx, api.CreateNetworkRequest{Name: LocalNetwork, Subnet: subnet}); err != nil {
			return "", fmt.Errorf("create the local network: %w", err)
		}
	}
	if cfg.Driver != "qemu" {
		return "", nil
	}
	if err := hostnet.Check(false); err != nil {
		cfg.Logger.Warn("no bridge for the local network: this machine cannot reach its VMs", "err", err)
		return "", nil
	}
	bits := strings.TrimPrefix(n.Subnet[strings.Index(n.Subnet, "/"):], "/")
	if err := hostnet.Bridge(ctx, n.Bridge, n.MTU, n.Gateway+"/"+bits); err != nil {
		return "", fmt.Errorf("make the local network's bridge %s: %w", n.Bridge, err)
	}
	cfg.Logger.Info("local network ready", "network", n.Name, "subnet", n.Subnet, "bridge", n.Bridge, "gateway", n.Gateway)
	return n.Bridge, nil
}

// resolveAccel decides the accelerator once for every host: with the
// qemu driver and auto, by booting the newest /boot kernel under KVM (N
// agents probing at once on a small machine would slow each other into
// a wrong answer).
func resolveAccel(ctx context.Context, cfg Config) (acc, reason string, err error) {
	if cfg.Driver != "qemu" {
		return "", "", nil
	}
	if cfg.Accel == "auto" {
		cfg.Logger.Info("probing KVM once for all hosts", "timeout", accel.ProbeTimeout)
	}
	acc, reason, err = accel.Resolve(ctx, cfg.Accel, hostinfo.NewestKernel())
	if err != nil {
		return "", "", err
	}
	cfg.Logger.Info("accelerator chosen", "accel", acc, "reason", reason)
	return acc, "godwit up: " + reason, nil
}

// Usage is the block printed once a cluster is up; foreground says that
// Ctrl-C stops it too.
func Usage(cfg Config, acc string, foreground bool) string {
	what := cfg.Driver + " driver"
	if acc != "" {
		what += ", " + acc
	}
	stop := "godwit down --dir " + cfg.Dir
	if foreground {
		stop += "        # or Ctrl-C here"
	}
	return fmt.Sprintf(`
godwit cluster is up: a controller and %d hosts (%s); state and logs in %s

  export GODWIT_SERVER=%s%s
  godwit host list
  godwit image build-testguest --import testguest
  godwit vm create web-1 --image testguest --memory 256M --disk 1G
  godwit vm console web-1 -f
  %s

The dashboard: %s/ui/%s

`, cfg.Hosts, what, cfg.Dir, cfg.URL(), caExport(cfg), stop, cfg.URL(), dashboardLogin(cfg))
}

// dashboardLogin is how to log in to the dashboard of a local cluster.
func dashboardLogin(cfg Config) string {
	if cfg.Insecure {
		return ""
	}
	return " (log in with the token in " + TokenFile(cfg.Dir) + "; the browser will ask you to accept the cluster's own CA, " + CAFile(cfg.Dir) + ")"
}

// caExport is the usage block's line that trusts the cluster's CA.
func caExport(cfg Config) string {
	if cfg.Insecure {
		return ""
	}
	return " GODWIT_CA=" + CAFile(cfg.Dir) + " GODWIT_TOKEN=$(cat " + TokenFile(cfg.Dir) + ")"
}
