// Command godwit is godwit's one binary: the controller (godwit serve), the
// host agent (godwit agent), a local cluster (godwit up, godwit down) and
// the user CLI (godwit host, vm, image, migrate, ...). See internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/godwit/godwit/internal/cli"
)

func main() {
	// Everything godwit writes — disks, console logs, VM state, the
	// database, seeds, logs — is its owner's alone. QEMU runs as the same
	// user, so it still reads and writes them.
	syscall.Umask(0o077)
	// The context ends on SIGINT, SIGTERM or SIGHUP (a closed terminal):
	// serve, agent and up shut down cleanly, a followed console ends.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := cli.Execute(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
