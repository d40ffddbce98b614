package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/hostinfo"
)

// Options says what a Local cluster runs: a controller and the agents
// host1..hostN, each a process of the godwit binary, laid out in Dir:
//
//	DIR/controller     the controller's data
//	DIR/hosts/NAME     each agent's state
//	DIR/shared         the shared pool, seen by the controller and every agent
//	DIR/logs/NAME.log  what each process prints (a restart appends)
type Options struct {
	// TLS runs the cluster with a CA (DIR/pki): the API over HTTPS,
	// mutual TLS between the controller and the agents, encrypted
	// migrations. Users trust CAFile(Dir).
	TLS    bool
	Dir    string
	Exe    string // the godwit binary
	Hosts  int
	Driver string // every agent's --driver
	// Accel and AccelReason are every agent's --accel and
	// --accel-reason; "" leaves the agent to decide.
	Accel, AccelReason string
	// ControllerAddr is where the controller listens and AgentAddr(i)
	// where host i's agent does; empty (nil) takes a free port on
	// loopback, chosen once, so a restart listens where it did.
	ControllerAddr string
	AgentAddr      func(i int) string
	// Netns(i), when not "", is the network namespace host i's agent
	// runs in (ip netns exec); nil runs every agent in this one.
	Netns func(i int) string
	// HostCPUs and HostMemoryMiB cap what each host offers (0: all of
	// this machine's).
	HostCPUs      int
	HostMemoryMiB int
	HostDownAfter time.Duration // the controller's --host-down-after (0: its default)
	Heartbeat     time.Duration // every agent's --heartbeat (0: its default)
	LogLevel      string        // every process's --log-level ("": its default)
	// ControllerArgs, AgentArgs and HostArgs[name] are more flags of the
	// controller, of every agent and of one agent.
	ControllerArgs []string
	AgentArgs      []string
	HostArgs       map[string][]string
	// StopVMs makes Stop ask each agent over its API to stop its VMs and
	// exit (godwit up). Otherwise Stop sends it SIGTERM, and an agent
	// leaves its VMs running, for the caller to find.
	StopVMs  bool
	Timeouts Timeouts     // zero fields take the defaults
	Logger   *slog.Logger // default: slog.Default()

	// recordPIDs keeps each process in DIR/run/NAME.pid while it runs,
	// for godwit down.
	recordPIDs bool
	// onExit, if set, is called once for each process as it exits.
	onExit func(*Proc)
}

// Timeouts bound each wait of a cluster's life.
type Timeouts struct {
	Controller     time.Duration // until the controller answers
	Hosts          time.Duration // until every host is up
	AgentStop      time.Duration // for an agent to stop (its VMs too, with StopVMs) and exit
	ControllerStop time.Duration // for the controller to exit
	Poll           time.Duration
}

var defaultTimeouts = Timeouts{
	Controller:     30 * time.Second,
	Hosts:          60 * time.Second,
	AgentStop:      90 * time.Second,
	ControllerStop: 15 * time.Second,
	Poll:           200 * time.Millisecond,
}

func (t *Timeouts) setDefaults() {
	d := defaultTimeouts
	orDefault(&t.Controller, d.Controller)
	orDefault(&t.Hosts, d.Hosts)
	orDefault(&t.AgentStop, d.AgentStop)
	orDefault(&t.ControllerStop, d.ControllerStop)
	orDefault(&t.Poll, d.Poll)
}

func orDefault(v *time.Duration, d time.Duration) {
	if *v == 0 {
		*v = d
	}
}

const controllerName = "controller"

// HostName is the name of host i of a cluster: host1..hostN.
func HostName(i int) string { return "host" + strconv.Itoa(i) }

// LogFile is where the named process of the cluster in dir logs
// (controller, host1..hostN, or up for a detached supervisor).
func LogFile(dir, name string) string { return filepath.Join(dir, "logs", name+".log") }

// FreeAddr returns host:port with a port the kernel says is free on host.
func FreeAddr(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("find a free port on %s: %w", host, err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// FreePorts returns a port p such that p..p+n are all free on loopback:
// a godwit up cluster of n hosts on --port p.
func FreePorts(n int) (int, error) {
	for range 20 {
		addr, err := FreeAddr("127.0.0.1")
		if err != nil {
			return 0, err
		}
		_, ps, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(ps)
		if p+n <= 65535 && portsFree(p, n) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("found no run of %d free ports on loopback", n+1)
}

func portsFree(p, n int) bool {
	for i := 0; i <= n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

// Local is a cluster of godwit processes on this machine: what godwit up
// supervises, what the end-to-end tests and the benchmark run. Processes
// are started, signalled and stopped by PID only.
type Local struct {
	opts     Options
	log      *slog.Logger
	ctrlAddr string
	addrs    map[string]string // each agent's listen address, by host
	client   *api.Client
	userTLS  *tls.Config // a user's client configuration (nil without TLS)
	token    string      // the admin token ("" without TLS)
	agentTLS *tls.Config // to agents, as the controller (nil without TLS)

	mu    sync.Mutex
	procs map[string]*Proc // the latest process of each name
	names []string         // every name started, in the order first started
}

// New lays out a cluster; it starts nothing.
func New(o Options) (*Local, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the godwit binary: %w", err)
		}
		o.Exe = exe
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	o.Dir = abs
	o.Timeouts.setDefaults()
	l := &Local{opts: o, log: o.Logger, ctrlAddr: o.ControllerAddr, addrs: map[string]string{}, procs: map[string]*Proc{}}
	if l.ctrlAddr == "" {
		if l.ctrlAddr, err = FreeAddr("127.0.0.1"); err != nil {
			return nil, err
		}
	}
	// Each port is free when asked for, but closed again at once: the
	// kernel may hand the same one out twice, so take none already taken.
	taken := map[string]bool{l.ctrlAddr: true}
	for i := 1; i <= o.Hosts; i++ {
		addr := ""
		if o.AgentAddr != nil {
			addr = o.AgentAddr(i)
		} else {
			for addr == "" || taken[addr] {
				if addr, err = FreeAddr("127.0.0.1"); err != nil {
					return nil, err
				}
			}
		}
		taken[addr] = true
		l.addrs[HostName(i)] = addr
	}
	l.client = api.NewClient(l.URL())
	return l, nil
}

// URL is the controller's API address.
func (l *Local) URL() string { return l.scheme() + l.ctrlAddr }

// UserTLS is the TLS configuration of a user's client (nil without TLS).
func (l *Local) UserTLS() *tls.Config { return l.userTLS }

// AgentClient is a client of host's agent API, as the controller.
func (l *Local) AgentClient(host string, timeout time.Duration) *hostapi.Agent {
	return hostapi.NewAgentTLS(l.scheme()+l.addrs[host], timeout, l.agentTLS)
}

// Token is the cluster's admin token ("" without TLS).
func (l *Local) Token() string { return l.token }

// Client is a client of the controller's API.
func (l *Local) Client() *api.Client { return l.client }

// Dir is the cluster's directory.
func (l *Local) Dir() string { return l.opts.Dir }

// StateDir is host's state directory.
func (l *Local) StateDir(host string) string { return filepath.Join(l.opts.Dir, "hosts", host) }

// SharedDir is the shared pool every host sees.
func (l *Local) SharedDir() string { return filepath.Join(l.opts.Dir, "shared") }

// AgentAddr is where host's agent listens.
func (l *Local) AgentAddr(host string) string { return l.addrs[host] }

// HostNames are the cluster's hosts, host1..hostN.
func (l *Local) HostNames() []string {
	var names []string
	for i := 1; i <= l.opts.Hosts; i++ {
		names = append(names, HostName(i))
	}
	return names
}

// Controller is the controller's latest process (nil before it started).
func (l *Local) Controller() *Proc { return l.proc(controllerName) }

// Agent is host's latest agent process (nil before it started).
func (l *Local) Agent(host string) *Proc { return l.proc(host) }

func (l *Local) proc(name string) *Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.procs[name]
}

// Start starts the controller, waits until it answers, then starts every
// agent and waits until every host is up. An error names the log to read;
// what was started by then runs on until Stop.
func (l *Local) Start(ctx context.Context) error {
	for _, d := range []string{"logs", "controller", "hosts", "shared"} {
		if err := os.MkdirAll(filepath.Join(l.opts.Dir, d), 0o700); err != nil {
			return fmt.Errorf("create the cluster directory: %w", err)
		}
	}
	if l.opts.TLS {
		if err := l.setupPKI(); err != nil {
			return err
		}
		l.client.HTTP = api.NewHTTPClient(api.HTTPOptions{TLS: l.userTLS})
		l.client.Token = l.token
	}
	if _, err := l.StartController(); err != nil {
		return err
	}
	if err := l.WaitController(ctx); err != nil {
		return err
	}
	l.log.Info("controller is up", "url", l.URL())
	for _, name := range l.HostNames() {
		if _, err := l.StartAgent(name); err != nil {
			return err
		}
	}
	if err := l.WaitHosts(ctx); err != nil {
		return err
	}
	l.log.Info("all hosts are up", "hosts", l.opts.Hosts)
	return nil
}

// controllerArgs is the controller's command line.
func (l *Local) controllerArgs() []string {
	o := l.opts
	// --config=: a cluster on this machine never reads the machine's
	// /etc/godwit files, which configure a real deployment.
	args := []string{"serve", "--config=", "--listen", l.ctrlAddr, "--data-dir", filepath.Join(o.Dir, "controller"), "--shared-dir", l.SharedDir()}
	if o.TLS {
		args = append(args, "--tls-dir", PKIDir(o.Dir))
	}
	if o.HostDownAfter > 0 {
		args = append(args, "--host-down-after", o.HostDownAfter.String())
	}
	if o.LogLevel != "" {
		args = append(args, "--log-level", o.LogLevel)
	}
	return append(args, o.ControllerArgs...)
}

// agentArgs is host's command line.
func (l *Local) agentArgs(host string) []string {
	o := l.opts
	args := []string{"agent", "--config=", "--name", host, "--listen", l.addrs[host], "--controller", l.URL(),
		"--state-dir", l.StateDir(host), "--shared-dir", l.SharedDir(), "--driver", o.Driver}
	if o.Accel != "" {
		args = append(args, "--accel", o.Accel)
		if o.AccelReason != "" {
			args = append(args, "--accel-reason", o.AccelReason)
		}
	}
	if o.Heartbeat > 0 {
		args = append(args, "--heartbeat", o.Heartbeat.String())
	}
	args = positive(args, "--cpus", o.HostCPUs)
	args = positive(args, "--memory", o.HostMemoryMiB)
	if o.LogLevel != "" {
		args = append(args, "--log-level", o.LogLevel)
	}
	args = append(args, o.AgentArgs...)
	return append(args, o.HostArgs[host]...)
}

// positive appends flag n to args when n > 0 (0: the default).
func positive(args []string, flag string, n int) []string {
	if n > 0 {
		args = append(args, flag, strconv.Itoa(n))
	}
	return args
}

// StartController starts the controller, with env added to its
// environment (a failpoint, say); it does not wait for it to answer.
func (l *Local) StartController(env ...string) (*Proc, error) {
	return l.start(controllerName, "", "", l.controllerArgs(), env, l.opts.Timeouts.ControllerStop)
}

// StartAgent starts host's agent, with the flags it started with before
// and env added to its environment; it does not wait for it to register.
func (l *Local) StartAgent(host string, env ...string) (*Proc, error) {
	addr, ok := l.addrs[host]
	if !ok {
		return nil, fmt.Errorf("no host %s in a cluster of %d", host, l.opts.Hosts)
	}
	ns := ""
	if l.opts.Netns != nil {
		i, _ := strconv.Atoi(strings.TrimPrefix(host, "host"))
		ns = l.opts.Netns(i)
	}
	return l.start(host, l.scheme()+addr, ns, l.agentArgs(host), env, l.opts.Timeouts.AgentStop)
}

func (l *Local) start(name, url, ns string, args, env []string, grace time.Duration) (*Proc, error) {
	if err := os.MkdirAll(filepath.Join(l.opts.Dir, "logs"), 0o700); err != nil {
		return nil, fmt.Errorf("create the cluster directory: %w", err)
	}
	p, cmd, err := startProc(name, ns, l.opts.Exe, args, env, LogFile(l.opts.Dir, name))
	if err != nil {
		return nil, err
	}
	p.url, p.grace, p.logger, p.tls = url, grace, l.log, l.agentTLS
	pidFile := ""
	if l.opts.recordPIDs {
		pidFile = childPIDFile(l.opts.Dir, name)
		if err := writePIDFile(pidFile, recordOf(p.pid, url)); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("record the pid of %s: %w", name, err)
		}
	}
	go func() {
		p.exitErr = cmd.Wait()
		if pidFile != "" {
			os.Remove(pidFile)
		}
		close(p.done)
		if l.opts.onExit != nil {
			l.opts.onExit(p)
		}
	}()
	l.mu.Lock()
	if _, seen := l.procs[name]; !seen {
		l.names = append(l.names, name)
	}
	l.procs[name] = p
	l.mu.Unlock()
	l.log.Info("started", "process", name, "pid", p.pid, "netns", ns, "log", p.log)
	return p, nil
}

// latest returns the latest process of each name, agents first.
func (l *Local) latest() (agents []*Proc, ctrl *Proc) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.names {
		if n == controllerName {
			ctrl = l.procs[n]
		} else {
			agents = append(agents, l.procs[n])
		}
	}
	return agents, ctrl
}

// Names are the processes started so far, in the order first started.
func (l *Local) Names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.names...)
}

// WaitController waits until the controller answers (an agent that is
// down meanwhile, killed by a test, does not matter).
func (l *Local) WaitController(ctx context.Context) error {
	t := l.opts.Timeouts
	err := WaitUntil(ctx, t.Controller, t.Poll, func(ctx context.Context) error {
		_, err := l.client.Version(ctx)
		return err
	}, func() error { return died(l.Controller()) })
	if errors.As(err, new(*TimeoutError)) {
		return fmt.Errorf("the controller did not answer at %s within %s; read %s", l.URL(), t.Controller, LogFile(l.opts.Dir, controllerName))
	}
	return err
}

// WaitHosts waits until every host is registered and up; it gives up
// at once when the controller or an agent has exited.
func (l *Local) WaitHosts(ctx context.Context) error {
	t := l.opts.Timeouts
	err := WaitUntil(ctx, t.Hosts, t.Poll, func(ctx context.Context) error {
		return hostsUp(ctx, l.client, l.HostNames())
	}, func() error {
		agents, ctrl := l.latest()
		return died(append([]*Proc{ctrl}, agents...)...)
	})
	var te *TimeoutError
	if errors.As(err, &te) {
		var missing notUp
		if errors.As(te.Last, &missing) {
			return fmt.Errorf("%s did not come up within %s; read %s", strings.Join(missing, ", "), t.Hosts,
				LogFile(l.opts.Dir, missing[0]))
		}
		return fmt.Errorf("the hosts did not come up within %s (%v); read the logs in %s", t.Hosts, te.Last,
			LogFile(l.opts.Dir, "*"))
	}
	return err
}

// died says which of ps (nil for one not started) has exited, with the
// end of its log, or nil.
func died(ps ...*Proc) error {
	for _, p := range ps {
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited while the cluster was starting (%v); read %s, which ends:\n%s",
				p.name, p.exitErr, p.log, Tail(p.log, 15))
		}
	}
	return nil
}

// Stop stops every process still running: the agents first, in parallel
// (with StopVMs each is asked to stop its VMs, else it gets SIGTERM), then
// the controller; SIGKILL for what does not stop within its Timeouts.
func (l *Local) Stop() {
	agents, ctrl := l.latest()
	stopAll(l.log, agents, ctrl, l.opts.StopVMs, l.opts.Timeouts)
}

// KillLeftovers kills, by PID, what the agents may leave running once
// they are stopped: their fencing watchdogs, which outlive an agent by
// design (they guard the QEMUs it left), and any QEMU process whose
// command line names the cluster's directory. It returns the QEMUs'
// PIDs.
func (l *Local) KillLeftovers() (qemus []int) {
	for _, host := range l.HostNames() {
		if pid := WatchdogPID(l.StateDir(host)); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	qemus = hostinfo.QEMUPIDs(l.opts.Dir)
	for _, pid := range qemus {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return qemus
}

// WatchdogPID is the PID of the fencing watchdog of an agent's state
// directory, if one runs, else 0.
func WatchdogPID(stateDir string) int {
	b, err := os.ReadFile(filepath.Join(stateDir, "fence", "watchdog.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if cl, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")); pid <= 0 || err != nil ||
		!strings.Contains(string(cl), "agent-watchdog") || !strings.Contains(string(cl), stateDir) {
		return 0
	}
	return pid
}
