package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godwit/godwit/internal/hostapi"
)

// Proc is one process of a cluster: a child a Local started, or one
// adopted from its pid file (godwit down after the supervisor died). It
// is only ever signalled by its PID.
type Proc struct {
	name    string
	pid     int
	url     string      // an agent's API URL
	tls     *tls.Config // how to reach it, as the controller (nil: plain HTTP)
	log     string
	grace   time.Duration // how long Stop waits after SIGTERM
	logger  *slog.Logger
	done    chan struct{} // closed once the process has exited
	exitErr error         // why it exited; set before done is closed
	signal  func(os.Signal) error
}

// Name is the process's name in the cluster: controller, host1..hostN.
func (p *Proc) Name() string { return p.name }

// PID is the process's ID.
func (p *Proc) PID() int { return p.pid }

// Log is the file the process writes its output to.
func (p *Proc) Log() string { return p.log }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is why the process exited (nil while it runs, or for a clean exit).
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.exitErr
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error { return p.signal(sig) }

// Stop sends SIGTERM and waits for the process to exit: SIGKILL after
// its grace (Timeouts.AgentStop or ControllerStop). An agent stopped so
// leaves its VMs running.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = p.signal(syscall.SIGTERM)
	waitExit(p.logger, p, p.grace)
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	_ = p.signal(syscall.SIGKILL)
	<-p.done
}

// startProc runs exe with args as the process name (inside network
// namespace ns when not ""), appending its output to logPath after a
// line that says what started. It has its own process group, so that a
// Ctrl-C in the terminal reaches only its parent, which then stops
// everything in order; and should the parent die without stopping it
// (kill -9), it is sent SIGTERM rather than left holding its port (an
// agent that exits so leaves its VMs running).
func startProc(name, ns, exe string, args, env []string, logPath string) (*Proc, *exec.Cmd, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open the log of %s: %w", name, err)
	}
	defer lf.Close()
	cmd := exec.Command(exe, args...)
	if ns != "" {
		// ip netns exec execs the program in the same process: the PID
		// is godwit's.
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns, exe}, args...)...)
	}
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	line := append(append([]string(nil), env...), cmd.Args...) // what a shell would run
	fmt.Fprintf(lf, "\n--- %s starting %s: %s\n", time.Now().Format(time.RFC3339), name, strings.Join(line, " "))
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{name: name, pid: cmd.Process.Pid, log: logPath, done: make(chan struct{}), signal: cmd.Process.Signal}
	return p, cmd, nil
}

// stopAll stops agents and then ctrl (nil for none). Each agent, in
// parallel, is asked over its API to stop its VMs and exit when stopVMs
// (SIGTERM if it does not take the request), else sent SIGTERM, and is
// given t.AgentStop; the controller, which the agents need until they are
// done, is stopped only then. What does not stop in time gets SIGKILL.
func stopAll(log *slog.Logger, agents []*Proc, ctrl *Proc, stopVMs bool, t Timeouts) {
	var wg sync.WaitGroup
	for _, p := range agents {
		if p.Exited() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !stopVMs {
				_ = p.signal(syscall.SIGTERM)
				waitExit(log, p, t.AgentStop)
				return
			}
			deadline := time.Now().Add(t.AgentStop)
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			err := errors.New("its URL is unknown")
			if p.url != "" {
				err = hostapi.NewAgentTLS(p.url, 0, p.tls).Shutdown(ctx, true)
			}
			if err != nil && !p.Exited() {
				log.Warn("agent did not take the shutdown request; sending SIGTERM (its VMs keep running)", "process", p.name, "err", err)
				_ = p.signal(syscall.SIGTERM)
			}
			waitExit(log, p, time.Until(deadline)+5*time.Second)
		}()
	}
	wg.Wait()
	if ctrl != nil && !ctrl.Exited() {
		_ = ctrl.signal(syscall.SIGTERM)
		waitExit(log, ctrl, t.ControllerStop)
	}
}

// waitExit waits d for p to exit, then sends SIGKILL.
func waitExit(log *slog.Logger, p *Proc, d time.Duration) {
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

// adopt makes a Proc of a recorded process that is not our child; an
// agent is reached with agentTLS (nil: plain HTTP).
func adopt(dir string, m member, agentTLS *tls.Config, log *slog.Logger, poll time.Duration) *Proc {
	p := &Proc{name: m.name, pid: m.rec.PID, url: m.rec.URL, tls: agentTLS, log: LogFile(dir, m.name), logger: log, done: make(chan struct{})}
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

// Tail returns the last n lines of the file at path.
func Tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimLeft(strings.Join(lines, "\n"), "\n")
}
