package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/guestlog"
)

// fakeGodwit writes a stand-in for the godwit binary: it prints its
// arguments and one variable of its environment, then runs until
// signalled (or, with exit, exits at once).
func fakeGodwit(t *testing.T, exit bool) string {
	t.Helper()
	body := "exec sleep 300"
	if exit {
		body = "exit 3"
	}
	path := filepath.Join(t.TempDir(), "godwit")
	script := "#!/bin/sh\necho \"args: $*\"\necho \"env: $GODWIT_X\"\n" + body + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitLog waits until the log of p holds want.
func waitLog(t *testing.T, p *Proc, want string) string {
	t.Helper()
	var b []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ = os.ReadFile(p.Log()); strings.Contains(string(b), want) {
			return string(b)
		}
	}
	t.Fatalf("the log of %s lacks %q:\n%s", p.Name(), want, b)
	return ""
}

// A restarted agent gets the flags and address it had, env on top; Stop
// and Kill end processes by PID; Stop of the cluster ends what runs.
func TestLocalRestartsAndStopsByPID(t *testing.T) {
	l, err := New(Options{Dir: t.TempDir(), Exe: fakeGodwit(t, false), Hosts: 2, Driver: "fake",
		HostArgs: map[string][]string{"host1": {"--memory", "768M"}}, Timeouts: fastTimeouts(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	first, err := l.StartAgent("host1", "GODWIT_X=armed")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.AgentAddr("host1")
	log := waitLog(t, first, "env: armed")
	if !strings.Contains(log, "--listen "+addr) || !strings.Contains(log, "--memory 768M") || !strings.Contains(log, "starting host1: GODWIT_X=armed") {
		t.Errorf("first start's log:\n%s", log)
	}
	first.Stop()
	if !first.Exited() || first.Err() == nil {
		t.Fatalf("after Stop: exited %v, err %v", first.Exited(), first.Err())
	}
	again, err := l.StartAgent("host1")
	if err != nil {
		t.Fatal(err)
	}
	if again.PID() == first.PID() || l.Agent("host1") != again {
		t.Errorf("the restart is pid %d (first %d); Agent names pid %d", again.PID(), first.PID(), l.Agent("host1").PID())
	}
	log = waitLog(t, again, "env: \n")
	// Each start: the line that says what started, the arguments it got.
	if strings.Count(log, "--listen "+addr+" ") != 4 || strings.Count(log, "--memory 768M") != 4 {
		t.Errorf("the restart's flags differ:\n%s", log)
	}
	other, err := l.StartAgent("host2")
	if err != nil {
		t.Fatal(err)
	}
	other.Kill()
	l.Stop()
	if !again.Exited() {
		t.Error("Stop left host1 running")
	}
	if got := strings.Join(l.Names(), ","); got != "host1,host2" {
		t.Errorf("Names = %s", got)
	}
}

// A process that exits while the cluster waits for it ends the wait at
// once, with the end of its log; a controller that answers is up
// whatever became of the agents (a test may have killed one).
func TestLocalWaitSeesAProcessExit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/version" {
			w.Write([]byte("{}"))
			return
		}
		w.Write([]byte("[]")) // no hosts
	}))
	defer srv.Close()
	l, err := New(Options{Dir: t.TempDir(), Exe: fakeGodwit(t, true), Hosts: 1, Driver: "fake", ControllerAddr: strings.TrimPrefix(srv.URL, "http://"),
		Timeouts: fastTimeouts(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.StartAgent("host1")
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	start := time.Now()
	err = l.WaitHosts(context.Background())
	if err == nil || !strings.Contains(err.Error(), "host1 exited") || !strings.Contains(err.Error(), "args: agent --config= --name host1") {
		t.Errorf("WaitHosts = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("WaitHosts took %s", time.Since(start))
	}
	if err := l.WaitController(context.Background()); err != nil {
		t.Errorf("WaitController with an agent gone: %v", err)
	}
}

// Heartbeats are read from the console through the API, parsed by
// guestlog; a wait sees them in order and reports its last reason.
func TestHeartbeat(t *testing.T) {
	var beats atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/vms/web-1/console" {
			http.NotFound(w, r)
			return
		}
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		var b strings.Builder
		b.WriteString("booting\n")
		n := beats.Add(1) - 1 // one more each time it is read
		for i := int64(1); i <= n; i++ {
			fmt.Fprintf(&b, "godwit-guest hb=%d up_ms=%d cpus=1 mem_mib=100 disk_mib=64 disk_rec=%d disk_bad=0\n", i, i*100, i)
		}
		b.WriteString("godwit-guest hb=99 up") // a line cut short
		w.Write([]byte(b.String()[min(off, b.Len()):]))
	}))
	defer srv.Close()
	l, err := New(Options{Dir: t.TempDir(), Exe: "/bin/false", ControllerAddr: strings.TrimPrefix(srv.URL, "http://"),
		Timeouts: Timeouts{Poll: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Heartbeat(ctx, "web-1", 0); !errors.Is(err, ErrNoHeartbeat) {
		t.Errorf("a console without heartbeats: %v", err)
	}
	seen := int64(-1)
	hb, err := l.WaitHeartbeat(ctx, "web-1", 0, 5*time.Second, func(hb guestlog.Heartbeat) error {
		if seen < 0 {
			seen = hb.Counter
		}
		if hb.Counter < seen+2 {
			return fmt.Errorf("heartbeat %d", hb.Counter)
		}
		return nil
	})
	if err != nil || hb.Counter != seen+2 || hb.DiskRecords != int(hb.Counter) {
		t.Errorf("WaitHeartbeat = %+v, %v (first seen %d)", hb, err, seen)
	}
	if b, err := l.Console(ctx, "web-1", 8); err != nil || !strings.HasPrefix(string(b), "godwit-guest hb=1 ") {
		t.Errorf("Console from offset 8 = %q, %v", b, err)
	}
	_, err = l.WaitHeartbeat(ctx, "web-1", 0, 50*time.Millisecond, func(guestlog.Heartbeat) error { return errors.New("never") })
	var te *TimeoutError
	if !errors.As(err, &te) || te.Last.Error() != "never" {
		t.Errorf("a wait that times out: %v", err)
	}
	if _, err := l.Heartbeat(ctx, "nosuch", 0); err == nil {
		t.Error("the heartbeat of an unknown vm")
	}
}
