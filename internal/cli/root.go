// Package cli is the godwit command line: the user commands (the intent
// level: host, vm, image, flavor, keypair, migrate, migration, drain, evacuate, resize,
// rebuild, intent, cluster settings, tokens, projects, audit), the daemons (serve, agent) and the
// local cluster (up, down). User commands talk to the controller through the public api
// package only; an intent's plan and progress are shown in the three
// levels' words (intent, service operation, driver strategy).
package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/pki"
)

// app holds what every command shares.
type app struct {
	server   string
	ca       string      // --ca: the cluster CA's certificate file
	token    string      // --token, else defaultToken
	config   userConfig  // the user's config file
	tlsCfg   *tls.Config // from ca, for an https server
	output   string
	logLevel string
	out      io.Writer
	errOut   io.Writer
	tty      bool          // out is a terminal: progress redraws in place
	poll     time.Duration // how often watches ask a controller without the event stream
}

func newApp(out, errOut io.Writer) *app {
	return &app{out: out, errOut: errOut, tty: isTerminal(out), poll: 300 * time.Millisecond}
}

func (a *app) client() *api.Client {
	c := api.NewClient(a.server)
	if a.tlsCfg != nil {
		c.HTTP = api.NewHTTPClient(api.HTTPOptions{TLS: a.tlsCfg})
	}
	c.Token = a.token
	if c.Token == "" {
		c.Token = defaultToken(a.config)
	}
	return c
}

// defaultCA is GODWIT_CA, or the user's config file's, or else the CA
// of godwit up's cluster in its default directory when there is one: the
// CLI then works with it as it is, without a flag.
func defaultCA(cfg userConfig) string {
	if ca := os.Getenv("GODWIT_CA"); ca != "" {
		return ca
	}
	if cfg.CA != "" {
		return cfg.CA
	}
	if _, err := os.Stat(cluster.CAFile(defaultClusterDir())); err == nil {
		return cluster.CAFile(defaultClusterDir())
	}
	return ""
}

// noServer are the commands that talk to no controller as a user.
var noServer = map[string]bool{"up": true, "down": true, "serve": true, "agent": true, "agent-watchdog": true, "init": true, "probe": true}

// loadCA reads --ca: the client then trusts that CA (and only it) for
// an https controller.
func (a *app) loadCA() error {
	if a.ca == "" {
		return nil
	}
	cfg, err := pki.LoadTrust(a.ca)
	if err != nil {
		return usagef("--ca: %v (use the ca.crt godwit init or godwit up wrote)", err)
	}
	a.tlsCfg = cfg
	return nil
}

// structured reports whether the output is for scripts (json or yaml):
// the API objects as they are, rather than tables.
func (a *app) structured() bool { return a.output == "json" || a.output == "yaml" }

// print writes v in the output's format: JSON indented, or YAML (the
// same keys: it is made from the JSON).
func (a *app) print(v any) error {
	if a.output != "yaml" {
		return printJSON(a.out, v)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return err
	}
	_, err = a.out.Write(y)
	return err
}

// logger is what serve, agent and up log with: text to stderr.
func (a *app) logger() *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(a.logLevel)) // checked in PersistentPreRunE
	return slog.New(slog.NewTextHandler(a.errOut, &slog.HandlerOptions{Level: lvl}))
}

func validLogLevel(s string) bool {
	var lvl slog.Level
	return lvl.UnmarshalText([]byte(s)) == nil
}

// usageError marks an error in how a command was called: exit status 2,
// and a pointer to the command's help.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// NewRoot builds the command tree writing to out and errOut.
func NewRoot(out, errOut io.Writer) *cobra.Command { return newApp(out, errOut).root() }

func (a *app) root() *cobra.Command {
	out, errOut := a.out, a.errOut
	cfg, cfgErr := loadUserConfig()
	a.config = cfg
	root := &cobra.Command{
		Use:   "godwit",
		Short: "godwit moves virtual machines around a KVM cluster",
		Long: `godwit is a compute controller for KVM clusters whose heart is VM mobility.

Start a local cluster with 'godwit up', then create VMs with 'godwit vm create'.
Move a VM with 'godwit migrate', empty a host for maintenance with 'godwit
drain', rebuild the VMs of a dead host with 'godwit evacuate'; change a VM's
size in place with 'godwit resize'. Each shows its plan with --dry-run.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if a.output != "table" && a.output != "json" && a.output != "yaml" {
				return usagef("--output must be table, json or yaml, not %q", a.output)
			}
			if !validLogLevel(a.logLevel) {
				return usagef("--log-level must be debug, info, warn or error, not %q", a.logLevel)
			}
			if cfgErr != nil {
				return fmt.Errorf("the config file: %w (fix or remove it)", cfgErr)
			}
			if noServer[cmd.Name()] && cmd.Parent() == cmd.Root() {
				return nil // the CA may not exist yet (godwit up makes it)
			}
			return a.loadCA()
		},
	}
	root.SetOut(out)
	root.SetErr(errOut)
	server := os.Getenv("GODWIT_SERVER")
	if server == "" {
		server = cfg.Server
	}
	if server == "" {
		server = api.DefaultServer
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", server, "controller URL (env GODWIT_SERVER)")
	pf.StringVar(&a.ca, "ca", defaultCA(cfg), "the cluster CA's certificate, to trust an https controller (env GODWIT_CA; default: the config file's, or godwit up's)")
	pf.StringVar(&a.token, "token", "", "API token (env GODWIT_TOKEN; default: the config file's, or godwit up's admin token)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml (json and yaml: the API objects, for scripts)")
	pf.StringVar(&a.logLevel, "log-level", "info", "log level of serve, agent and up: debug, info, warn, error")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(a.hostCmd(), a.vmCmd(), a.imageCmd(), a.networkCmd(), a.flavorCmd(), a.keyPairCmd(), a.migrateCmd(), a.migrationCmd(),
		a.drainCmd(), a.evacuateCmd(), a.resizeCmd(), a.rebuildCmd(), a.intentCmd(),
		a.statusCmd(), a.clusterCmd(), a.tokenCmd(), a.projectCmd(), a.whoamiCmd(), a.auditCmd(), a.initCmd(), a.serveCmd(), a.agentCmd(), a.agentWatchdogCmd(), a.upCmd(), a.downCmd(), a.probeCmd(), a.versionCmd())
	strictTree(root)
	return root
}

// strictTree makes every misuse a usageError: wrong arguments, and an
// unknown subcommand of a command group, which cobra would otherwise
// answer with the group's help and exit status 0.
func strictTree(c *cobra.Command) {
	switch {
	case c.HasSubCommands() && !c.Runnable():
		// Non-nil Args keeps cobra from rejecting the root's unknown
		// commands itself, with a plain error.
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if cmd.SuggestionsMinimumDistance <= 0 {
				cmd.SuggestionsMinimumDistance = 2 // cobra's own default
			}
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return usageError{errors.New(msg)}
		}
	case c.Args != nil:
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		strictTree(sub)
	}
}

// Execute runs the command line and returns the process exit status: 0,
// 1 for a failure, 2 for a usage error. Errors go to stderr as
// "godwit: <message>".
func Execute(ctx context.Context, args []string) int {
	return execute(ctx, args, os.Stdout, os.Stderr)
}

func execute(ctx context.Context, args []string, out, errOut io.Writer) int {
	return newApp(out, errOut).execute(ctx, args)
}

func (a *app) execute(ctx context.Context, args []string) int {
	errOut := a.errOut
	root := a.root()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(errOut, "godwit: "+errorMessage(err))
	if isUsage(err) {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(errOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return 2
	}
	return 1
}

// errorMessage is what the user reads. The controller's messages already
// say what to do; their HTTP status is noise on a terminal.
func errorMessage(err error) string {
	if ae, ok := err.(*api.Error); ok && ae.Message != "" {
		return ae.Message
	}
	return strings.TrimSuffix(err.Error(), "\n")
}

func isUsage(err error) bool {
	var ue usageError
	if errors.As(err, &ue) {
		return true
	}
	// Cobra reports a missing required flag (MarkFlagRequired) as a plain error.
	return strings.HasPrefix(err.Error(), "required flag(s)")
}
