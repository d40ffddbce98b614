// Package failpoint stops a godwit process at a named step, so tests can
// prove that a crash at the worst moment loses nothing.
//
// Failpoints are off unless the environment says otherwise, and then cost
// one map lookup:
//
//	GODWIT_FAILPOINTS="live/after-prepare=kill,cold/after-stop=kill"
//
// The action kill sends the process SIGKILL — exactly what kill -9 from
// outside does, at exactly that step. Names are "<operation>/<step>"; the
// steps each operation offers are listed where it calls Hit.
package failpoint

import (
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"
)

// Env is the variable failpoints are read from.
const Env = "GODWIT_FAILPOINTS"

var armed = parse(os.Getenv(Env))

func parse(s string) map[string]string {
	if s == "" {
		return nil
	}
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		name, action, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			action = "kill"
		}
		if name != "" {
			m[name] = action
		}
	}
	return m
}

// Hit is a failpoint: when name is armed, the process dies here.
func Hit(name string) {
	action, ok := armed[name]
	if !ok {
		return
	}
	slog.Warn("failpoint hit", "name", name, "action", action)
	switch action {
	case "kill":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		for { // delivery is asynchronous: never go on meanwhile
			time.Sleep(time.Second)
		}
	case "exit":
		os.Exit(3)
	}
}
