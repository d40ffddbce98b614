package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/hostinfo"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries returns a directory holding godwit and godwit-guest: the ones
// `make test` built (GODWIT_TEST_BIN) or, under plain `go test`, fresh
// builds of this tree.
func binaries(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("GODWIT_TEST_BIN"); d != "" {
		return d
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "godwit-e2e-bin-")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		for _, b := range []struct{ out, pkg string }{{"godwit", "./cmd/godwit"}, {"godwit-guest", "./cmd/godwit-guest"}} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b.out), b.pkg)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// proc is a godwit process a test started; it is always stopped by PID.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(p.pid(), syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits (then SIGKILL after 10 s).
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Logf("%s ignored SIGTERM; killing", p.name)
		p.kill(t)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// cluster is a controller and its agents, all separate processes.
type cluster struct {
	t          *testing.T
	dir        string
	bin        string
	driver     string
	ctrlAddr   string
	ctrl       *proc
	agents     map[string]*proc
	agentAddrs map[string]string
	client     *api.Client
	downAfter  time.Duration
	ctrlEnv    []string            // extra environment of the next controller start (failpoints)
	agentEnv   map[string][]string // extra environment of an agent's next start, by host
}

type clusterOpts struct {
	hosts     int
	driver    string // qemu or fake
	downAfter time.Duration
	agentArgs []string
	hostArgs  map[string][]string // extra agent arguments per host
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newCluster(t *testing.T, o clusterOpts) *cluster {
	t.Helper()
	if o.downAfter == 0 {
		o.downAfter = 10 * time.Second
	}
	c := &cluster{
		t: t, dir: t.TempDir(), bin: filepath.Join(binaries(t), "godwit"), driver: o.driver,
		agents: map[string]*proc{}, agentAddrs: map[string]string{}, downAfter: o.downAfter,
	}
	// Registered first, so it runs last: whatever a test left running
	// under its directory is killed by PID, and the test fails for it.
	t.Cleanup(func() {
		// The agents' fencing watchdogs outlive them by design (they
		// guard QEMUs an agent left running): stopped here by PID.
		for name := range c.agentAddrs {
			if pid := watchdogPID(c.stateDir(name)); pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if pids := hostinfo.QEMUPIDs(c.dir); len(pids) > 0 {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Errorf("test left qemu processes running: %v (killed)", pids)
		}
	})
	c.ctrlAddr = freeAddr(t)
	c.client = api.NewClient("http://" + c.ctrlAddr)
	c.startController()
	for i := 1; i <= o.hosts; i++ {
		name := fmt.Sprintf("host%d", i)
		c.agentAddrs[name] = freeAddr(t)
		c.startAgent(name, append(o.agentArgs, o.hostArgs[name]...)...)
	}
	c.waitHosts(o.hosts)
	return c
}

func (c *cluster) start(name string, args ...string) *proc {
	c.t.Helper()
	logPath := filepath.Join(c.dir, "logs", name+".log")
	_ = os.MkdirAll(filepath.Dir(logPath), 0o755)
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if name == "controller" && len(c.ctrlEnv) > 0 {
		cmd.Env = append(os.Environ(), c.ctrlEnv...)
	}
	if env := c.agentEnv[name]; len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	lf.Close()
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	c.t.Cleanup(func() {
		if !p.exited() {
			p.stop(c.t)
		}
		if c.t.Failed() {
			b, _ := os.ReadFile(logPath)
			c.t.Logf("---- %s log ----\n%s", name, tail(string(b), 60))
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *cluster) startController() {
	c.ctrl = c.start("controller", "serve", "--listen", c.ctrlAddr,
		"--data-dir", filepath.Join(c.dir, "controller"), "--host-down-after", c.downAfter.String(),
		"--shared-dir", c.sharedDir())
	c.eventually(30*time.Second, "controller answers", func() error {
		_, err := c.client.Version(context.Background())
		return err
	})
}

func (c *cluster) stateDir(host string) string { return filepath.Join(c.dir, "hosts", host) }
func (c *cluster) sharedDir() string           { return filepath.Join(c.dir, "shared") }

func (c *cluster) startAgent(name string, extra ...string) {
	args := []string{"agent", "--name", name, "--listen", c.agentAddrs[name],
		"--controller", "http://" + c.ctrlAddr, "--state-dir", c.stateDir(name),
		"--shared-dir", c.sharedDir(), "--driver", c.driver, "--heartbeat", "500ms"}
	if c.driver == "qemu" {
		// Debian's kernel does not boot under this machine's nested KVM;
		// TCG is what the suite can rely on everywhere. On a real KVM
		// host, GODWIT_TEST_ACCEL=kvm runs the suite under KVM.
		acc := os.Getenv("GODWIT_TEST_ACCEL")
		if acc == "" {
			acc = "tcg"
		}
		args = append(args, "--accel", acc)
	}
	c.agents[name] = c.start(name, append(args, extra...)...)
}

func (c *cluster) waitHosts(n int) {
	c.eventually(60*time.Second, fmt.Sprintf("%d hosts up", n), func() error {
		hs, err := c.client.Hosts(context.Background())
		if err != nil {
			return err
		}
		up := 0
		for _, h := range hs {
			if h.State == api.HostUp {
				up++
			}
		}
		if up < n {
			return fmt.Errorf("%d of %d hosts up", up, n)
		}
		return nil
	})
}

// eventually retries f until it succeeds or the deadline passes.
func (c *cluster) eventually(d time.Duration, what string, f func() error) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("waited %s for %s: %v", d, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// importGuest builds the test guest with the godwit CLI and imports it.
func (c *cluster) importGuest() {
	c.t.Helper()
	out, err := exec.Command(c.bin, "--server", c.client.BaseURL, "image", "build-testguest",
		"--out", filepath.Join(c.dir, "guest"), "--import", "testguest").CombinedOutput()
	if err != nil {
		c.t.Fatalf("godwit image build-testguest: %v\n%s", err, out)
	}
}

// consoleLen is how much a VM's console log holds now; reading from there
// on sees only what a later boot prints.
func (c *cluster) consoleLen(vm string) int64 {
	c.t.Helper()
	rc, err := c.client.Console(context.Background(), vm, 0, false)
	if err != nil {
		c.t.Fatal(err)
	}
	defer rc.Close()
	n, _ := io.Copy(io.Discard, rc)
	return n
}

// heartbeat returns the guest's latest heartbeat read from its console
// from byte offset on.
func (c *cluster) heartbeat(vm string, offset int64) (guestlog.Heartbeat, error) {
	rc, err := c.client.Console(context.Background(), vm, offset, false)
	if err != nil {
		return guestlog.Heartbeat{}, err
	}
	defer rc.Close()
	hb, ok := guestlog.Last(rc)
	if !ok {
		return hb, errors.New("no heartbeat line on the console yet")
	}
	return hb, nil
}

// waitHeartbeat waits until the guest's heartbeat counter passes min.
func (c *cluster) waitHeartbeat(vm string, min int64, d time.Duration) guestlog.Heartbeat {
	c.t.Helper()
	return c.waitHeartbeatFrom(vm, 0, min, d)
}

// waitHeartbeatFrom is waitHeartbeat on the console from offset on.
func (c *cluster) waitHeartbeatFrom(vm string, offset, min int64, d time.Duration) guestlog.Heartbeat {
	c.t.Helper()
	var hb guestlog.Heartbeat
	c.eventually(d, "heartbeat of "+vm+" past "+strconv.FormatInt(min, 10), func() error {
		var err error
		if hb, err = c.heartbeat(vm, offset); err != nil {
			return err
		}
		if hb.Counter <= min {
			return fmt.Errorf("heartbeat counter %d", hb.Counter)
		}
		return nil
	})
	return hb
}

// waitDiskRecords waits until vm's guest reports at least n disk records
// written, and returns that heartbeat.
func (c *cluster) waitDiskRecords(vm string, n int, d time.Duration) guestlog.Heartbeat {
	c.t.Helper()
	var hb guestlog.Heartbeat
	c.eventually(d, fmt.Sprintf("%s writing %d disk records", vm, n), func() error {
		var err error
		if hb, err = c.heartbeat(vm, 0); err == nil && hb.DiskRecords < n {
			err = errString("too few records yet")
		}
		return err
	})
	return hb
}

// watchdogPID is the PID of the fencing watchdog of an agent's state
// directory, if one runs, else 0.
func watchdogPID(stateDir string) int {
	b, err := os.ReadFile(filepath.Join(stateDir, "fence", "watchdog.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if cl, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")); pid <= 0 || err != nil ||
		!strings.Contains(string(cl), "agent-watchdog") || !strings.Contains(string(cl), stateDir) {
		return 0
	}
	return pid
}

// files lists files under dir whose names end in suffix.
func files(dir, suffix string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, suffix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}
