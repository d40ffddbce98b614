package cli

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// Failures print "godwit: <message>" on stderr and exit 1; misuse exits 2
// and points at the help.
func TestErrors(t *testing.T) {
	srv := newFakeController(t)
	down := httptest.NewServer(nil)
	down.Close()
	for _, tt := range []struct {
		name   string
		srv    *httptest.Server
		args   []string
		code   int
		stderr []string
	}{
		{"controller's message", srv.Server, []string{"vm", "show", "nope"}, 1,
			[]string{`godwit: vm "nope" not found; list them with: godwit vm list` + "\n"}},
		{"no controller", down, []string{"host", "list"}, 1,
			[]string{"godwit: cannot reach the godwit controller at " + down.URL, "GODWIT_SERVER"}},
		{"unknown command", srv.Server, []string{"frobnicate"}, 2,
			[]string{`godwit: unknown command "frobnicate" for "godwit"`, "Run 'godwit --help' for usage."}},
		{"unknown subcommand", srv.Server, []string{"vm", "lst"}, 2,
			[]string{`unknown command "lst" for "godwit vm"; did you mean list or set?`, "Run 'godwit vm --help'"}},
		{"unknown flag", srv.Server, []string{"vm", "list", "--bogus"}, 2,
			[]string{"godwit: unknown flag: --bogus", "Run 'godwit vm list --help'"}},
		{"missing argument", srv.Server, []string{"vm", "show"}, 2, []string{"accepts 1 arg(s), received 0"}},
		{"extra argument", srv.Server, []string{"host", "list", "x"}, 2, []string{"godwit: "}},
		{"missing --image", srv.Server, []string{"vm", "create", "x"}, 2, []string{"--image is required", "godwit image list"}},
		{"bad panic policy", srv.Server, []string{"vm", "create", "x", "--image", "i", "--on-panic", "reboot"}, 2,
			[]string{`--on-panic must be restart, pause, none, not "reboot"`}},
		{"bad size", srv.Server, []string{"vm", "create", "x", "--image", "i", "--memory", "lots"}, 2,
			[]string{`"--memory"`, "256M, 1.5G, 2GiB"}},
		{"bad output", srv.Server, []string{"vm", "list", "-o", "xml"}, 2, []string{"--output must be table, json or yaml"}},
		{"bad log level", srv.Server, []string{"serve", "--log-level", "loud"}, 2, []string{"--log-level must be"}},
		{"bad hosts", srv.Server, []string{"up", "--hosts", "0"}, 2, []string{"--hosts must be between 1 and 64"}},
		{"bad driver", srv.Server, []string{"up", "--driver", "xen"}, 2, []string{"--driver must be fake or qemu"}},
		{"negative timeout", srv.Server, []string{"vm", "stop", "web-1", "--timeout", "-1s"}, 2, []string{"--timeout"}},
		{"bad failure policy", srv.Server, []string{"drain", "host1", "--on-failure", "retry"}, 2,
			[]string{"--on-failure must be skip, cold, stop or abort"}},
		{"negative limit", srv.Server, []string{"drain", "host1", "--max-per-source", "-1"}, 2, []string{"--max-per-source must be 0"}},
		{"resize nothing", srv.Server, []string{"resize", "web-1"}, 2, []string{"--vcpus, --memory or --disk"}},
		{"resize bad size", srv.Server, []string{"resize", "web-1", "--disk", "big"}, 2, []string{`"--disk"`, "2GiB"}},
		{"live and cold", srv.Server, []string{"migrate", "web-1", "--live", "--cold"}, 2, []string{"choose one of --live and --cold"}},
		{"live and hold", srv.Server, []string{"migrate", "web-1", "--live", "--hold"}, 2, []string{"--hold holds a cold migration", "--cold --hold"}},
		{"evacuate refused", srv.Server, []string{"evacuate", "host2"}, 1, []string{"confirm with --host-is-down"}},
		{"intent missing", srv.Server, []string{"intent", "cancel", "in-1"}, 1, []string{"godwit: "}},
		{"import without files", srv.Server, []string{"image", "import", "x"}, 2, []string{"--kernel", "--disk"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, tt.srv, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			if !strings.HasPrefix(errOut, "godwit: ") {
				t.Errorf("stderr does not start with \"godwit: \":\n%s", errOut)
			}
			for _, want := range tt.stderr {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			if strings.Contains(errOut, "(HTTP ") {
				t.Errorf("stderr shows the HTTP status:\n%s", errOut)
			}
			if out != "" {
				t.Errorf("stdout on failure: %q", out)
			}
		})
	}
}

func TestHelpExitsZero(t *testing.T) {
	srv := newFakeController(t)
	for _, args := range [][]string{{}, {"vm"}, {"--help"}, {"vm", "create", "--help"}, {"help", "up"}} {
		out, errOut, code := run(t, srv.Server, args...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("godwit %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, errOut)
		}
	}
}
