// Package cluster runs a whole godwit cluster on one machine (godwit up):
// a controller and N agents as separate processes on loopback, each with
// its own state directory and log, all sharing one shared-pool directory.
// It starts them, waits until every host is up, and on shutdown stops the
// agents (and their VMs) before the controller. A PID file lets godwit
// down stop a cluster running in the background.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/accel"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/hostinfo"
)

// Config says what cluster to run.
type Config struct {
	Dir    string // state, logs and the shared pool live here
	Hosts  int
	Driver string // qemu or fake
	Accel  string // kvm, tcg or auto
	Port   int    // controller port; agents take the next ones
	Exe    string // the godwit binary (default: this one)
	// Args are passed to every agent (e.g. --memory 4096).
	AgentArgs []string
	Logger    *slog.Logger
	Out       io.Writer // where the usage block goes
}

// PIDFile is where a running cluster's supervisor records its PID.
func PIDFile(dir string) string { return filepath.Join(dir, "up.pid") }

// ControllerURL is the API address of a cluster on port.
func ControllerURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

type child struct {
	name string
	url  string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// Running returns the PID of the supervisor of the cluster in dir, or 0.
func Running(dir string) int {
	b, err := os.ReadFile(PIDFile(dir))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// Up runs the cluster until ctx is cancelled, then stops it.
func Up(ctx context.Context, cfg Config) error {
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.Exe = exe
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if pid := Running(cfg.Dir); pid != 0 && pid != os.Getpid() {
		return fmt.Errorf("a cluster is already running in %s (pid %d); stop it with: godwit down --dir %s", cfg.Dir, pid, cfg.Dir)
	}
	for _, d := range []string{"logs", "shared", "hosts"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(PIDFile(cfg.Dir), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	defer os.Remove(PIDFile(cfg.Dir))

	acc, reason := cfg.Accel, "set by godwit up --accel"
	if cfg.Driver == "qemu" && cfg.Accel == "auto" {
		cfg.Logger.Info("probing KVM once for all hosts")
		acc, reason = accel.Probe(ctx, hostinfo.NewestKernel(), accel.ProbeTimeout)
		reason = "godwit up: " + reason
		cfg.Logger.Info("accelerator chosen", "accel", acc, "reason", reason)
	}

	s := &supervisor{cfg: cfg, log: cfg.Logger}
	defer s.stop()
	ctrl := ControllerURL(cfg.Port)
	if err := s.start("controller", ctrl, "serve", "--listen", "127.0.0.1:"+strconv.Itoa(cfg.Port),
		"--data-dir", filepath.Join(cfg.Dir, "controller")); err != nil {
		return err
	}
	if err := s.waitFor(ctx, 30*time.Second, "the controller to answer", func() error {
		_, err := api.NewClient(ctrl).Version(ctx)
		return err
	}); err != nil {
		return err
	}
	for i := 1; i <= cfg.Hosts; i++ {
		name := fmt.Sprintf("host%d", i)
		addr := "127.0.0.1:" + strconv.Itoa(cfg.Port+i)
		args := append([]string{"agent", "--name", name, "--listen", addr, "--controller", ctrl,
			"--state-dir", filepath.Join(cfg.Dir, "hosts", name), "--shared-dir", filepath.Join(cfg.Dir, "shared"),
			"--driver", cfg.Driver, "--accel", acc, "--accel-reason", reason}, cfg.AgentArgs...)
		if err := s.start(name, "http://"+addr, args...); err != nil {
			return err
		}
	}
	if err := s.waitFor(ctx, 60*time.Second, fmt.Sprintf("%d hosts to come up", cfg.Hosts), func() error {
		return hostsUp(ctx, ctrl, cfg.Hosts)
	}); err != nil {
		return err
	}
	fmt.Fprint(cfg.Out, Usage(cfg, acc))
	select {
	case <-ctx.Done():
	case name := <-s.exited():
		s.log.Error("a cluster process exited; stopping the cluster", "process", name)
		return fmt.Errorf("%s exited unexpectedly; see %s", name, filepath.Join(cfg.Dir, "logs", name+".log"))
	}
	return nil
}

func hostsUp(ctx context.Context, ctrl string, n int) error {
	hs, err := api.NewClient(ctrl).Hosts(ctx)
	if err != nil {
		return err
	}
	up := 0
	for _, h := range hs {
		if h.State == api.HostUp {
			up++
		}
	}
	if up < n {
		return fmt.Errorf("%d of %d hosts up", up, n)
	}
	return nil
}

// Usage is the block printed once a cluster is up.
func Usage(cfg Config, acc string) string {
	return fmt.Sprintf(`
godwit cluster is up: a controller and %d hosts (%s driver, %s), state in %s

  export GODWIT_SERVER=%s
  godwit host list
  godwit image build-testguest --import testguest
  godwit vm create web-1 --image testguest --memory 256M --disk 1G
  godwit vm console web-1 -f
  godwit down --dir %s

`, cfg.Hosts, cfg.Driver, acc, cfg.Dir, ControllerURL(cfg.Port), cfg.Dir)
}

// supervisor owns the cluster's processes.
type supervisor struct {
	cfg      Config
	log      *slog.Logger
	children []*child
}

func (s *supervisor) start(name, url string, args ...string) error {
	logPath := filepath.Join(s.cfg.Dir, "logs", name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd := exec.Command(s.cfg.Exe, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Own process group: a Ctrl-C in the terminal reaches only godwit up,
	// which then stops everything in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, url: url, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	s.children = append(s.children, c)
	s.log.Info("started", "process", name, "pid", cmd.Process.Pid, "log", logPath)
	return nil
}

// waitFor polls f until it succeeds, a child dies, or d passes.
func (s *supervisor) waitFor(ctx context.Context, d time.Duration, what string, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return nil
		}
		for _, c := range s.children {
			select {
			case <-c.done:
				return fmt.Errorf("%s exited while waiting for %s; see %s:\n%s", c.name, what, c.log, tail(c.log, 15))
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s (%v); logs are in %s", d, what, err, filepath.Join(s.cfg.Dir, "logs"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// exited delivers the name of the first child to exit.
func (s *supervisor) exited() <-chan string {
	ch := make(chan string, len(s.children))
	for _, c := range s.children {
		go func(c *child) { <-c.done; ch <- c.name }(c)
	}
	return ch
}

// stop shuts the agents down with their VMs, then the controller.
func (s *supervisor) stop() {
	var agents []*child
	var ctrl *child
	for _, c := range s.children {
		if c.name == "controller" {
			ctrl = c
		} else {
			agents = append(agents, c)
		}
	}
	for _, c := range agents {
		go func(c *child) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := hostapi.NewAgent(c.url, 0).Shutdown(ctx, true); err != nil && !isExited(c) {
				s.log.Warn("agent did not take the shutdown request; terminating it", "process", c.name, "err", err)
				_ = c.cmd.Process.Signal(syscall.SIGTERM)
			}
		}(c)
	}
	for _, c := range agents {
		s.waitExit(c, 90*time.Second)
	}
	if ctrl != nil {
		_ = ctrl.cmd.Process.Signal(syscall.SIGTERM)
		s.waitExit(ctrl, 10*time.Second)
	}
	s.children = nil
}

func isExited(c *child) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (s *supervisor) waitExit(c *child, d time.Duration) {
	select {
	case <-c.done:
		s.log.Info("stopped", "process", c.name)
	case <-time.After(d):
		s.log.Warn("killing process that did not stop", "process", c.name, "after", d)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Down stops the cluster whose supervisor runs in dir and waits for it.
func Down(ctx context.Context, dir string, progress io.Writer) (bool, error) {
	pid := Running(dir)
	if pid == 0 {
		return false, nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return false, fmt.Errorf("signal godwit up (pid %d): %w", pid, err)
	}
	fmt.Fprintf(progress, "stopping the cluster in %s (pid %d): agents stop their VMs first…\n", dir, pid)
	deadline := time.Now().Add(3 * time.Minute)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			return true, errors.New("the cluster did not stop within 3 minutes; see " + filepath.Join(dir, "logs"))
		}
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return true, nil
}

// Ready reports whether the cluster at ctrl has n hosts up (for detach).
func Ready(ctx context.Context, port, n int) error { return hostsUp(ctx, ControllerURL(port), n) }
