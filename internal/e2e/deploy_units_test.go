package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/pki"
)

// What the deployment tests run, and how: the packaged units' commands
// as systemd would run them, the processes, the config files, the
// guest.

// unitService is the [Service] section of unit, a packaged unit under
// root (/ for the installed package): each key's first value, "" for a
// key set empty (CapabilityBoundingSet=).
func unitService(t *testing.T, root, unit string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "lib/systemd/system", unit))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	svc := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			section = l
		case section == "[Service]":
			k, v, _ := strings.Cut(l, "=")
			if _, ok := svc[k]; !ok {
				svc[k] = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return svc
}

// unitExec is a packaged unit's ExecStart, with the packaged binary and
// config file replaced by exe and conf.
func unitExec(t *testing.T, root, unit, exe, conf string) []string {
	t.Helper()
	v, ok := unitService(t, root, unit)["ExecStart"]
	if !ok {
		t.Fatalf("%s has no ExecStart", unit)
	}
	args := strings.Fields(v)
	for i, a := range args {
		switch {
		case a == "/usr/bin/godwit":
			args[i] = exe
		case strings.HasPrefix(a, "/etc/godwit/"):
			args[i] = conf
		}
	}
	return args
}

// systemdPath is the PATH systemd gives a system service.
const systemdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// unitCommand is unitExec run as systemd would run the unit, as far as
// a machine without systemd can: a clean environment (env -i: systemd's
// PATH, and HOME, USER and LOGNAME for a User=), the unit's User= and
// Group= (setpriv, with the user's groups), NoNewPrivileges=yes
// (setpriv --no-new-privs), an empty CapabilityBoundingSet=
// (--bounding-set=-all) and UMask= (sh's umask). Each step execs the
// next, so the process's PID is the daemon's. The namespace hardening
// (ProtectSystem=, PrivateTmp=, PrivateNetwork=, system call filters...)
// needs systemd and is not reproduced; the working directory is / as
// under systemd (deployProcs.start).
func unitCommand(t *testing.T, root, unit, exe, conf string) []string {
	t.Helper()
	svc := unitService(t, root, unit)
	args := unitExec(t, root, unit, exe, conf)
	if um, ok := svc["UMask"]; ok {
		args = append([]string{"/bin/sh", "-c", "umask " + um + ` && exec "$@"`, "sh"}, args...)
	}
	var sp []string
	if u := svc["User"]; u != "" && u != "root" {
		sp = append(sp, "--reuid="+u, "--init-groups")
		g := svc["Group"]
		if g == "" {
			g = u // the units name both; systemd would take the user's primary group
		}
		sp = append(sp, "--regid="+g)
	}
	if svc["NoNewPrivileges"] == "yes" {
		sp = append(sp, "--no-new-privs")
	}
	if v, ok := svc["CapabilityBoundingSet"]; ok && v == "" {
		sp = append(sp, "--bounding-set=-all")
	}
	if len(sp) > 0 {
		args = append(append(append([]string{"setpriv"}, sp...), "--"), args...)
	}
	env := []string{"env", "-i", "PATH=" + systemdPath}
	if u := svc["User"]; u != "" {
		pw, err := user.Lookup(u)
		if err != nil {
			t.Fatalf("%s runs as User=%s: %v", unit, u, err)
		}
		env = append(env, "HOME="+pw.HomeDir, "USER="+u, "LOGNAME="+u)
	}
	return append(env, args...)
}

// procStatus is the fields of /proc/PID/status.
func procStatus(pid int) (map[string]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	st := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			st[k] = strings.TrimSpace(v)
		}
	}
	return st, nil
}

// editConf writes the packaged config file src to dst (src itself to
// edit it in place, keeping its owner and mode) with keys set: an
// existing line (commented out or not) is replaced, a missing key added.
func editConf(t *testing.T, src, dst string, set map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]bool{}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		m := regexp.MustCompile(`^#?([a-z-]+) *=`).FindStringSubmatch(l)
		if m != nil {
			if v, ok := set[m[1]]; ok {
				if !done[m[1]] {
					out = append(out, m[1]+" = "+v)
					done[m[1]] = true
				}
				continue
			}
		}
		out = append(out, l)
	}
	for k, v := range set {
		if !done[k] {
			out = append(out, k+" = "+v)
		}
	}
	if err := os.WriteFile(dst, []byte(strings.Join(out, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// userClient is the API client of the admin config godwit init wrote.
func userClient(t *testing.T, pkiDir, url, config string) *api.Client {
	t.Helper()
	var cfg struct {
		Token string `json:"token"`
	}
	b, err := os.ReadFile(config)
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	c := api.NewClient(url)
	tlsCfg, err := pki.LoadTrust(filepath.Join(pkiDir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	c.HTTP = api.NewHTTPClient(api.HTTPOptions{TLS: tlsCfg})
	c.Token = cfg.Token
	return c
}

func vmOn(c *api.Client, name, host string) error {
	vm, err := c.VM(bg, name)
	if err != nil {
		return err
	}
	if vm.Host != host || vm.State != api.VMRunning {
		return fmt.Errorf("vm %s: %s on %s, want running on %s", name, vm.State, vm.Host, host)
	}
	return nil
}

func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// deployGuest is a test guest on a deployed cluster, read through the
// controller's API: its console's heartbeats and health, as the cluster
// tests read theirs (harness_test.go, health_test.go).
type deployGuest struct {
	t  *testing.T
	c  *api.Client
	vm string
}

// console is the guest's whole console log (its first 32 MiB).
func (g deployGuest) console() ([]byte, error) {
	rc, err := g.c.Console(bg, g.vm, 0, false)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 32<<20))
}

// waitBeat waits up to d for a heartbeat whose counter is past min, and
// returns it; the test fails with the console's end after d.
func (g deployGuest) waitBeat(min int64, d time.Duration) guestlog.Heartbeat {
	g.t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(250 * time.Millisecond) {
		b, err := g.console()
		hb, ok := guestlog.Last(bytes.NewReader(b))
		switch {
		case err == nil && ok && hb.Counter > min:
			return hb
		case time.Now().After(deadline):
			g.t.Fatalf("waited %s for a heartbeat of %s past %d: last %+v (%v); its console's end:\n%s", d, g.vm, min, hb, err, b[max(0, len(b)-3000):])
		}
	}
}

// healthy waits up to a minute for the guest's console to show a
// heartbeat, then fails the test unless the guest ran without trouble and
// without a restart, its counter at least from (the last seen before a
// move), and the controller does not report it crashed (health_test.go's
// checks).
func (g deployGuest) healthy(from int64) guestlog.Health {
	g.t.Helper()
	var b []byte
	var h guestlog.Health
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(250 * time.Millisecond) {
		var err error
		if b, err = g.console(); err != nil {
			g.t.Fatalf("console of %s: %v", g.vm, err)
		}
		if h = guestlog.Check(b); h.Beats > 0 || h.Trouble != "" || time.Now().After(deadline) {
			break
		}
	}
	why := h.Problems(from)
	if h.Beats == 0 {
		why = append(why, "no heartbeat on the console within a minute")
	}
	if vm, err := g.c.VM(bg, g.vm); err == nil && (vm.State == api.VMCrashed || vm.LastPanic != nil) {
		why = append(why, fmt.Sprintf("the controller reports it %s (%s), panics %+v", vm.State, vm.StateReason, vm.LastPanic))
	}
	if len(why) > 0 {
		g.t.Errorf("vm %s is not healthy: %s; its console's end:\n%s", g.vm, strings.Join(why, "; "), b[max(0, len(b)-3000):])
	}
	return h
}

// deployProcs are the processes the test started, each stopped by PID.
type deployProcs struct {
	t    *testing.T
	dir  string
	cmds map[string]*exec.Cmd
	done map[string]chan error
}

// start runs args (in network namespace ns unless empty) as name, in /
// as under systemd, its output in <dir>/<name>.log.
func (p *deployProcs) start(name, ns string, args []string) string {
	p.t.Helper()
	if p.cmds == nil {
		p.cmds, p.done = map[string]*exec.Cmd{}, map[string]chan error{}
	}
	if ns != "" {
		// ip netns exec execs the command: the PID is the daemon's.
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	logf, err := os.OpenFile(filepath.Join(p.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.t.Fatalf("start %s: %v", name, err)
	}
	logf.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	p.cmds[name], p.done[name] = cmd, done
	return name
}

// pid is name's PID.
func (p *deployProcs) pid(name string) int { return p.cmds[name].Process.Pid }

// wait waits for name to exit by itself.
func (p *deployProcs) wait(name string, d time.Duration) error {
	select {
	case err := <-p.done[name]:
		p.done[name] <- err // for stop
		return err
	case <-time.After(d):
		return fmt.Errorf("still running after %s", d)
	}
}

// stop sends SIGTERM to name's PID, SIGKILL after stopGrace.
func (p *deployProcs) stop(name string) {
	cmd, done := p.cmds[name], p.done[name]
	if cmd == nil {
		return
	}
	delete(p.cmds, name)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopGrace):
		_ = cmd.Process.Kill()
		<-done
		p.t.Errorf("%s (pid %d) did not stop on SIGTERM within %s", name, cmd.Process.Pid, stopGrace)
	}
}

// stopAll stops every process still running, agents before the
// controller, and shows their logs if the test failed (once).
func (p *deployProcs) stopAll() {
	if p.cmds == nil {
		return
	}
	var names []string
	for n := range p.cmds {
		names = append(names, n)
	}
	for _, n := range names {
		if n != "controller" {
			p.stop(n)
		}
	}
	p.stop("controller")
	p.cmds = nil
	if p.t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(p.dir, "*.log"))
		for _, l := range logs {
			p.t.Logf("---- %s ----\n%s", filepath.Base(l), gcluster.Tail(l, 40))
		}
	}
}
