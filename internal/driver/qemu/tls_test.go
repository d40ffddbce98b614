package qemu

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/pki"
	"github.com/godwit/godwit/internal/testguest"
)

// qemuCreds writes a host's migration credentials, issued by ca, into a
// directory of root.
func qemuCreds(t *testing.T, root string, ca *pki.CA, host string) string {
	t.Helper()
	k, err := pki.NewKey()
	must(t, err)
	c, err := ca.Issue(pki.Subject{Name: host, Role: pki.RoleHost}, &k.PublicKey)
	must(t, err)
	dir := filepath.Join(root, "creds-"+host+"-"+ca.Cert.Subject.CommonName)
	must(t, (&pki.Identity{CA: ca.Cert, Cert: c, Key: k}).SaveQEMU(dir))
	return dir
}

// An encrypted block-copy migration (memory over QEMU's TLS migration
// channel, the disk over NBD with TLS): it completes between hosts of one
// CA, and the guest carries on; a destination whose certificate is from
// another CA, or for another name, is refused and the guest stays.
func TestMigrationTLSQEMU(t *testing.T) {
	requireQEMU(t)
	g := testguest.ForTest(t)
	root := t.TempDir()
	killLeftovers(t, root)
	ca, err := pki.NewCA("test")
	must(t, err)
	other, err := pki.NewCA("other")
	must(t, err)
	srcTLS := &driver.MigrationTLS{Dir: qemuCreds(t, root, ca, "host1"), PeerName: "host2"}
	dstTLS := &driver.MigrationTLS{Dir: qemuCreds(t, root, ca, "host2")}
	strangerTLS := &driver.MigrationTLS{Dir: qemuCreds(t, root, other, "host2")}

	src, dst := hostDriver(t, root, "src"), hostDriver(t, root, "dst")
	spec := driver.VMSpec{ID: lifecycleID, Name: "tls", VCPUs: 1, MemoryMiB: 128, Kernel: g.Kernel, Initrd: g.Initrd,
		Cmdline: g.Cmdline + " dirty_mb=16 dirty_rate_mb=4", Disk: &driver.Disk{Path: filepath.Join(root, "src-disk.qcow2"), SizeMiB: 64}}
	must(t, src.Create(ctx, spec))
	must(t, src.Start(ctx, lifecycleID))
	before := waitHB(t, src, 0, func(hb guestlog.Heartbeat) bool { return hb.Counter >= 3 })
	dspec := spec
	disk := *spec.Disk
	disk.Path = filepath.Join(root, "dst-disk.qcow2")
	dspec.Disk = &disk

	refused := func(what string, dstCreds, srcCreds *driver.MigrationTLS) {
		t.Helper()
		to, err := dst.PrepareIncoming(ctx, dspec, "127.0.0.1", driver.MigrateOptions{TLS: dstCreds})
		must(t, err)
		err = src.MigrateOut(ctx, lifecycleID, to, driver.MigrateOptions{BandwidthBytesPerS: 125e6, TLS: srcCreds})
		if err == nil {
			deadline := time.Now().Add(60 * time.Second)
			for {
				st, serr := src.MigrationStatus(ctx, lifecycleID)
				must(t, serr)
				if st.Status == driver.MigrationCompleted {
					t.Fatalf("%s: the migration completed", what)
				}
				if st.Status != driver.MigrationActive {
					t.Logf("%s: refused: %s %s", what, st.Status, st.Error)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: still %s after 60 s", what, st.Status)
				}
				time.Sleep(100 * time.Millisecond)
			}
		} else {
			t.Logf("%s: refused at the start: %v", what, err)
		}
		_ = src.CancelMigration(ctx, lifecycleID)
		must(t, dst.Release(ctx, lifecycleID))
		hb := waitHB(t, src, 0, func(hb guestlog.Heartbeat) bool { return hb.Counter > before.Counter+2 })
		before = hb
	}
	refused("a destination of another CA", strangerTLS, srcTLS)
	refused("a destination of another name", dstTLS, &driver.MigrationTLS{Dir: srcTLS.Dir, PeerName: "host3"})

	to, err := dst.PrepareIncoming(ctx, dspec, "127.0.0.1", driver.MigrateOptions{TLS: dstTLS})
	must(t, err)
	must(t, src.MigrateOut(ctx, lifecycleID, to, driver.MigrateOptions{BandwidthBytesPerS: 125e6, TLS: srcTLS}))
	deadline := time.Now().Add(120 * time.Second)
	for {
		st, err := src.MigrationStatus(ctx, lifecycleID)
		must(t, err)
		if st.Status == driver.MigrationCompleted {
			t.Logf("encrypted block copy: %d MiB memory, %d MiB disk in %s, downtime %s", st.MemoryTransferred>>20, st.DiskTransferred>>20, st.TotalTime, st.Downtime)
			break
		}
		if st.Status != driver.MigrationActive || time.Now().After(deadline) {
			t.Fatalf("encrypted migration: %s %s", st.Status, st.Error)
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(t, dst.SwitchOver(ctx, lifecycleID, 30*time.Second))
	must(t, src.Release(ctx, lifecycleID))
	waitHB(t, dst, 0, func(hb guestlog.Heartbeat) bool { return hb.Counter > before.Counter+2 && hb.DiskBad == 0 })
}
