// Package safe starts goroutines that cannot take their process down: a
// panic in one is recovered and logged at error with its stack. A host
// agent runs every VM of its host's controller-side view; one bad reply
// from QEMU or one nil map must not stop its heartbeat and lease (whose
// loss fences the host's VMs). HTTP handlers need none of this: net/http
// recovers their panics itself.
package safe

import (
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Go runs f in a new goroutine. A panic in f is recovered and logged
// under what (the goroutine's job, e.g. "heartbeat loop"); the goroutine
// then ends, as it would have had f returned.
func Go(log *slog.Logger, what string, f func()) {
	go func() { _ = Run(log, what, f) }()
}

// Run calls f in this goroutine and recovers a panic in it, logging it
// as Go does and returning it as an error. A loop calls it for each round
// of work, so that a panic ends that round, not the loop.
func Run(log *slog.Logger, what string, f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s panicked: %v", what, p)
			if log == nil {
				log = slog.Default()
			}
			log.Error("recovered a panic; the process goes on", "in", what, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	f()
	return nil
}
