// Command godwit is godwit's one binary: the controller (godwit serve), the
// host agent (godwit agent), a local cluster (godwit up) and the user CLI.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/godwit/godwit/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
