package qemu

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/pki"
	"github.com/godwit/godwit/internal/testguest"
)

// wireProxy forwards every connection made to it to target and scans all
// the bytes it carries, both ways, for a marker: a man in the middle that
// only reads.
type wireProxy struct {
	ln     net.Listener
	target string
	marker []byte
	seen   atomic.Bool
	bytes  atomic.Int64
	conns  atomic.Int64
	wg     sync.WaitGroup
}

// startProxy listens on 127.0.0.1 and forwards to target until the test
// ends.
func startProxy(t *testing.T, target string, marker []byte) *wireProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &wireProxy{ln: ln, target: target, marker: marker}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *wireProxy) addr() string { return p.ln.Addr().String() }

func (p *wireProxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.conns.Add(1)
		var once sync.Once
		closeBoth := func() { once.Do(func() { in.Close(); out.Close() }) }
		p.wg.Add(2)
		go func() { defer p.wg.Done(); defer closeBoth(); p.pipe(out, in) }()
		go func() { defer p.wg.Done(); defer closeBoth(); p.pipe(in, out) }()
	}
}

// pipe copies src to dst, looking for the marker in what passes. The last
// len(marker)-1 bytes of each read are kept and searched again with the
// next, so a marker split across reads (or TCP segments) is found too.
func (p *wireProxy) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 64<<10)
	var carry []byte
	keep := len(p.marker) - 1
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.bytes.Add(int64(n))
			win := append(carry, buf[:n]...)
			if bytes.Contains(win, p.marker) {
				p.seen.Store(true)
			}
			if len(win) > keep {
				win = win[len(win)-keep:]
			}
			carry = append(carry[:0], win...)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// The proxy finds a marker however the stream is cut: here in one-byte
// writes, and split in two across writes some time apart.
func TestWireProxyFindsSplitMarker(t *testing.T) {
	marker := []byte("GODWIT-MARKER-0123456789abcdef")
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer sink.Close()
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	send := func(chunks ...[]byte) bool {
		p := startProxy(t, sink.Addr().String(), marker)
		c, err := net.Dial("tcp", p.addr())
		must(t, err)
		for _, ch := range chunks {
			_, err := c.Write(ch)
			must(t, err)
			time.Sleep(5 * time.Millisecond) // separate reads on the proxy
		}
		c.Close()
		p.ln.Close()
		p.wg.Wait()
		return p.seen.Load()
	}
	var bytewise [][]byte
	for _, b := range append([]byte("noise "), marker...) {
		bytewise = append(bytewise, []byte{b})
	}
	if !send(bytewise...) {
		t.Error("a marker sent a byte at a time was not found")
	}
	if !send([]byte("noise "+string(marker[:10])), marker[10:]) {
		t.Error("a marker split across two writes was not found")
	}
	if send([]byte("noise "+string(marker[:10])), []byte("x"), marker[10:]) {
		t.Error("a broken marker was found")
	}
}

// newMarker is a string no stream carries by chance: fresh per run, so a
// test cannot pass on something left from an earlier one.
func newMarker(t *testing.T) string {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	must(t, err)
	return "GODWIT-MARKER-" + hex.EncodeToString(b)
}

// What an encrypted migration must show (docs/security.md): guest data —
// memory and the local disk — never crosses the network in the clear. A
// guest keeps a marker in its memory and on its disk; a block-copy
// migration between two drivers runs through proxies that read every byte
// of the memory stream and of the NBD disk copy. With TLS the marker is
// never seen, and the guest carries on at the destination with its disk;
// without TLS it is seen in both streams, which shows the proxies would
// catch a leak.
func TestMigrationWireQEMU(t *testing.T) {
	requireQEMU(t)
	g := testguest.ForTest(t)
	ca, err := pki.NewCA("wire")
	must(t, err)
	for _, encrypted := range []bool{true, false} {
		name := "plain"
		if encrypted {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			killLeftovers(t, root)
			var srcTLS, dstTLS *driver.MigrationTLS
			if encrypted {
				srcTLS = &driver.MigrationTLS{Dir: qemuCreds(t, root, ca, "host1"), PeerName: "host2"}
				dstTLS = &driver.MigrationTLS{Dir: qemuCreds(t, root, ca, "host2")}
			}
			mem, disk := wireMigration(t, g, root, srcTLS, dstTLS)
			t.Logf("%s: memory stream %d MiB over %d connection(s), marker seen: %v; nbd stream %d KiB over %d connection(s), marker seen: %v",
				name, mem.bytes.Load()>>20, mem.conns.Load(), mem.seen.Load(), disk.bytes.Load()>>10, disk.conns.Load(), disk.seen.Load())
			if mem.conns.Load() == 0 || disk.conns.Load() == 0 {
				t.Fatal("a stream did not go through its proxy")
			}
			if encrypted {
				if mem.seen.Load() {
					t.Error("the marker crossed the wire in the clear in the memory stream of an encrypted migration")
				}
				if disk.seen.Load() {
					t.Error("the marker crossed the wire in the clear in the nbd stream of an encrypted migration")
				}
				return
			}
			if !mem.seen.Load() {
				t.Error("the marker was not seen in the plain memory stream: the proxy would miss a leak")
			}
			if !disk.seen.Load() {
				t.Error("the marker was not seen in the plain nbd stream: the proxy would miss a leak")
			}
		})
	}
}

// wireMigration boots a guest holding a fresh marker on a source driver
// and block-copies it, through two proxies, to a destination driver; it
// checks the guest runs there with the marker on its disk, and returns
// the proxies of the memory stream and of the NBD stream.
func wireMigration(t *testing.T, g testguest.Guest, root string, srcTLS, dstTLS *driver.MigrationTLS) (mem, disk *wireProxy) {
	t.Helper()
	marker := newMarker(t)
	src, dst := hostDriver(t, root, "src"), hostDriver(t, root, "dst")
	spec := driver.VMSpec{ID: lifecycleID, Name: "wire", VCPUs: 1, MemoryMiB: 128, Kernel: g.Kernel, Initrd: g.Initrd,
		Cmdline: g.Cmdline + " marker=" + marker, Disk: &driver.Disk{Path: filepath.Join(root, "src-disk.qcow2"), SizeMiB: 64}}
	must(t, src.Create(ctx, spec))
	must(t, src.Start(ctx, lifecycleID))
	before := waitHB(t, src, 0, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 3 })
	consoleHas(t, src, "godwit-guest marker planted in ram,disk")
	if !fileHas(t, spec.Disk.Path, marker) {
		t.Fatal("the marker is not on the source's disk image")
	}

	dspec := spec
	d := *spec.Disk
	d.Path = filepath.Join(root, "dst-disk.qcow2")
	dspec.Disk = &d
	to, err := dst.PrepareIncoming(ctx, dspec, "127.0.0.1", driver.MigrateOptions{TLS: dstTLS})
	must(t, err)
	if to.NBD == "" {
		t.Fatal("no nbd export: not a block copy")
	}
	mem = startProxy(t, strings.TrimPrefix(to.URI, "tcp:"), []byte(marker))
	disk = startProxy(t, to.NBD, []byte(marker))
	to.URI, to.NBD = "tcp:"+mem.addr(), disk.addr()

	start := time.Now()
	must(t, src.MigrateOut(ctx, lifecycleID, to, driver.MigrateOptions{BandwidthBytesPerS: 125e6, TLS: srcTLS}))
	deadline := time.Now().Add(120 * time.Second)
	for {
		st, err := src.MigrationStatus(ctx, lifecycleID)
		must(t, err)
		if st.Status == driver.MigrationCompleted {
			t.Logf("block copy: %d MiB memory, %d MiB disk in %s (%s with setup), downtime %s",
				st.MemoryTransferred>>20, st.DiskTransferred>>20, st.TotalTime, time.Since(start).Round(time.Millisecond), st.Downtime)
			break
		}
		if st.Status != driver.MigrationActive || time.Now().After(deadline) {
			t.Fatalf("migration: %s %s", st.Status, st.Error)
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(t, dst.SwitchOver(ctx, lifecycleID, 30*time.Second))
	must(t, src.Release(ctx, lifecycleID))
	waitHB(t, dst, 0, func(hb guestlog.Heartbeat) bool {
		return hb.Counter > before.Counter+2 && hb.DiskBad == 0 && hb.MemBad == 0
	})
	// The disk arrived whole: the marker is at the destination, whatever
	// the wire showed.
	if !fileHas(t, d.Path, marker) {
		t.Error("the marker is not on the destination's disk image")
	}
	return mem, disk
}

// consoleHas waits up to 30 s for a line in d's VM's console.
func consoleHas(t *testing.T, d *Driver, line string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rc, err := d.Console(ctx, lifecycleID, 0)
		must(t, err)
		b, err := io.ReadAll(rc)
		rc.Close()
		must(t, err)
		if bytes.Contains(b, []byte(line)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the console within 30 s: %s", line, tail(b))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fileHas reports whether a host file holds s (a qcow2 image keeps the
// guest's data clusters as written).
func fileHas(t *testing.T, path, s string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	must(t, err)
	return bytes.Contains(b, []byte(s))
}
