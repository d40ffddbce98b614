package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/agent"
)

func writeConf(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "godwit.conf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs godwit with args; it returns the exit status, stdout and stderr.
func runDaemon(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// The file sets what the command line leaves out; the command line wins;
// repeatable flags are repeated keys; --print-config prints the result.
func TestDaemonConfigFileAndFlags(t *testing.T) {
	conf := writeConf(t, `# the controller
listen = 0.0.0.0:7400
data-dir = /srv/godwit
allow-host = ctl.example.org
allow-host = ctl
host-down-after = 15s
max-disk-upload = 2G
log-level = debug
`)
	code, out, stderr := runDaemon(t, "serve", "--config", conf, "--listen", "10.0.0.1:7400", "--print-config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"listen = 10.0.0.1:7400\n", // the command line wins
		"data-dir = /srv/godwit\n",
		"allow-host = ctl.example.org\nallow-host = ctl\n",
		"host-down-after = 15s\n",
		"max-disk-upload = 2G\n",
		"log-level = debug\n",
		"tls-dir = \"\"\n", // defaults are there too
		"no-post-copy = false\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("print-config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "print-config =") || strings.Contains(out, "config =") {
		t.Errorf("print-config prints its own flags:\n%s", out)
	}

	// What it prints is a config file that says the same.
	again := writeConf(t, out)
	code, out2, stderr := runDaemon(t, "serve", "--config", again, "--print-config")
	if code != 0 {
		t.Fatalf("reading print-config's output back: exit %d: %s", code, stderr)
	}
	strip := func(s string) string { _, rest, _ := strings.Cut(s, "\n"); return rest }
	if strip(out2) != strip(out) {
		t.Errorf("print-config does not round-trip:\nfirst\n%s\nsecond\n%s", out, out2)
	}
}

func TestDaemonConfigAgent(t *testing.T) {
	conf := writeConf(t, `controller = https://ctl:7400
join = secret-join-token
uplink = lan=eth1
uplink = san=eth2
memory = 60G
lease-ttl = 12s
`)
	code, out, stderr := runDaemon(t, "agent", "--config", conf, "--print-config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"controller = https://ctl:7400\n", "join = REDACTED\n", "uplink = lan=eth1\nuplink = san=eth2\n",
		"memory = 60G\n", "lease-ttl = 12s\n", "state-dir = /var/lib/godwit/agent\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("print-config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret-join-token") || strings.Contains(out, "accel-reason") {
		t.Errorf("print-config shows a secret or a hidden flag:\n%s", out)
	}
}

func TestDaemonConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name, cmd, body string
		want            []string
	}{
		{"unknown key", "serve", "listen = :1\nlisten-port = 7400\n", []string{"line 2", `unknown key "listen-port"`, "godwit serve --help"}},
		{"agent key in the controller's file", "serve", "uplink = lan=eth1\n", []string{`unknown key "uplink"`}},
		{"no equals sign", "agent", "listen 0.0.0.0:7401\n", []string{"line 1", "key = value"}},
		{"bad value", "agent", "heartbeat = often\n", []string{"line 1", "heartbeat", "often"}},
		{"twice", "serve", "listen = :1\nlisten = :2\n", []string{"line 2", `"listen" is set twice`}},
		{"bad log level", "serve", "log-level = loud\n", []string{"log-level must be"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runDaemon(t, tt.cmd, "--config", writeConf(t, tt.body), "--print-config")
			if code == 0 {
				t.Fatalf("exit 0, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, stderr)
				}
			}
		})
	}
	// A file named on the command line must exist; the default one may not.
	missing := filepath.Join(t.TempDir(), "nope.conf")
	if code, _, stderr := runDaemon(t, "agent", "--config", missing, "--print-config"); code == 0 || !strings.Contains(stderr, "--config") {
		t.Errorf("a missing --config file: exit %d, %s", code, stderr)
	}
	if err := loadDaemonConfig(nil, missing, false); err != nil {
		t.Errorf("a missing default file: %v", err)
	}
}

func TestDaemonConfigRedactsStorePassword(t *testing.T) {
	conf := writeConf(t, "store = postgres://godwit:hunter2@db.example.org/godwit\n")
	code, out, stderr := runDaemon(t, "serve", "--config", conf, "--print-config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(out, "hunter2") || !strings.Contains(out, "store = postgres://godwit:REDACTED@db.example.org/godwit\n") {
		t.Errorf("store not redacted:\n%s", out)
	}
}

// The watchdog reads the agent's file as the agent does.
func TestWatchdogFromAgentConfig(t *testing.T) {
	conf := writeConf(t, "state-dir = /srv/agent\nname = h1\nshared-dir = /mnt/pool\nlease-ttl = 20s\ndriver = qemu\nuplink = lan=eth1\nlog-level = warn\n")
	a := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	w := a.agentWatchdogCmd()
	if err := w.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	var cfg agent.WatchdogConfig
	ok, err := a.watchdogFromAgentConfig(w, &cfg, conf, true)
	if err != nil || !ok {
		t.Fatalf("ok %v, err %v", ok, err)
	}
	if cfg.StateDir != "/srv/agent" || cfg.Host != "h1" || cfg.Driver != "qemu" || cfg.FenceAfter != 14*time.Second || a.logLevel != "warn" {
		t.Errorf("got %+v, log level %s", cfg, a.logLevel)
	}
	// Flags win; an agent without a shared pool keeps no lease.
	w = a.agentWatchdogCmd()
	if err := w.ParseFlags([]string{"--fence-after", "3s"}); err != nil {
		t.Fatal(err)
	}
	cfg = agent.WatchdogConfig{FenceAfter: 3 * time.Second}
	if ok, err := a.watchdogFromAgentConfig(w, &cfg, conf, true); err != nil || !ok || cfg.FenceAfter != 3*time.Second {
		t.Errorf("ok %v err %v fence-after %s", ok, err, cfg.FenceAfter)
	}
	noShared := writeConf(t, "state-dir = /srv/agent\n")
	if ok, err := a.watchdogFromAgentConfig(w, &cfg, noShared, true); err != nil || ok {
		t.Errorf("without a shared pool: ok %v err %v", ok, err)
	}
}

// The packaged files (deploy/): the default configs are valid for their
// commands, and each unit's ExecStart is a valid command line reading them.
func TestPackagedConfigsAndUnits(t *testing.T) {
	root := filepath.Join("..", "..", "deploy")
	confs := map[string]string{
		"/etc/godwit/controller.conf": filepath.Join(root, "etc", "controller.conf"),
		"/etc/godwit/agent.conf":      filepath.Join(root, "etc", "agent.conf"),
	}
	units, err := filepath.Glob(filepath.Join(root, "systemd", "*.service"))
	if err != nil || len(units) != 3 {
		t.Fatalf("units %v, %v", units, err)
	}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		var exec []string
		var lines []string // without comments
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
			if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
				exec = strings.Fields(v)
			}
		}
		if len(exec) < 2 || exec[0] != "/usr/bin/godwit" {
			t.Fatalf("%s: ExecStart %q", u, exec)
		}
		unit := strings.Join(lines, "\n")
		args := exec[1:]
		for i, a := range args {
			if c, ok := confs[a]; ok {
				args[i] = c
			}
		}
		switch args[0] {
		case "serve", "agent":
			if code, _, stderr := runDaemon(t, append(args, "--print-config")...); code != 0 {
				t.Errorf("%s: %v: exit %d: %s", u, args, code, stderr)
			}
		case "agent-watchdog":
			a := newApp(&bytes.Buffer{}, &bytes.Buffer{})
			w := a.agentWatchdogCmd()
			if err := w.ParseFlags(args[1:]); err != nil {
				t.Fatalf("%s: %v", u, err)
			}
			a.logLevel = "info" // the root's default
			conf, _ := w.Flags().GetString("config")
			var cfg agent.WatchdogConfig
			if _, err := a.watchdogFromAgentConfig(w, &cfg, conf, true); err != nil {
				t.Errorf("%s: the watchdog reads %s: %v", u, conf, err)
			}
			if !strings.Contains(strings.Join(args, " "), "--stay") {
				t.Errorf("%s: the unit's watchdog must --stay", u)
			}
			if strings.Contains(unit, "PartOf=") || strings.Contains(unit, "BindsTo=") {
				t.Errorf("%s: the watchdog must outlive the agent: no PartOf or BindsTo", u)
			}
		default:
			t.Errorf("%s: unexpected command %q", u, args[0])
		}
		// Stopping or restarting the agent must leave its QEMUs running.
		if args[0] == "agent" && !strings.Contains(unit, "\nKillMode=process\n") {
			t.Errorf("%s: KillMode=process missing: restarting the agent would kill its VMs", u)
		}
	}
}
