package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/controller"
	"github.com/godwit/godwit/internal/service"
)

// godwit init writes the admin token to the user's config file (0600),
// once; the CLI then uses it, GODWIT_TOKEN or --token override it; the
// token, project, whoami and audit commands work against a controller
// with a CA.
func TestInitTokenAndAuthCommands(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config", "godwit.json")
	t.Setenv("GODWIT_CONFIG", cfgPath)
	t.Setenv("GODWIT_TOKEN", "")
	t.Setenv("GODWIT_CA", "")
	t.Setenv("GODWIT_SERVER", "")
	t.Setenv("HOME", dir) // no godwit up cluster of the user's
	cli := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := execute(context.Background(), args, &out, &errOut)
		return out.String(), errOut.String(), code
	}
	pkiDir := filepath.Join(dir, "pki")
	if out, errOut, code := cli("init", "--tls-dir", pkiDir, "--address", "127.0.0.1"); code != 0 || !strings.Contains(out, cfgPath) {
		t.Fatalf("init: %d %s %s", code, out, errOut)
	}
	st, err := os.Stat(cfgPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v; want mode 0600", st, err)
	}
	var cfg userConfig
	b, _ := os.ReadFile(cfgPath)
	if json.Unmarshal(b, &cfg) != nil || !strings.HasPrefix(cfg.Token, "gwt_") || cfg.CA != filepath.Join(pkiDir, "ca.crt") {
		t.Fatalf("config file = %s", b)
	}
	if _, errOut, code := cli("init", "--tls-dir", filepath.Join(dir, "pki2")); code == 0 || !strings.Contains(errOut, "a config file exists") {
		t.Fatalf("a second init: %d %s; want refused, the first token kept", code, errOut)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ctrl, err := controller.New(ctx, controller.Config{TLSDir: pkiDir, Config: service.Config{DataDir: filepath.Join(dir, "data"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = ctrl.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; ctrl.Close() })
	t.Setenv("GODWIT_SERVER", "https://"+ln.Addr().String())

	if out, errOut, code := cli("whoami"); code != 0 || !strings.Contains(out, "admin token") || !strings.Contains(out, "bootstrap-admin") {
		t.Fatalf("whoami with the config file's token: %d %s %s", code, out, errOut)
	}
	out, errOut, code := cli("token", "create", "alice", "--project", "alpha")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], "gwt_") || !strings.Contains(errOut, "not shown again") {
		t.Fatalf("token create: %d %q %q", code, out, errOut)
	}
	alice := lines[1]
	id := strings.Fields(lines[0])[1]
	if out, _, code := cli("--token", alice, "whoami"); code != 0 || !strings.Contains(out, "member token "+id+" (alice, project alpha)") {
		t.Fatalf("whoami --token: %d %s", code, out)
	}
	t.Setenv("GODWIT_TOKEN", alice)
	if _, errOut, code := cli("project", "quota", "alpha", "--vms", "1"); code != 1 || !strings.Contains(errOut, "needs the admin role") {
		t.Fatalf("a member sets a quota: %d %s; want refused with the reason", code, errOut)
	}
	if out, _, code := cli("project", "show", "alpha"); code != 0 || !strings.Contains(out, "alpha") {
		t.Fatalf("a member shows its project: %d %s", code, out)
	}
	t.Setenv("GODWIT_TOKEN", "")
	if out, _, code := cli("project", "quota", "alpha", "--vms", "1", "--vcpus", "4"); code != 0 || !strings.Contains(out, "0/1") || !strings.Contains(out, "0/4") {
		t.Fatalf("project quota: %d %s", code, out)
	}
	if out, _, code := cli("token", "list"); code != 0 || !strings.Contains(out, "alice") || strings.Contains(out, alice) {
		t.Fatalf("token list: %d %s; want alice, never a secret", code, out)
	}
	if out, _, code := cli("token", "revoke", id); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("token revoke: %d %s", code, out)
	}
	if _, errOut, code := cli("--token", alice, "vm", "list"); code != 1 || !strings.Contains(errOut, "was revoked") {
		t.Fatalf("a revoked token: %d %s", code, errOut)
	}
	if out, _, code := cli("audit", "--limit", "10"); code != 0 || !strings.Contains(out, "PUT /v1/projects/alpha/quota") || !strings.Contains(out, "POST /v1/tokens") {
		t.Fatalf("audit: %d %s", code, out)
	}
	if out, _, code := cli("audit", "--vm-id", "00000000-0000-4000-8000-000000000000"); code != 0 || strings.Contains(out, "POST") {
		t.Fatalf("audit of a VM nothing acted on: %d %s", code, out)
	}
	if _, errOut, code := cli("--token", "nonsense", "vm", "list"); code != 1 || !strings.Contains(errOut, "not a godwit API token") {
		t.Fatalf("a malformed token: %d %s", code, errOut)
	}
}
