package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/hostapi"
)

// proc is a process of a cluster: a child the supervisor started, or one
// adopted from its pid file (godwit down after the supervisor died).
type proc struct {
	name    string
	url     string // an agent's API URL
	log     string
	done    chan struct{} // closed once the process has exited
	exitErr error         // why it exited; set before done is closed
	signal  func(os.Signal) error
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// supervisor owns the processes of a cluster that Up started.
type supervisor struct {
	cfg   Config
	log   *slog.Logger
	procs []*proc
	exits chan *proc // each proc once, as it exits
}

// start runs the godwit binary with args as the process name, logging to
// its log file and recorded in its pid file until it exits.
func (s *supervisor) start(name, url string, args []string) (*proc, error) {
	if s.exits == nil {
		s.exits = make(chan *proc, s.cfg.Hosts+1)
	}
	logPath := LogFile(s.cfg.Dir, name)
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the log of %s: %w", name, err)
	}
	defer lf.Close()
	fmt.Fprintf(lf, "\n--- %s godwit up starts %s: %s %s\n", time.Now().Format(time.RFC3339), name, s.cfg.Exe, strings.Join(args, " "))
	cmd := exec.Command(s.cfg.Exe, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group: a Ctrl-C in the terminal reaches only
		// godwit up, which then stops everything in order.
		Setpgid: true,
		// Should godwit up die without stopping it (kill -9), the child is
		// told to exit rather than linger holding its port. An agent that
		// exits so leaves its VMs running; the next godwit up reattaches.
		Pdeathsig: syscall.SIGTERM,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	pidFile := childPIDFile(s.cfg.Dir, name)
	p := &proc{name: name, url: url, log: logPath, done: make(chan struct{}), signal: cmd.Process.Signal}
	if err := writePIDFile(pidFile, recordOf(cmd.Process.Pid, url)); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("record the pid of %s: %w", name, err)
	}
	go func() {
		p.exitErr = cmd.Wait()
		os.Remove(pidFile)
		close(p.done)
		s.exits <- p
	}()
	s.procs = append(s.procs, p)
	s.log.Info("started", "process", name, "pid", cmd.Process.Pid, "log", logPath)
	return p, nil
}

// startAll starts the controller, waits until it answers, then starts the
// agents and waits until every host is up. An error names the log to read.
func (s *supervisor) startAll(ctx context.Context, acc, reason string) error {
	cfg, t := s.cfg, s.cfg.timeouts
	ctrlURL := ControllerURL(cfg.Port)
	ctrl, err := s.start(controllerName, "", controllerArgs(cfg))
	if err != nil {
		return err
	}
	err = waitUntil(ctx, t.controller, t.poll, func(ctx context.Context) error {
		_, err := api.NewClient(ctrlURL).Version(ctx)
		return err
	}, s.died)
	if errors.As(err, new(timeoutError)) {
		return fmt.Errorf("the controller did not answer at %s within %s; read %s", ctrlURL, t.controller, ctrl.log)
	}
	if err != nil {
		return err
	}
	s.log.Info("controller is up", "url", ctrlURL)

	var names []string
	for i := 1; i <= cfg.Hosts; i++ {
		name := hostName(i)
		if _, err := s.start(name, "http://"+agentAddr(cfg.Port, i), agentArgs(cfg, i, acc, reason)); err != nil {
			return err
		}
		names = append(names, name)
	}
	err = waitUntil(ctx, t.hosts, t.poll, func(ctx context.Context) error {
		return hostsUp(ctx, ctrlURL, names)
	}, s.died)
	var te timeoutError
	if errors.As(err, &te) {
		var missing notUp
		if errors.As(te.last, &missing) {
			return fmt.Errorf("%s did not come up within %s; read %s", strings.Join(missing, ", "), t.hosts,
				LogFile(cfg.Dir, missing[0]))
		}
		return fmt.Errorf("the hosts did not come up within %s (%v); read the logs in %s", t.hosts, te.last,
			LogFile(cfg.Dir, "*"))
	}
	if err != nil {
		return err
	}
	s.log.Info("all hosts are up", "hosts", cfg.Hosts)
	return nil
}

// died says which process has exited, with the end of its log, or nil.
func (s *supervisor) died() error {
	for _, p := range s.procs {
		if p.exited() {
			return fmt.Errorf("%s exited while the cluster was starting (%v); read %s, which ends:\n%s",
				p.name, p.exitErr, p.log, tail(p.log, 15))
		}
	}
	return nil
}

// watch waits for ctx to end. A controller that exits ends the cluster; an
// agent that exits is only reported: its host goes down as a real one
// would, which is worth being able to try.
func (s *supervisor) watch(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			s.log.Info("stopping the cluster: the agents stop their VMs, then the controller stops")
			return nil
		case p := <-s.exits:
			if p.name == controllerName {
				s.log.Error("the controller exited; stopping the cluster", "err", p.exitErr, "log", p.log)
				return fmt.Errorf("the controller exited unexpectedly (%v); read %s", p.exitErr, p.log)
			}
			s.log.Warn("a host agent exited; the controller will mark its host down", "host", p.name, "err", p.exitErr, "log", p.log)
		}
	}
}

// stop shuts the cluster down in order.
func (s *supervisor) stop() {
	var agents []*proc
	var ctrl *proc
	for _, p := range s.procs {
		if p.name == controllerName {
			ctrl = p
		} else {
			agents = append(agents, p)
		}
	}
	stopProcs(s.log, agents, ctrl, s.cfg.timeouts)
	s.procs = nil
}

// stopProcs asks every agent to stop its VMs and exit (SIGTERM if it does
// not take the request), waits for them, bounded, and only then stops the
// controller, which the agents need until they are done.
func stopProcs(log *slog.Logger, agents []*proc, ctrl *proc, t timeouts) {
	var wg sync.WaitGroup
	for _, p := range agents {
		if p.exited() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(t.agentStop)
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			err := errors.New("its URL is unknown")
			if p.url != "" {
				err = hostapi.NewAgent(p.url, 0).Shutdown(ctx, true)
			}
			if err != nil && !p.exited() {
				log.Warn("agent did not take the shutdown request; sending SIGTERM (its VMs keep running)", "process", p.name, "err", err)
				_ = p.signal(syscall.SIGTERM)
			}
			waitExit(log, p, time.Until(deadline)+5*time.Second)
		}()
	}
	wg.Wait()
	if ctrl != nil && !ctrl.exited() {
		_ = ctrl.signal(syscall.SIGTERM)
		waitExit(log, ctrl, t.controllerStop)
	}
}

func waitExit(log *slog.Logger, p *proc, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.done:
		log.Info("stopped", "process", p.name)
		return
	case <-timer.C:
	}
	log.Warn("killing a process that did not stop in time", "process", p.name, "after", d.Round(time.Second), "log", p.log)
	_ = p.signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		log.Error("process survives SIGKILL", "process", p.name)
	}
}

// adopt makes a proc of a recorded process that is not our child.
func adopt(dir string, m member, poll time.Duration) *proc {
	p := &proc{name: m.name, url: m.rec.URL, log: LogFile(dir, m.name), done: make(chan struct{})}
	p.signal = func(sig os.Signal) error {
		if !m.rec.alive() { // never signal a recycled PID
			return os.ErrProcessDone
		}
		return syscall.Kill(m.rec.PID, sig.(syscall.Signal))
	}
	go func() {
		for m.rec.alive() {
			time.Sleep(poll)
		}
		close(p.done)
	}()
	return p
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimLeft(strings.Join(lines, "\n"), "\n")
}
