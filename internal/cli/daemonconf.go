package cli

// The daemons' config files (/etc/godwit/controller.conf, agent.conf).
//
// The format is `key = value` lines whose keys are the command's long flag
// names, because the flags already are the configuration: their names,
// types, defaults, validation and help need no second description, a key
// means exactly what `godwit serve --help` says of its flag, and nothing
// new is linked in. A repeatable flag is a repeated key. '#' starts a
// comment line. A flag given on the command line wins over the file, so a
// unit's ExecStart or an operator's one-off run can override one key.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Default config files: read when present, skipped when not, so that a
// host without one runs on the flags alone.
const (
	ControllerConfigFile = "/etc/godwit/controller.conf"
	AgentConfigFile      = "/etc/godwit/agent.conf"
)

// notInConfig are flags that make no sense in a file.
var notInConfig = map[string]bool{"config": true, "print-config": true, "help": true}

// globalInConfig are the root's flags a daemon's file may set too.
var globalInConfig = []string{"log-level"}

// confLine is one key = value of a config file.
type confLine struct {
	key, value string
	line       int
}

// parseConf reads key = value lines; name is for errors.
func parseConf(r io.Reader, name string) ([]confLine, error) {
	var out []confLine
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("%s line %d: %q is no key = value line (keys are the flag names, e.g. listen = 0.0.0.0:7400)", name, n, s)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		k = strings.TrimPrefix(k, "--")
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1] // an empty or space-edged value
		}
		out = append(out, confLine{key: k, value: v, line: n})
	}
	return out, sc.Err()
}

// confFlags are the flags of cmd a config file may set, by name.
func confFlags(cmd *cobra.Command) map[string]*pflag.Flag {
	m := map[string]*pflag.Flag{}
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if !notInConfig[f.Name] {
			m[f.Name] = f
		}
	})
	for _, g := range globalInConfig {
		if f := cmd.Flags().Lookup(g); f != nil {
			m[g] = f
		}
	}
	return m
}

// loadDaemonConfig applies the config file path to cmd's flags, except
// those given on the command line. explicit says the user named the file
// (--config), so a missing one is an error; the default one may be absent.
// An empty path reads nothing.
func loadDaemonConfig(cmd *cobra.Command, path string, explicit bool) error {
	if path == "" {
		return nil
	}
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil
	}
	if err != nil {
		return fmt.Errorf("the config file: %w (pass --config with the right file, or --config= for none)", err)
	}
	defer fh.Close()
	lines, err := parseConf(fh, path)
	if err != nil {
		return err
	}
	return applyConf(cmd, lines, path)
}

func applyConf(cmd *cobra.Command, lines []confLine, name string) error {
	flags := confFlags(cmd)
	// Which flags the command line set, before the file sets any.
	onCmdline := map[string]bool{}
	for k, f := range flags {
		onCmdline[k] = f.Changed
	}
	seen := map[string]bool{}
	for _, l := range lines {
		f, ok := flags[l.key]
		if !ok {
			return fmt.Errorf("%s line %d: unknown key %q (the keys are %s's flags: see godwit %s --help)", name, l.line, l.key, cmd.Name(), cmd.Name())
		}
		if onCmdline[l.key] {
			continue
		}
		if seen[l.key] && !repeatable(f) {
			return fmt.Errorf("%s line %d: %q is set twice (only repeatable flags may be)", name, l.line, l.key)
		}
		seen[l.key] = true
		if err := cmd.Flags().Set(l.key, l.value); err != nil {
			return fmt.Errorf("%s line %d: %s: %v", name, l.line, l.key, err)
		}
	}
	return nil
}

// repeatable flags take a key once per value.
func repeatable(f *pflag.Flag) bool {
	switch f.Value.Type() {
	case "stringSlice", "stringArray", "stringToString", "intSlice":
		return true
	}
	return false
}

// redact says how a key's value is shown by --print-config.
var redact = map[string]func(string) string{
	"join": func(v string) string {
		if v == "" {
			return v
		}
		return "REDACTED"
	},
	// A PostgreSQL DSN may carry a password.
	"store": func(v string) string {
		u, err := url.Parse(v)
		if err != nil || u.User == nil {
			return v
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
		return u.String()
	},
}

// printConf writes cmd's effective configuration as a config file: every
// key, in flag order, secrets redacted.
func printConf(w io.Writer, cmd *cobra.Command, source string) error {
	flags := confFlags(cmd)
	names := make([]string, 0, len(flags))
	for k := range flags {
		names = append(names, k)
	}
	sort.Strings(names)
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# godwit %s: the effective configuration (%s)\n", cmd.Name(), source)
	for _, k := range names {
		f := flags[k]
		if f.Hidden {
			continue
		}
		for _, v := range confValues(cmd.Flags(), f) {
			if r := redact[k]; r != nil {
				v = r(v)
			}
			if v == "" || strings.TrimSpace(v) != v {
				v = `"` + v + `"`
			}
			fmt.Fprintf(bw, "%s = %s\n", k, v)
		}
	}
	return bw.Flush()
}

// confValues is f's value as config lines' values: one per element of a
// repeatable flag (none when empty), else one.
func confValues(fs *pflag.FlagSet, f *pflag.Flag) []string {
	switch f.Value.Type() {
	case "stringToString":
		m, _ := fs.GetStringToString(f.Name)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([]string, len(keys))
		for i, k := range keys {
			out[i] = k + "=" + m[k]
		}
		return out
	}
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.GetSlice()
	}
	return []string{f.Value.String()}
}

// configSource says where the configuration came from, for --print-config.
func configSource(path string) string {
	if path == "" {
		return "flags only"
	}
	if _, err := os.Stat(path); err != nil {
		return path + " absent: flags and defaults"
	}
	return path + ", then the command line"
}

// daemonConfig adds --config and --print-config to a daemon command and
// wraps its RunE: the file is applied first, and --print-config prints
// and exits.
func (a *app) daemonConfig(cmd *cobra.Command, defaultFile string) {
	var path string
	var print bool
	cmd.Flags().StringVar(&path, "config", defaultFile, "config file: key = value lines, the keys this command's flag names; flags on the command line win; the default file is read only if present; --config= for none")
	cmd.Flags().BoolVar(&print, "print-config", false, "print the effective configuration in the config file's format (secrets redacted) and exit")
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := loadDaemonConfig(cmd, path, cmd.Flags().Changed("config")); err != nil {
			return err
		}
		if !validLogLevel(a.logLevel) { // the file may have set it
			return usagef("log-level must be debug, info, warn or error, not %q", a.logLevel)
		}
		if print {
			return printConf(a.out, cmd, configSource(path))
		}
		return run(cmd, args)
	}
}
