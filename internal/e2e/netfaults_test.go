package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/hostinfo"
)

// Faults of the migration's own parts on real QEMU: the source QEMU
// killed, and the migration connection cut, in the middle of a transfer.
// (The destination QEMU killed is TestLiveMigrationDestinationKilledQEMU.)

// liveVictim creates a dirtying shared-pool VM on host1 and starts a
// capped live migration of it to host2, returning once memory moves.
// The engine would switch this move to post-copy (the guest dirties 8
// MB/s of a 20 MB/s link); postCopy says whether it may.
func (c *cluster) liveVictim(postCopy bool) (api.VM, api.Migration) {
	t := c.t
	t.Helper()
	c.importGuest()
	vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "victim", Image: "testguest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 64}, Cmdline: "dirty_mb=32 dirty_rate_mb=8"})
	if err != nil {
		t.Fatal(err)
	}
	c.waitHeartbeat("victim", 2, 90*time.Second)
	// 20 MB/s: 128 MiB and what the guest dirties take well over 6 s.
	m, err := c.client.Migrate(bg, "victim", api.MigrateRequest{Kind: api.KindLive, To: "host2", BandwidthMBps: 20, NoPostCopy: !postCopy})
	if err != nil {
		t.Fatal(err)
	}
	c.eventually(30*time.Second, "memory moving", func() error {
		got, err := c.client.Migration(bg, m.ID)
		if err == nil && (got.State != api.MigTransferring || got.Progress.MemoryTransferred < 8<<20) {
			err = fmt.Errorf("migration is %s, %d bytes sent", got.State, got.Progress.MemoryTransferred)
		}
		return err
	})
	return vm, m
}

// destinationClean checks that host2 has nothing of vm: no QEMU other
// than the source's, no state.
func (c *cluster) destinationClean(vm api.VM, srcPID int) {
	t := c.t
	t.Helper()
	c.eventually(30*time.Second, "the destination QEMU gone", func() error {
		for _, pid := range hostinfo.QEMUPIDs(vm.ID) {
			if pid != srcPID {
				return fmt.Errorf("qemu %d of the vm still runs", pid)
			}
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(c.StateDir("host2"), "qemu", "vms", vm.ID)); !os.IsNotExist(err) {
		t.Errorf("the destination kept state for the vm: %v", err)
	}
	if _, err := c.agentAPI("host2").VM(bg, vm.ID); err == nil {
		t.Errorf("the destination's agent still has the vm")
	}
}

// The source QEMU killed mid-transfer loses the VM on the source (that is
// what a crash of its process is). The migration must not hang: it ends
// failed with a reason that says what happened, and the destination's
// waiting QEMU is removed.
func TestLiveMigrationSourceKilledQEMU(t *testing.T) {
	requireQEMU(t)
	c := newCluster(t, clusterOpts{hosts: 2, driver: "qemu"})
	vm, m := c.liveVictim(false)
	if err := syscall.Kill(vm.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m = c.waitMigration(m.ID, 2*time.Minute)
	t.Logf("ended %s after %s: %s", m.State, time.Since(start).Round(time.Millisecond), m.Reason)
	if m.State != api.MigRolledBack {
		t.Errorf("migration with its source killed ended %s: %s; want %s", m.State, m.Reason, api.MigRolledBack)
	}
	if !strings.Contains(m.Reason, "host1") || !strings.Contains(m.Reason, "crashed") {
		t.Errorf("reason %q does not say the source's process died", m.Reason)
	}
	c.destinationClean(vm, 0)
	c.eventually(30*time.Second, "the vm recorded as crashed on host1", func() error {
		got, err := c.client.VM(bg, "victim")
		if err == nil && (got.Host != "host1" || got.State != api.VMStopped) {
			err = fmt.Errorf("vm is %s on %s (%s)", got.State, got.Host, got.StateReason)
		}
		return err
	})
	faultTable(t, "qemu-source-killed", []string{fmt.Sprintf("%s: %s", m.State, m.Reason)})
	if err := c.client.DeleteVM(bg, "victim"); err != nil {
		t.Error(err)
	}
}

// The migration connection cut mid-transfer, by a proxy between the two
// QEMUs: "reset" closes every connection (both ends see it at once),
// "stall" forwards nothing more and closes nothing (a silent partition).
// The migration rolls back, the guest never stops running on the source
// (its heartbeat counter carries on, same process), and the destination
// keeps nothing.
func TestLiveMigrationNetworkCutQEMU(t *testing.T) {
	requireQEMU(t)
	var table []string
	for _, mode := range []string{"reset", "stall"} {
		t.Run(mode, func(t *testing.T) {
			c, link := cutLinkCluster(t)
			vm, m := c.liveVictim(false)
			before, _ := c.Heartbeat(bg, "victim", 0)
			if mode == "reset" {
				t.Logf("cut %d migration connection(s) after %d bytes", link.cut(), link.bytes())
			} else {
				link.stall()
				t.Logf("stalled the link after %d bytes", link.bytes())
			}
			start := time.Now()
			m = c.waitMigration(m.ID, 3*time.Minute)
			took := time.Since(start).Round(100 * time.Millisecond)
			t.Logf("ended %s after %s: %s", m.State, took, m.Reason)
			if m.State != api.MigRolledBack {
				t.Errorf("migration with its link cut ended %s: %s; want %s", m.State, m.Reason, api.MigRolledBack)
			}
			link.cut() // a stalled link's connections go now
			got, _ := c.client.VM(bg, "victim")
			if got.Host != "host1" || got.PID != vm.PID || got.State != api.VMRunning {
				t.Errorf("after the cut vm = host %s pid %d state %s; want host1 pid %d running", got.Host, got.PID, got.State, vm.PID)
			}
			c.destinationClean(vm, vm.PID)
			after := c.waitHeartbeat("victim", before.Counter+3, 30*time.Second)
			c.healthy("victim", 0)
			t.Logf("heartbeat %d at the cut, %d after", before.Counter, after.Counter)
			table = append(table, fmt.Sprintf("%-5s %s after %s: %s (heartbeat %d at the cut, %d after, same process)",
				mode, m.State, took, m.Reason, before.Counter, after.Counter))
			if err := c.client.DeleteVM(bg, "victim"); err != nil {
				t.Error(err)
			}
		})
	}
	table = append(table, postCopyCut(t))
	faultTable(t, "qemu-network-cut", table)
}

// cutLinkCluster starts two QEMU hosts; host2's agent is reached through
// a proxy that routes the migration streams it announces through a link
// the test can cut.
func cutLinkCluster(t *testing.T) (*cluster, *cutLink) {
	link := newCutLink()
	front := &agentFront{link: link}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { link.cut() })
	c := newCluster(t, clusterOpts{hosts: 2, driver: "qemu", hostArgs: map[string][]string{"host2": {"--advertise", srv.URL}}})
	front.set(c.AgentAddr("host2"))
	return c, link
}

// postCopyCut cuts the link of a move that switched to post-copy: the
// guest runs on the destination and waits there for pages only the
// source holds (QEMU: postcopy-paused). Nothing can be undone: the
// migration needs attention at once, says why, and both copies are kept
// (the source's is never resumed). The test then stops both QEMUs.
func postCopyCut(t *testing.T) string {
	var row string
	t.Run("post-copy", func(t *testing.T) {
		c, link := cutLinkCluster(t)
		vm, m := c.liveVictim(true)
		c.eventually(60*time.Second, "the switch to post-copy", func() error {
			got, err := c.client.Migration(bg, m.ID)
			if err == nil && !got.Strategy.PostCopy() {
				err = fmt.Errorf("strategy %q, state %s", got.Strategy, got.State)
			}
			return err
		})
		n := link.cut()
		start := time.Now()
		m = c.waitMigration(m.ID, 2*time.Minute)
		took := time.Since(start).Round(100 * time.Millisecond)
		t.Logf("cut %d connection(s) in post-copy; ended %s after %s: %s", n, m.State, took, m.Reason)
		if m.State != api.MigNeedsAttention || !strings.Contains(m.Reason, "post-copy") || !strings.Contains(m.Reason, "never be resumed") {
			t.Errorf("a link cut in post-copy ended %s: %s; want %s saying both copies are kept", m.State, m.Reason, api.MigNeedsAttention)
		}
		pids := hostinfo.QEMUPIDs(vm.ID)
		if len(pids) != 2 {
			t.Errorf("qemu processes of the vm after the cut: %v; want both copies kept", pids)
		}
		// The source's copy must not run again (its guest's newest state
		// is on the destination): its console, which the record still
		// names, gets no new heartbeat.
		was, _ := c.Heartbeat(bg, "victim", 0)
		time.Sleep(3 * time.Second)
		if now, _ := c.Heartbeat(bg, "victim", 0); now.Counter != was.Counter {
			t.Errorf("the source's guest runs again (heartbeat %d, then %d): the guest would run twice", was.Counter, now.Counter)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		row = fmt.Sprintf("%-5s %s after %s: %s", "post-copy reset", m.State, took, m.Reason)
	})
	return row
}

// agentFront is a reverse proxy in front of an agent that rewrites the
// migration address its incoming calls announce to one through link.
type agentFront struct {
	mu    sync.Mutex
	proxy *httputil.ReverseProxy
	link  *cutLink
}

func (f *agentFront) set(agentAddr string) {
	u, _ := url.Parse("http://" + agentAddr)
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method != http.MethodPost || !strings.HasSuffix(resp.Request.URL.Path, "/incoming") || resp.StatusCode != http.StatusOK {
			return nil
		}
		var in hostapi.IncomingReply
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(b, &in); err != nil {
			return err
		}
		addr, err := f.link.listen(strings.TrimPrefix(in.URI, "tcp:"))
		if err != nil {
			return err
		}
		in.URI = "tcp:" + addr
		b, _ = json.Marshal(in)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	f.mu.Lock()
	f.proxy = p
	f.mu.Unlock()
}

func (f *agentFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	p := f.proxy
	f.mu.Unlock()
	if p == nil {
		http.Error(w, "agent not started yet", http.StatusServiceUnavailable)
		return
	}
	p.ServeHTTP(w, r)
}

// cutLink forwards TCP connections to a target until it is cut (every
// connection closed: both ends see it) or stalled (nothing forwarded any
// more, nothing closed: a silent partition).
type cutLink struct {
	mu          sync.Mutex
	lns         []net.Listener
	conns       []net.Conn
	n           int64
	stalled     chan struct{}
	cutOnce     sync.Once
	stallOnce   sync.Once
	cutHappened chan struct{}
}

func newCutLink() *cutLink {
	return &cutLink{stalled: make(chan struct{}), cutHappened: make(chan struct{})}
}

// stall stops forwarding without closing anything.
func (l *cutLink) stall() { l.stallOnce.Do(func() { close(l.stalled) }) }

// listen forwards a new loopback port to target and returns its address.
func (l *cutLink) listen(target string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	l.lns = append(l.lns, ln)
	l.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, in, out)
			l.mu.Unlock()
			go l.pipe(out, in)
			go l.pipe(in, out)
		}
	}()
	return ln.Addr().String(), nil
}

func (l *cutLink) pipe(dst, src net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-l.stalled:
			<-l.cutHappened // hold the connection open, forward nothing
			return
		default:
		}
		if n > 0 {
			l.mu.Lock()
			l.n += int64(n)
			l.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// cut closes every listener and connection; it returns how many
// connections were open.
func (l *cutLink) cut() int {
	l.cutOnce.Do(func() { close(l.cutHappened) })
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ln := range l.lns {
		ln.Close()
	}
	for _, c := range l.conns {
		c.Close()
	}
	return len(l.conns) / 2
}

func (l *cutLink) bytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
