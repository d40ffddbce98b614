package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/pki"
)

// TestDeployPackage deploys the Debian package the way docs/deploy.md
// says, on a network lab (netlab_test.go) instead of three machines: it
// builds the .deb (scripts/deb.sh; GODWIT_TEST_DEB names a built one),
// extracts it with dpkg-deb -x into a directory (nothing is installed on
// this machine, and the maintainer scripts do not run), makes the CA with
// godwit init, and starts the controller in the root namespace and an
// agent and its watchdog in each of three host namespaces, from the
// packaged units' ExecStart lines with the packaged config files edited
// as the guide edits them (join tokens from godwit host add). A directory
// stands in for the NFS pool. A VM is created on the shared pool and
// moved live; the agent of its host is restarted (join line removed) and
// the VM keeps running.
//
// The hosts run the fake driver: this test checks the package, the
// units, the config files and the join flow, not QEMU (the other e2e
// tests do). The controller runs as root, not as the godwit user, since
// the user does not exist unless the package is installed.
func TestDeployPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the deployment test makes network namespaces: it needs root")
	}
	dir := t.TempDir()
	root := extractPackage(t, dir)
	exe := filepath.Join(root, "usr/bin/godwit")

	newNetLab(t, 3) // torn down by its cleanup
	ctrlAddr, err := gcluster.FreeAddr(labControllerIP)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + ctrlAddr
	shared := filepath.Join(dir, "pool") // the NFS mount, on every host
	pkiDir := filepath.Join(dir, "pki")
	procs := &deployProcs{t: t, dir: dir}
	t.Cleanup(procs.stopAll)

	// godwit init on the controller; its admin config is the CLI's.
	admin := filepath.Join(dir, "admin.json")
	env := append(os.Environ(), "GODWIT_CONFIG="+admin, "GODWIT_SERVER="+url)
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(exe, args...)
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output() // stdout only: host add's token
		if err != nil {
			t.Fatalf("godwit %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}
	cli("init", "--tls-dir", pkiDir, "--address", labControllerIP)

	ctrlConf := editConf(t, filepath.Join(root, "etc/godwit/controller.conf"), filepath.Join(dir, "controller.conf"), map[string]string{
		"listen": ctrlAddr, "tls-dir": pkiDir, "data-dir": filepath.Join(dir, "controller"), "shared-dir": shared, "host-down-after": "5s",
	})
	procs.start("controller", "", unitExec(t, root, "godwit-controller.service", exe, ctrlConf))
	eventually(t, 20*time.Second, "the controller answers", func() error {
		cmd := exec.Command(exe, "host", "list")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})

	agentConf := func(i int, join string) string {
		host := fmt.Sprintf("host%d", i)
		set := map[string]string{
			"name": host, "controller": url, "listen": labHostAddr(i) + ":7401", "advertise": "https://" + labHostAddr(i) + ":7401",
			"state-dir": filepath.Join(dir, host), "shared-dir": shared, "driver": "fake", "heartbeat": "500ms",
		}
		if join != "" {
			set["join"] = join
		}
		return editConf(t, filepath.Join(root, "etc/godwit/agent.conf"), filepath.Join(dir, host+".conf"), set)
	}
	for i := 1; i <= 3; i++ {
		host := fmt.Sprintf("host%d", i)
		token := strings.TrimSpace(cli("host", "add", host, "--controller-url", url))
		conf := agentConf(i, token)
		// The watchdog unit first, as the agent's After= orders it: with
		// the fake driver it finds nothing to guard and leaves (status 0).
		wd := procs.start(host+"-watchdog", labHostNS(i), unitExec(t, root, "godwit-agent-watchdog.service", exe, conf))
		procs.start(host, labHostNS(i), unitExec(t, root, "godwit-agent.service", exe, conf))
		if err := procs.wait(wd, 20*time.Second); err != nil {
			t.Errorf("%s's watchdog: %v (want: nothing to guard, status 0)", host, err)
		}
	}
	client := userClient(t, pkiDir, url, admin)
	eventually(t, 30*time.Second, "three hosts up", func() error {
		hs, err := client.Hosts(bg)
		if err != nil {
			return err
		}
		up := 0
		for _, h := range hs {
			if h.State == api.HostUp {
				up++
			}
		}
		if up != 3 {
			return fmt.Errorf("%d of %d hosts up", up, len(hs))
		}
		return nil
	})

	kernel := filepath.Join(dir, "vmlinuz")
	if err := gcluster.WriteFakeKernel(kernel); err != nil {
		t.Fatal(err)
	}
	cli("image", "import", "tiny", "--kernel", kernel)
	cli("vm", "create", "web-1", "--image", "tiny", "--memory", "128M", "--pool", "shared", "--host", "host1")
	eventually(t, 30*time.Second, "web-1 running", func() error { return vmOn(client, "web-1", "host1") })
	cli("migrate", "web-1", "--live", "--to", "host2", "--wait")
	if err := vmOn(client, "web-1", "host2"); err != nil {
		t.Fatal(err)
	}

	// docs/deploy.md: remove the join line once joined; restart the
	// agent (systemctl restart: SIGTERM to the main process only); the VM
	// runs on.
	procs.stop("host2")
	restarted := time.Now() // one machine: the controller's clock is ours
	procs.start("host2", labHostNS(2), unitExec(t, root, "godwit-agent.service", exe, agentConf(2, "")))
	eventually(t, 30*time.Second, "host2 up again, web-1 running there", func() error {
		h, err := client.Host(bg, "host2")
		if err != nil {
			return err
		}
		if h.State != api.HostUp || !h.LastHeartbeat.After(restarted) {
			return fmt.Errorf("host2 %s, no heartbeat from its new agent yet", h.State)
		}
		return vmOn(client, "web-1", "host2")
	})
	cli("vm", "delete", "web-1")
}

// extractPackage builds the .deb (GODWIT_TEST_DEB names a built one) and
// extracts it into dir/root, which it returns. It skips the test unless
// GODWIT_TEST_BIN (make test) or GODWIT_TEST_DEB is set and dpkg-deb and
// ip are installed.
func extractPackage(t *testing.T, dir string) string {
	t.Helper()
	if os.Getenv("GODWIT_TEST_BIN") == "" && os.Getenv("GODWIT_TEST_DEB") == "" {
		t.Skip("set GODWIT_TEST_BIN (make test does) or GODWIT_TEST_DEB to run the deployment tests")
	}
	for _, tool := range []string{"dpkg-deb", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the deployment tests need %s", tool)
		}
	}
	deb := os.Getenv("GODWIT_TEST_DEB")
	if deb == "" {
		cmd := exec.Command("../../scripts/deb.sh")
		cmd.Env = append(os.Environ(), "OUT="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make deb: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		deb = lines[len(lines)-1] // in OUT
	}
	root := filepath.Join(dir, "root")
	if out, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v: %s", deb, err, out)
	}
	return root
}

// The watchdog unit's watchdog (--stay, reading agent.conf) is the one
// the agent uses: the agent finds it (by its pid file and lock, its
// command line naming no state directory) and starts none of its own;
// it outlives the agent's stop, and stays when no agent runs. No VM: the
// fencing itself is TestSplitBrainFencedQEMU's.
func TestWatchdogUnitFoundByAgent(t *testing.T) {
	requireQEMU(t)
	if os.Geteuid() != 0 {
		t.Skip("the deployment tests run the agent as its unit does: as root")
	}
	dir := t.TempDir()
	root := extractPackage(t, dir)
	exe := filepath.Join(root, "usr/bin/godwit")
	state := filepath.Join(dir, "agent")
	addr, err := gcluster.FreeAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	conf := editConf(t, filepath.Join(root, "etc/godwit/agent.conf"), filepath.Join(dir, "agent.conf"), map[string]string{
		"name": "host1", "controller": "http://127.0.0.1:1", "listen": addr, "state-dir": state,
		"shared-dir": filepath.Join(dir, "pool"), "driver": "qemu", "accel": "tcg", "heartbeat": "500ms",
	})
	procs := &deployProcs{t: t, dir: dir}
	t.Cleanup(procs.stopAll)
	procs.start("watchdog", "", unitExec(t, root, "godwit-agent-watchdog.service", exe, conf))
	pidFile := filepath.Join(state, "fence", "watchdog.pid")
	eventually(t, 10*time.Second, "the unit's watchdog writes its pid file", func() error {
		_, err := os.Stat(pidFile)
		return err
	})
	wdPID := procs.cmds["watchdog"].Process.Pid
	procs.start("agent", "", unitExec(t, root, "godwit-agent.service", exe, conf))
	agentLog := filepath.Join(dir, "agent.log")
	eventually(t, 20*time.Second, "the agent finds the unit's watchdog", func() error {
		b, _ := os.ReadFile(agentLog)
		if strings.Contains(string(b), "fencing watchdog started") {
			t.Fatalf("the agent started a watchdog of its own:\n%s", b)
		}
		if !strings.Contains(string(b), fmt.Sprintf(`msg="fencing watchdog found" host=host1 watchdog_pid=%d`, wdPID)) {
			return fmt.Errorf("not yet:\n%s", b)
		}
		return nil
	})
	if n := watchdogsOf(t, state); n != 1 {
		t.Errorf("%d watchdogs guard %s; want the unit's only", n, state)
	}
	// systemctl stop godwit-agent: the watchdog stays, and stays on.
	procs.stop("agent")
	time.Sleep(2 * time.Second)
	if err := procs.wait("watchdog", 0); err == nil {
		t.Fatal("the unit's watchdog left with the agent")
	}
}

// watchdogsOf counts the agent-watchdog processes guarding state: those
// started with --state-dir state, and those whose config file names it.
func watchdogsOf(t *testing.T, state string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), "\x00agent-watchdog\x00") {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		for i, a := range args {
			if i+1 < len(args) && a == "--state-dir" && args[i+1] == state {
				n++
			}
			if i+1 < len(args) && a == "--config" {
				if c, err := os.ReadFile(args[i+1]); err == nil && strings.Contains(string(c), "state-dir = "+state+"\n") {
					n++
				}
			}
		}
	}
	return n
}

// unitExec is a packaged unit's ExecStart, with the packaged binary and
// config file replaced by the extracted and edited ones.
func unitExec(t *testing.T, root, unit, exe, conf string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "lib/systemd/system", unit))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
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
	}
	t.Fatalf("%s has no ExecStart", unit)
	return nil
}

// editConf writes the packaged config file src to dst with keys set: an
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

// deployProcs are the processes the test started, each stopped by PID.
type deployProcs struct {
	t    *testing.T
	dir  string
	cmds map[string]*exec.Cmd
	done map[string]chan error
}

// start runs args (in network namespace ns unless empty) as name, its
// output in <dir>/<name>.log.
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
// controller, and shows their logs if the test failed.
func (p *deployProcs) stopAll() {
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
	if p.t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(p.dir, "*.log"))
		for _, l := range logs {
			p.t.Logf("---- %s ----\n%s", filepath.Base(l), gcluster.Tail(l, 40))
		}
	}
}
