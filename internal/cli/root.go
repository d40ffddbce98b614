// Package cli is the godwit command line: the user commands (the intent
// level: host, vm, image, and later migrate, drain, evacuate, resize,
// rebuild), the daemons (serve, agent) and the local cluster (up, down).
// Commands talk to the controller through the public api package only.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/version"
)

// app holds what every command shares.
type app struct {
	server   string
	output   string
	logLevel string
	out      io.Writer
	errOut   io.Writer
}

func (a *app) client() *api.Client { return api.NewClient(a.server) }

func (a *app) json() bool { return a.output == "json" }

func (a *app) logger() *slog.Logger {
	lvl := slog.LevelInfo
	_ = lvl.UnmarshalText([]byte(a.logLevel))
	return slog.New(slog.NewTextHandler(a.errOut, &slog.HandlerOptions{Level: lvl}))
}

// usageError marks errors in how a command was called (exit status 2).
type usageError struct{ error }

// NewRoot builds the command tree writing to out and errOut.
func NewRoot(out, errOut io.Writer) *cobra.Command {
	a := &app{out: out, errOut: errOut}
	root := &cobra.Command{
		Use:   "godwit",
		Short: "godwit moves virtual machines around a KVM cluster",
		Long: `godwit is a compute controller for KVM clusters whose heart is VM mobility.

Start a local cluster with 'godwit up', then create VMs with 'godwit vm create'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if a.output != "table" && a.output != "json" {
				return usageError{fmt.Errorf("--output must be table or json, not %q", a.output)}
			}
			return nil
		},
	}
	root.SetOut(out)
	root.SetErr(errOut)
	server := os.Getenv("GODWIT_SERVER")
	if server == "" {
		server = api.DefaultServer
	}
	root.PersistentFlags().StringVar(&a.server, "server", server, "controller URL (env GODWIT_SERVER)")
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "info", "log level of serve, agent and up: debug, info, warn, error")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(a.hostCmd(), a.vmCmd(), a.imageCmd(), a.migrateCmd(), a.migrationCmd(), a.serveCmd(), a.agentCmd(), a.upCmd(), a.downCmd(),
		&cobra.Command{
			Use:   "version",
			Short: "Print godwit's version",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				fmt.Fprintln(a.out, "godwit", version.Version)
				return nil
			},
		})
	return root
}

// Execute runs the command line and returns the process exit status.
func Execute(ctx context.Context, args []string) int {
	root := NewRoot(os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "godwit: "+strings.TrimSuffix(err.Error(), "\n"))
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.Contains(err.Error(), "accepts ") {
		return 2
	}
	return 1
}
