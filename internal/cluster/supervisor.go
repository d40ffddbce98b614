package cluster

import (
	"context"
	"fmt"
	"log/slog"
)

// supervisor owns the processes of a cluster that Up started.
type supervisor struct {
	log   *slog.Logger
	local *Local
	exits chan *Proc // each process once, as it exits
}

// newSupervisor lays out cfg's cluster, whose agents use the accelerator
// acc (chosen for them all, for reason; "" leaves it to each agent).
func newSupervisor(cfg Config, acc, reason string) (*supervisor, error) {
	s := &supervisor{log: cfg.Logger, exits: make(chan *Proc, cfg.Hosts+1)}
	l, err := New(Options{
		TLS: !cfg.Insecure, Dir: cfg.Dir, Exe: cfg.Exe, Hosts: cfg.Hosts, Driver: cfg.Driver, Accel: acc, AccelReason: reason,
		ControllerAddr: agentAddr(cfg.Port, 0),
		AgentAddr:      func(i int) string { return agentAddr(cfg.Port, i) },
		HostCPUs:       cfg.HostCPUs, HostMemoryMiB: cfg.HostMemoryMiB, LogLevel: cfg.LogLevel,
		StopVMs: true, Timeouts: cfg.timeouts, Logger: cfg.Logger,
		recordPIDs: true, onExit: func(p *Proc) { s.exits <- p },
	})
	if err != nil {
		return nil, err
	}
	s.local = l
	return s, nil
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
func (s *supervisor) stop() { s.local.Stop() }
