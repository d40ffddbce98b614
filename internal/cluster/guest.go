package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/godwit/godwit/internal/guestlog"
)

// ErrNoHeartbeat says a console holds no complete heartbeat line yet.
var ErrNoHeartbeat = errors.New("no heartbeat line on the console yet")

// ImportGuest builds the test guest with the godwit CLI (godwit-guest
// must lie beside the godwit binary) and imports it as image testguest.
func (l *Local) ImportGuest(ctx context.Context) error {
	args := []string{"--server", l.URL()}
	if l.opts.TLS {
		args = append(args, "--ca", CAFile(l.opts.Dir))
	}
	cmd := exec.CommandContext(ctx, l.opts.Exe, append(args, "image", "build-testguest",
		"--out", filepath.Join(l.opts.Dir, "guest"), "--import", "testguest")...)
	cmd.Env = append(os.Environ(), "GODWIT_TOKEN="+l.token) // not in argv, where ps shows it
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("godwit image build-testguest: %w\n%s", err, out)
	}
	return nil
}

// maxConsole bounds what Console reads: a test guest's console that
// large is broken anyway.
const maxConsole = 32 << 20

// Console returns vm's console log from byte offset on (its first 32
// MiB), as the host it runs on now keeps it, read through the
// controller's API.
func (l *Local) Console(ctx context.Context, vm string, offset int64) ([]byte, error) {
	rc, err := l.client.Console(ctx, vm, offset, false)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxConsole))
}

// Heartbeat returns the guest's last complete heartbeat on vm's console
// from byte offset on (ErrNoHeartbeat when there is none): the one way
// the tests and the benchmark read a running guest's heartbeat.
func (l *Local) Heartbeat(ctx context.Context, vm string, offset int64) (guestlog.Heartbeat, error) {
	rc, err := l.client.Console(ctx, vm, offset, false)
	if err != nil {
		return guestlog.Heartbeat{}, err
	}
	defer rc.Close()
	hb, ok := guestlog.Last(rc)
	if !ok {
		return hb, ErrNoHeartbeat
	}
	return hb, nil
}

// WaitHeartbeat polls vm's heartbeat (Heartbeat from offset on) until
// want accepts one (returns nil), and returns it. want says why it does
// not accept a heartbeat yet; it is called only with heartbeats read, in
// order, so it may keep state (a counter that must move). It gives up
// when ctx ends or timeout passes (a *TimeoutError holding the last
// reason), returning the last heartbeat read.
func (l *Local) WaitHeartbeat(ctx context.Context, vm string, offset int64, timeout time.Duration, want func(guestlog.Heartbeat) error) (guestlog.Heartbeat, error) {
	var last guestlog.Heartbeat
	err := WaitUntil(ctx, timeout, l.opts.Timeouts.Poll, func(context.Context) error {
		// Not bounded by the attempt's few seconds: a long console read
		// on a loaded machine may take longer.
		hb, err := l.Heartbeat(ctx, vm, offset)
		if err != nil {
			return err
		}
		last = hb
		return want(hb)
	}, nil)
	return last, err
}
