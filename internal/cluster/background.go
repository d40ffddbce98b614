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
	"strings"
	"syscall"
	"time"
)

// detachTimeout bounds the wait for a background cluster: longer than the
// probe, the controller and the hosts waits of Up together.
const detachTimeout = 3 * time.Minute

// Detach runs cfg's cluster in the background: godwit up again, in its own
// session, with its output in DIR/logs/up.log. It returns, with the
// accelerator the hosts use, once the cluster is up; if the background up
// fails, the error ends with its log. Interrupting ctx stops it.
func Detach(ctx context.Context, cfg Config, progress io.Writer) (acc string, err error) {
	if err := cfg.setDefaults(); err != nil {
		return "", err
	}
	if err := Check(cfg); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "logs"), 0o700); err != nil {
		return "", fmt.Errorf("create the cluster directory: %w", err)
	}
	logPath := LogFile(cfg.Dir, "up")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	defer lf.Close()
	child := exec.Command(cfg.Exe, UpArgs(cfg)...)
	child.Stdout, child.Stderr = lf, lf // stdin is /dev/null
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return "", fmt.Errorf("start godwit up in the background: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = child.Wait(); close(done) }()
	fmt.Fprintf(progress, "starting a %d-host cluster in the background (log: %s)…\n", cfg.Hosts, logPath)

	t := cfg.timeouts
	err = WaitUntil(ctx, detachTimeout, t.Poll, func(context.Context) error {
		var ok bool
		if acc, ok = readyAccel(cfg.Dir, child.Process.Pid); !ok {
			return errors.New("not ready")
		}
		return nil
	}, func() error {
		select {
		case <-done:
			return fmt.Errorf("the cluster did not start; %s ends:\n%s", logPath, Tail(logPath, 20))
		default:
			return nil
		}
	})
	switch {
	case err == nil:
		return acc, nil
	case ctx.Err() != nil:
		fmt.Fprintln(progress, "interrupted; stopping the background cluster…")
		_ = child.Process.Signal(syscall.SIGTERM)
		<-done
		return "", errors.New("interrupted before the cluster was up; stopped it")
	case errors.As(err, new(*TimeoutError)):
		return "", fmt.Errorf("the cluster did not come up within %s; read %s (it keeps trying; stop it with: godwit down --dir %s)",
			detachTimeout, logPath, cfg.Dir)
	}
	return "", err
}

// downTimeout bounds godwit down: the supervisor's agents may each take
// their agentStop, in parallel, then the controller its controllerStop.
const downTimeout = 3 * time.Minute

// Down stops the cluster in dir and waits for it: the supervisor if it
// runs (it stops its agents, their VMs and its controller in order), and
// then any process a supervisor that died left behind. It reports
// progress, and whether anything was running.
func Down(ctx context.Context, dir string, progress io.Writer) (bool, error) {
	return down(ctx, dir, progress, defaultTimeouts)
}

func down(ctx context.Context, dir string, progress io.Writer, t Timeouts) (bool, error) {
	was := false
	if r, err := readPIDFile(PIDFile(dir)); err == nil && r.alive() {
		was = true
		if err := stopSupervisor(ctx, dir, r, progress, t); err != nil {
			return true, err
		}
	}
	if ms := leftovers(dir); len(ms) > 0 {
		was = true
		fmt.Fprintf(progress, "stopping what an earlier godwit up left running in %s: %s\n", dir, describe(ms))
		log := slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{ReplaceAttr: dropTime}))
		var agents []*Proc
		var ctrl *Proc
		agentTLS := agentTLSOf(dir) // read once: one configuration, one pool
		for _, m := range ms {
			if p := adopt(dir, m, agentTLS, log, t.Poll); m.name == controllerName {
				ctrl = p
			} else {
				agents = append(agents, p)
			}
		}
		stopAll(log, agents, ctrl, true, t)
		if ms := leftovers(dir); len(ms) > 0 { // also drops the pid files of the stopped
			return true, fmt.Errorf("could not stop %s; kill them by PID", describe(ms))
		}
	}
	// Whatever is left names processes that are gone.
	if r, err := readPIDFile(PIDFile(dir)); err != nil || !r.alive() {
		os.Remove(PIDFile(dir))
	}
	os.Remove(readyFile(dir))
	return was, nil
}

// stopSupervisor sends SIGTERM to godwit up and waits for it to exit,
// saying every few seconds which processes are still stopping.
func stopSupervisor(ctx context.Context, dir string, r pidRecord, progress io.Writer, t Timeouts) error {
	if err := syscall.Kill(r.PID, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal godwit up (pid %d): %w", r.PID, err)
	}
	fmt.Fprintf(progress, "stopping the cluster in %s (godwit up, pid %d): the agents stop their VMs first…\n", dir, r.PID)
	start := time.Now()
	lastReport := start
	for r.alive() {
		if time.Since(start) > downTimeout {
			return fmt.Errorf("the cluster in %s did not stop within %s; read %s (kill -9 %d ends godwit up at once; its agents then exit and leave their VMs running)",
				dir, downTimeout, LogFile(dir, "up"), r.PID)
		}
		if time.Since(lastReport) >= 5*time.Second {
			lastReport = time.Now()
			if ms := leftovers(dir); len(ms) > 0 {
				var names []string
				for _, m := range ms {
					names = append(names, m.name)
				}
				fmt.Fprintf(progress, "  still stopping after %s: %s\n", time.Since(start).Round(time.Second), strings.Join(names, ", "))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting; the cluster goes on stopping in the background: %w", ctx.Err())
		case <-time.After(t.Poll):
		}
	}
	// It has exited; give its new parent (init) a moment to reap it, so
	// that the PID is gone too when we return.
	for i := 0; i < 250 && syscall.Kill(r.PID, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// readyAccel reports whether the background cluster whose supervisor is
// pid is up, and with which accelerator.
func readyAccel(dir string, pid int) (acc string, ok bool) {
	if Running(dir) != pid {
		return "", false
	}
	b, err := os.ReadFile(readyFile(dir))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}
