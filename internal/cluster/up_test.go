package cluster

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

func TestMain(m *testing.M) { os.Exit(RunTests(m)) }

// godwitBinary is the godwit binary to run clusters of.
func godwitBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the godwit binary and runs a cluster of it; skipped with -short")
	}
	return filepath.Join(BinariesForTest(t), "godwit")
}

// freePorts returns a port p such that p..p+n are free on loopback.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	p, err := FreePorts(n)
	if err != nil {
		t.Skip(err)
	}
	return p
}

// assertStopped checks that nothing of the cluster in dir runs or is
// recorded as running.
func assertStopped(t *testing.T, dir string, port, hosts int) {
	t.Helper()
	if ms := leftovers(dir); len(ms) > 0 {
		t.Errorf("still running: %s", describe(ms))
	}
	left, _ := filepath.Glob(filepath.Join(runDir(dir), "*"))
	if len(left) > 0 {
		t.Errorf("left in run/: %v", left)
	}
	if _, err := os.Stat(PIDFile(dir)); err == nil {
		t.Error("up.pid left behind")
	}
	if !portsFree(port, hosts) {
		t.Errorf("a port of %d..%d still in use", port, port+hosts)
	}
}

// Up starts a controller and two agents (fake driver), runs a VM, and on
// cancellation stops everything.
func TestUpRunsAClusterAndStopsIt(t *testing.T) {
	bin := godwitBinary(t)
	dir := t.TempDir()
	port := freePorts(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	errc := make(chan error, 1)
	go func() {
		errc <- Up(ctx, Config{Dir: dir, Hosts: 2, Driver: "fake", Accel: "auto", Port: port, Exe: bin, Logger: testLogger(t), Out: &out})
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, ok := readyAccel(dir, os.Getpid()); ok {
			break
		}
		select {
		case err := <-errc:
			t.Fatalf("Up returned before the cluster was ready: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the cluster was not ready within a minute")
		}
	}
	cfg := Config{Dir: dir, Port: port}
	c, err := Client(dir, cfg.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.NewClient(cfg.URL()).Hosts(ctx); err == nil {
		t.Error("the controller answered a client that does not trust the cluster's CA")
	}
	hs, err := c.Hosts(ctx)
	if err != nil || len(hs) != 2 || hs[0].State != api.HostUp || hs[1].State != api.HostUp {
		t.Fatalf("hosts %+v, %v", hs, err)
	}
	if ms := leftovers(dir); describe(ms) == "" || len(ms) != 3 || ms[2].name != controllerName {
		t.Errorf("pid files record %q; want host1, host2, then the controller", describe(ms))
	}

	// A VM, so that stopping has something to stop.
	kernel := filepath.Join(dir, "vmlinuz")
	if err := WriteFakeKernel(kernel); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportImage(ctx, api.ImportImageMeta{Name: "tiny"}, map[string]string{api.RoleKernel: kernel}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateVM(ctx, api.CreateVMRequest{Name: "v1", Image: "tiny", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64, DiskMiB: 64}}); err != nil {
		t.Fatal(err)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Up after cancel: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Up did not return within 2 minutes of cancel")
	}
	assertStopped(t, dir, port, 2)
	if !strings.Contains(out.String(), "export GODWIT_SERVER="+cfg.URL()+" GODWIT_CA="+CAFile(dir)) {
		t.Errorf("usage block: %q", out.String())
	}
	b1, _ := os.ReadFile(LogFile(dir, "host1"))
	b2, _ := os.ReadFile(LogFile(dir, "host2"))
	if !bytes.Contains(append(b1, b2...), []byte("vm stopped for shutdown")) {
		t.Errorf("no host stopped the VM on shutdown; their logs:\n%s\n%s", b1, b2)
	}
}

// A host that fails to start makes Up stop what it started and name the
// log to read.
func TestUpNamesTheLogOfAHostThatFails(t *testing.T) {
	bin := godwitBinary(t)
	dir := t.TempDir()
	port := freePorts(t, 2)
	// host2's state directory cannot be created.
	os.MkdirAll(filepath.Join(dir, "hosts"), 0o755)
	os.WriteFile(filepath.Join(dir, "hosts", "host2"), []byte("in the way"), 0o644)
	err := Up(context.Background(), Config{Dir: dir, Hosts: 2, Driver: "fake", Accel: "auto", Port: port, Exe: bin, Logger: testLogger(t), Insecure: true})
	if err == nil || !strings.Contains(err.Error(), "host2 exited") || !strings.Contains(err.Error(), LogFile(dir, "host2")) {
		t.Fatalf("Up = %v; want host2's failure and its log", err)
	}
	t.Logf("Up said: %v", err)
	assertStopped(t, dir, port, 2)
}

// Detach runs the cluster in the background; Down stops it.
func TestDetachAndDown(t *testing.T) {
	bin := godwitBinary(t)
	dir := t.TempDir()
	port := freePorts(t, 1)
	cfg := Config{Dir: dir, Hosts: 1, Driver: "fake", Accel: "auto", Port: port, Exe: bin}
	var progress bytes.Buffer
	if _, err := Detach(context.Background(), cfg, &progress); err != nil {
		t.Fatalf("Detach: %v\n%s", err, progress.String())
	}
	pid := Running(dir)
	if pid == 0 || pid == os.Getpid() {
		t.Fatalf("Running = %d after Detach", pid)
	}
	if _, err := Detach(context.Background(), cfg, &progress); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("a second Detach: %v", err)
	}
	if was, err := Down(context.Background(), dir, &progress); !was || err != nil {
		t.Fatalf("Down: %v, %v", was, err)
	}
	if Running(dir) != 0 {
		t.Error("still running after Down")
	}
	assertStopped(t, dir, port, 1)
	if b, _ := os.ReadFile(LogFile(dir, "up")); !bytes.Contains(b, []byte("stopped process=controller")) {
		t.Errorf("up.log does not show an orderly stop:\n%s", b)
	}
}
