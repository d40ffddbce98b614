package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

func TestArgs(t *testing.T) {
	local := func(cfg Config, acc, reason string) *Local {
		s, err := newSupervisor(cfg, acc, reason)
		if err != nil {
			t.Fatal(err)
		}
		return s.local
	}
	cfg := Config{Dir: "/c", Hosts: 2, Driver: "qemu", Accel: "auto", Port: 7400, HostMemoryMiB: 4096, LogLevel: "debug"}
	up := local(cfg, "tcg", "godwit up: no kvm")
	for _, tt := range []struct {
		name string
		got  []string
		want string
	}{
		{"controller", up.controllerArgs(), "serve --config= --listen 127.0.0.1:7400 --data-dir /c/controller --shared-dir /c/shared --tls-dir /c/pki --log-level debug"},
		{"agent", up.agentArgs("host2"),
			"agent --config= --name host2 --listen 127.0.0.1:7402 --controller https://127.0.0.1:7400 --state-dir /c/hosts/host2 " +
				"--shared-dir /c/shared --driver qemu --accel tcg --accel-reason godwit up: no kvm --memory 4096 --log-level debug"},
		{"agent leaves the accelerator to the agent", local(Config{Dir: "/c", Hosts: 1, Driver: "fake", Port: 100, LogLevel: "info", Insecure: true}, "", "").agentArgs("host1"),
			"agent --config= --name host1 --listen 127.0.0.1:101 --controller http://127.0.0.1:100 --state-dir /c/hosts/host1 " +
				"--shared-dir /c/shared --driver fake --log-level info"},
		{"up", UpArgs(cfg), "up --dir /c --hosts 2 --driver qemu --accel auto --port 7400 --host-memory 4096 --log-level debug"},
		{"insecure up", UpArgs(Config{Dir: "/c", Hosts: 1, Driver: "fake", Accel: "auto", Port: 100, Insecure: true}), "up --dir /c --hosts 1 --driver fake --accel auto --port 100 --insecure"},
	} {
		if got := strings.Join(tt.got, " "); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

// The options the end-to-end tests and the benchmark use: more flags per
// host, timing flags, namespaces, free ports picked once.
func TestLocalArgs(t *testing.T) {
	l, err := New(Options{Dir: "/b", Exe: "/bin/godwit", Hosts: 2, Driver: "qemu", Accel: "tcg", HostDownAfter: 3 * time.Second,
		Heartbeat: 500 * time.Millisecond, ControllerArgs: []string{"--allow-unsafe-tcg-migration"},
		AgentArgs: []string{"--lease-renew", "500ms"}, HostArgs: map[string][]string{"host2": {"--memory", "768M"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(l.controllerArgs(), " "), "serve --config= --listen "+l.ctrlAddr+" --data-dir /b/controller --shared-dir /b/shared "+
		"--host-down-after 3s --allow-unsafe-tcg-migration"; got != want {
		t.Errorf("controller:\n got %s\nwant %s", got, want)
	}
	if got, want := strings.Join(l.agentArgs("host2"), " "), "agent --config= --name host2 --listen "+l.AgentAddr("host2")+" --controller "+l.URL()+
		" --state-dir /b/hosts/host2 --shared-dir /b/shared --driver qemu --accel tcg --heartbeat 500ms --lease-renew 500ms --memory 768M"; got != want {
		t.Errorf("agent:\n got %s\nwant %s", got, want)
	}
	if a1, a2 := l.AgentAddr("host1"), l.AgentAddr("host2"); a1 == "" || a1 == a2 || a1 == l.ctrlAddr || !strings.HasPrefix(a1, "127.0.0.1:") {
		t.Errorf("free addresses: controller %s, host1 %s, host2 %s", l.ctrlAddr, a1, a2)
	}
	if _, err := l.StartAgent("host3"); err == nil {
		t.Error("started host3 of a two-host cluster")
	}
}

func TestPIDRecord(t *testing.T) {
	self := recordOf(os.Getpid(), "http://127.0.0.1:1")
	if self.Start == 0 || !self.alive() {
		t.Fatalf("own record %+v is not alive", self)
	}
	got, err := parsePIDRecord([]byte(self.String()))
	if err != nil || got != self {
		t.Errorf("round trip: %+v, %v; want %+v", got, err, self)
	}
	if r, err := parsePIDRecord([]byte("123\n")); err != nil || r.PID != 123 {
		t.Errorf("a bare PID: %+v, %v", r, err)
	}
	for _, bad := range []string{"", "x", "-4", "12\nstart"} {
		if _, err := parsePIDRecord([]byte(bad)); err == nil {
			t.Errorf("parsePIDRecord(%q) took it", bad)
		}
	}
	recycled := self
	recycled.Start++
	if recycled.alive() {
		t.Error("a record whose start time differs (a recycled PID) counts as alive")
	}
	// An exited child that nobody has reaped yet is a zombie: dead.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := recordOf(cmd.Process.Pid, "")
	deadline := time.Now().Add(5 * time.Second)
	for r.alive() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.alive() {
		t.Error("an exited, unreaped child counts as alive")
	}
	cmd.Wait()
}

func TestAcquire(t *testing.T) {
	dir := t.TempDir()
	release, err := acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	if Running(dir) != os.Getpid() {
		t.Errorf("Running = %d, want this process", Running(dir))
	}
	if _, err := acquire(dir); !errors.As(err, new(errRunning)) || !strings.Contains(err.Error(), "godwit down --dir "+dir) {
		t.Errorf("second acquire: %v", err)
	}
	release()
	if Running(dir) != 0 {
		t.Error("still running after release")
	}
	if _, err := os.Stat(PIDFile(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left after release: %v", err)
	}
	// A pid file left by a supervisor that died does not block the next one.
	os.WriteFile(PIDFile(dir), []byte("999999999\n1\n"), 0o644)
	if Running(dir) != 0 {
		t.Error("a stale pid file counts as running")
	}
	release, err = acquire(dir)
	if err != nil {
		t.Fatalf("acquire over a stale pid file: %v", err)
	}
	release()
}

// sleeper starts a process that runs until killed, reaped when it exits.
func sleeper(t *testing.T) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	return cmd, done
}

func gone(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s still runs", what)
	}
}

func fastTimeouts() Timeouts {
	return Timeouts{Controller: 5 * time.Second, Hosts: 5 * time.Second, AgentStop: 5 * time.Second,
		ControllerStop: 5 * time.Second, Poll: 20 * time.Millisecond}
}

// What a supervisor that died left behind is found through the pid files
// and stopped in order: the agent through its shutdown request (stopping
// its VMs), the controller after it.
func TestDownStopsLeftovers(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(runDir(dir), 0o755)
	agent, agentDone := sleeper(t)
	ctrl, ctrlDone := sleeper(t)
	var requests atomic.Int32
	var stopVMs atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			StopVMs bool `json:"stop_vms"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		stopVMs.Store(req.StopVMs)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/shutdown" {
			t.Errorf("agent got %s %s", r.Method, r.URL.Path)
		}
		select {
		case <-ctrlDone:
			t.Error("the controller was stopped before the agent")
		default:
		}
		requests.Add(1)
		w.WriteHeader(http.StatusNoContent)
		agent.Process.Kill() // the agent exits once its VMs are stopped
	}))
	defer srv.Close()
	writePIDFile(childPIDFile(dir, "host1"), recordOf(agent.Process.Pid, srv.URL))
	writePIDFile(childPIDFile(dir, controllerName), recordOf(ctrl.Process.Pid, ""))
	writePIDFile(childPIDFile(dir, "host2"), pidRecord{PID: 999999999, Start: 1}) // long gone
	os.WriteFile(PIDFile(dir), []byte("999999998\n1\n"), 0o644)                   // the dead supervisor

	if err := Check(Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "host1 pid") || !strings.Contains(err.Error(), "godwit down") {
		t.Errorf("Check with leftovers: %v", err)
	}
	var progress strings.Builder
	was, err := down(context.Background(), dir, &progress, fastTimeouts())
	if err != nil || !was {
		t.Fatalf("down: %v, %v", was, err)
	}
	gone(t, "the agent", agentDone)
	gone(t, "the controller", ctrlDone)
	if !stopVMs.Load() || requests.Load() != 1 {
		t.Errorf("%d shutdown requests, stop_vms %v", requests.Load(), stopVMs.Load())
	}
	if !strings.Contains(progress.String(), "host1 pid") {
		t.Errorf("progress does not name what it stops: %q", progress.String())
	}
	left, _ := filepath.Glob(filepath.Join(dir, "run", "*"))
	if _, err := os.Stat(PIDFile(dir)); err == nil || len(left) > 0 {
		t.Errorf("files left: up.pid %v, run %v", err, left)
	}
	if was, err := down(context.Background(), dir, io.Discard, fastTimeouts()); was || err != nil {
		t.Errorf("down with nothing running: %v, %v", was, err)
	}
}

// An agent that does not answer its shutdown request gets SIGTERM.
func TestDownSignalsAgentThatDoesNotAnswer(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(runDir(dir), 0o755)
	agent, agentDone := sleeper(t)
	writePIDFile(childPIDFile(dir, "host1"), recordOf(agent.Process.Pid, "http://127.0.0.1:1"))
	if was, err := down(context.Background(), dir, io.Discard, fastTimeouts()); !was || err != nil {
		t.Fatalf("down: %v, %v", was, err)
	}
	gone(t, "the agent", agentDone)
}

func TestDownSignalsSupervisor(t *testing.T) {
	dir := t.TempDir()
	up, upDone := sleeper(t)
	writePIDFile(PIDFile(dir), recordOf(up.Process.Pid, ""))
	if Running(dir) != up.Process.Pid {
		t.Fatalf("Running = %d", Running(dir))
	}
	if err := Check(Config{Dir: dir}); !errors.As(err, new(errRunning)) {
		t.Errorf("Check with a live supervisor: %v", err)
	}
	var progress strings.Builder
	if was, err := down(context.Background(), dir, &progress, fastTimeouts()); !was || err != nil {
		t.Fatalf("down: %v, %v", was, err)
	}
	gone(t, "godwit up", upDone)
	if !strings.Contains(progress.String(), "pid "+strconv.Itoa(up.Process.Pid)) {
		t.Errorf("progress %q", progress.String())
	}
}

// fakeController reports the named hosts up once it has been asked n times.
func fakeController(t *testing.T, n int32, hosts ...string) *httptest.Server {
	var calls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/hosts", func(w http.ResponseWriter, r *http.Request) {
		var hs []api.Host
		for _, h := range hosts {
			state := api.HostDown
			if calls.Load() >= n {
				state = api.HostUp
			}
			hs = append(hs, api.Host{Name: h, State: state})
		}
		calls.Add(1)
		json.NewEncoder(w).Encode(hs)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestWaitForHosts(t *testing.T) {
	ctx := context.Background()
	check := func(url string, names ...string) func(context.Context) error {
		return func(ctx context.Context) error { return hostsUp(ctx, api.NewClient(url), names) }
	}
	srv := fakeController(t, 3, "host1", "host2")
	if err := WaitUntil(ctx, 5*time.Second, 10*time.Millisecond, check(srv.URL, "host1", "host2"), nil); err != nil {
		t.Errorf("hosts that come up: %v", err)
	}

	srv = fakeController(t, 0, "host1")
	err := WaitUntil(ctx, 100*time.Millisecond, 10*time.Millisecond, check(srv.URL, "host1", "host2"), nil)
	var te *TimeoutError
	var missing notUp
	if !errors.As(err, &te) || !errors.As(err, &missing) || !reflect.DeepEqual(missing, notUp{"host2"}) {
		t.Errorf("a host that never registers: %v", err)
	}

	died := errors.New("host1 exited")
	if err := WaitUntil(ctx, 5*time.Second, 10*time.Millisecond, check(srv.URL, "host9"), func() error { return died }); err != died {
		t.Errorf("a process that died: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := WaitUntil(cctx, 5*time.Second, 10*time.Millisecond, check(srv.URL, "host9"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}

	// A controller that accepts but never answers cannot stall the wait.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	err = WaitUntil(ctx, 100*time.Millisecond, 10*time.Millisecond, check("http://"+ln.Addr().String(), "host1"), nil)
	if !errors.As(err, &te) || time.Since(start) > attemptTimeout+2*time.Second {
		t.Errorf("a silent controller: %v after %s", err, time.Since(start))
	}
}

func TestCheckPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	// The controller's port free, host1's taken.
	err = Check(Config{Dir: t.TempDir(), Hosts: 1, Driver: "fake", Port: port - 1})
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(port)) || !strings.Contains(err.Error(), "--port") {
		t.Errorf("Check with host1's port taken: %v", err)
	}
}

func TestUsage(t *testing.T) {
	u := Usage(Config{Dir: "/c", Hosts: 3, Driver: "qemu", Port: 7500}, "kvm", true)
	for _, want := range []string{"export GODWIT_SERVER=https://127.0.0.1:7500 GODWIT_CA=/c/pki/ca.crt", "godwit host list", "godwit vm create",
		"godwit down --dir /c", "Ctrl-C", "qemu driver, kvm"} {
		if !strings.Contains(u, want) {
			t.Errorf("usage lacks %q:\n%s", want, u)
		}
	}
	if strings.Contains(Usage(Config{Dir: "/c", Driver: "fake"}, "", false), "Ctrl-C") {
		t.Error("a background cluster's usage mentions Ctrl-C")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
