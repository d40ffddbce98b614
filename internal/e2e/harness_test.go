package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/guestlog"
)

func TestMain(m *testing.M) { os.Exit(gcluster.RunTests(m)) }

// cluster is a controller and its agents, all separate processes (a
// cluster.Local), stopped by PID when the test ends.
type cluster struct {
	*gcluster.Local
	t      *testing.T
	driver string
	client *api.Client
}

type clusterOpts struct {
	hosts     int
	driver    string // qemu or fake
	downAfter time.Duration
	agentArgs []string
	hostArgs  map[string][]string // extra agent arguments per host
	// netns, controllerAddr and agentAddr place the processes on a
	// netLab (netlab_test.go); zero: everything on loopback.
	netns          func(i int) string
	controllerAddr string
	agentAddr      func(i int) string
	// tls runs the cluster with a CA: HTTPS, mutual TLS between the
	// controller and the agents, encrypted migrations.
	tls bool
}

// stopGrace is how long a process a test stops has after SIGTERM.
const stopGrace = 10 * time.Second

func newCluster(t *testing.T, o clusterOpts) *cluster {
	t.Helper()
	if o.downAfter == 0 {
		o.downAfter = 10 * time.Second
	}
	opts := gcluster.Options{
		TLS: o.tls, Dir: t.TempDir(), Exe: filepath.Join(gcluster.BinariesForTest(t), "godwit"), Hosts: o.hosts, Driver: o.driver,
		HostDownAfter: o.downAfter, Heartbeat: 500 * time.Millisecond, AgentArgs: o.agentArgs, HostArgs: o.hostArgs,
		Netns: o.netns, ControllerAddr: o.controllerAddr, AgentAddr: o.agentAddr,
		Timeouts: gcluster.Timeouts{AgentStop: stopGrace, ControllerStop: stopGrace},
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if o.driver == "qemu" {
		// Debian's kernel does not boot under this machine's nested KVM;
		// TCG is what the suite can rely on everywhere. On a real KVM
		// host, GODWIT_TEST_ACCEL=kvm runs the suite under KVM.
		opts.Accel = os.Getenv("GODWIT_TEST_ACCEL")
		if opts.Accel == "" {
			opts.Accel = "tcg"
		}
	}
	l, err := gcluster.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{Local: l, t: t, driver: o.driver, client: l.Client()}
	// Registered first, so it runs last, once every other cleanup of the
	// test has run (a frozen agent thawed): every process the test
	// started is stopped by PID, and whatever a test left running under
	// its directory is killed by PID, and the test fails for it.
	t.Cleanup(func() {
		l.Stop()
		if t.Failed() {
			for _, name := range l.Names() {
				t.Logf("---- %s log ----\n%s", name, gcluster.Tail(gcluster.LogFile(l.Dir(), name), 60))
			}
		}
		if pids := l.KillLeftovers(); len(pids) > 0 {
			t.Errorf("test left qemu processes running: %v (killed)", pids)
		}
	})
	if err := l.Start(bg); err != nil {
		t.Fatal(err)
	}
	return c
}

// testWriter sends a logger's lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// startController starts the controller again, with env added to its
// environment (a failpoint), and waits until it answers.
func (c *cluster) startController(env ...string) {
	c.t.Helper()
	if _, err := c.StartController(env...); err != nil {
		c.t.Fatal(err)
	}
	if err := c.WaitController(bg); err != nil {
		c.t.Fatal(err)
	}
}

// startAgent starts host's agent again, with the flags it had and env
// added to its environment; it does not wait for it.
func (c *cluster) startAgent(host string, env ...string) {
	c.t.Helper()
	if _, err := c.StartAgent(host, env...); err != nil {
		c.t.Fatal(err)
	}
}

// waitHosts waits until every host is up.
func (c *cluster) waitHosts() {
	c.t.Helper()
	if err := c.WaitHosts(bg); err != nil {
		c.t.Fatal(err)
	}
}

// eventually retries f until it succeeds or the deadline passes.
func (c *cluster) eventually(d time.Duration, what string, f func() error) {
	c.t.Helper()
	c.waited(d, what, gcluster.WaitUntil(bg, d, 200*time.Millisecond, func(context.Context) error { return f() }, nil))
}

// waitEnded polls a record with get until its state is final, and
// returns it; the test fails after d.
func waitEnded[T any, S interface {
	~string
	Final() bool
}](c *cluster, d time.Duration, what string, get func() (T, error), state func(T) S) T {
	c.t.Helper()
	var v T
	c.eventually(d, what+" to end", func() error {
		var err error
		if v, err = get(); err != nil {
			return err
		}
		if s := state(v); !s.Final() {
			return fmt.Errorf("%s is %s", what, s)
		}
		return nil
	})
	return v
}

// waited fails the test on err, what a wait of d for what returned,
// with the last reason it had to wait on.
func (c *cluster) waited(d time.Duration, what string, err error) {
	c.t.Helper()
	var te *gcluster.TimeoutError
	if errors.As(err, &te) {
		err = te.Last
	}
	if err != nil {
		c.t.Fatalf("waited %s for %s: %v", d, what, err)
	}
}

// importGuest builds the test guest with the godwit CLI and imports it.
func (c *cluster) importGuest() {
	c.t.Helper()
	if err := c.ImportGuest(bg); err != nil {
		c.t.Fatal(err)
	}
}

// consoleLen is how much a VM's console log holds now; reading from there
// on sees only what a later boot prints.
func (c *cluster) consoleLen(vm string) int64 {
	c.t.Helper()
	b, err := c.Console(bg, vm, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	return int64(len(b))
}

// waitHeartbeat waits until the guest's heartbeat counter passes min.
func (c *cluster) waitHeartbeat(vm string, min int64, d time.Duration) guestlog.Heartbeat {
	c.t.Helper()
	return c.waitHeartbeatFrom(vm, 0, min, d)
}

// waitHeartbeatFrom is waitHeartbeat on the console from offset on.
func (c *cluster) waitHeartbeatFrom(vm string, offset, min int64, d time.Duration) guestlog.Heartbeat {
	c.t.Helper()
	return c.waitGuest(vm, offset, d, "heartbeat of "+vm+" past "+strconv.FormatInt(min, 10), func(hb guestlog.Heartbeat) error {
		if hb.Counter <= min {
			return fmt.Errorf("heartbeat counter %d", hb.Counter)
		}
		return nil
	})
}

// waitDiskRecords waits until vm's guest reports at least n disk records
// written, and returns that heartbeat.
func (c *cluster) waitDiskRecords(vm string, n int, d time.Duration) guestlog.Heartbeat {
	c.t.Helper()
	return c.waitGuest(vm, 0, d, fmt.Sprintf("%s writing %d disk records", vm, n), func(hb guestlog.Heartbeat) error {
		if hb.DiskRecords < n {
			return errors.New("too few records yet")
		}
		return nil
	})
}

// waitGuest waits until want accepts vm's heartbeat (on the console from
// offset on) and returns it; the test fails after d.
func (c *cluster) waitGuest(vm string, offset int64, d time.Duration, what string, want func(guestlog.Heartbeat) error) guestlog.Heartbeat {
	c.t.Helper()
	hb, err := c.WaitHeartbeat(bg, vm, offset, d, want)
	c.waited(d, what, err)
	return hb
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
