package controller_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/qcow2"
	"github.com/godwit/godwit/internal/store/storetest"
)

// An image that VMs use cannot be deleted: 409, naming the first few of
// them and how many more; once they are gone it can. On SQLite, and on
// PostgreSQL when make test provides one.
func TestDeleteImageInUse(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { deleteImageInUse(t, "") })
	t.Run("postgres", func(t *testing.T) { deleteImageInUse(t, storetest.PostgresDB(t)) })
}

func deleteImageInUse(t *testing.T, dsn string) {
	tc := newTestClusterWith(t, clusterOptions{storeDSN: dsn}, 64, 8192)
	ctx := context.Background()
	tc.importFakeKernel(t, "guest")
	tc.importFakeKernel(t, "other")
	create := func(name, image string) {
		t.Helper()
		if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: image, Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}}); err != nil {
			t.Fatal(err)
		}
	}
	deleteImage := func(name string) (int, api.Error) { return tc.raw(t, "DELETE", "/v1/images/"+name, "", "") }

	create("solo", "other")
	if status, e := deleteImage("other"); status != http.StatusConflict || e.Code != api.CodeConflict ||
		e.Message != `image "other" is used by vm solo; delete it or rebuild it from another image first` {
		t.Errorf("delete an image one vm uses = %d %q", status, e.Message)
	}
	for i := 1; i <= 8; i++ {
		create(fmt.Sprintf("vm-%d", i), "guest")
	}
	status, e := deleteImage("guest")
	if want := "is used by vms vm-1, vm-2, vm-3, vm-4, vm-5 and 3 more; delete them"; status != http.StatusConflict || !strings.Contains(e.Message, want) {
		t.Errorf("delete an image eight vms use = %d %q; want 409 containing %q", status, e.Message, want)
	}
	if _, err := tc.client.Image(ctx, "guest"); err != nil {
		t.Errorf("the image is gone after a refused delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tc.dataDir, "images", "guest", api.RoleKernel)); err != nil {
		t.Errorf("the image's file is gone after a refused delete: %v", err)
	}
	for i := 1; i <= 8; i++ {
		if err := tc.client.DeleteVM(ctx, fmt.Sprintf("vm-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if status, e := deleteImage("guest"); status != http.StatusNoContent {
		t.Errorf("delete an unused image = %d %q; want 204", status, e.Message)
	}
}

// A create and a delete of its image at the same time never leave a VM
// whose image is gone: either the create fails or the delete is refused.
func TestDeleteImageRacesCreate(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{}, 64, 8192)
	ctx := context.Background()
	for i := range 20 {
		image, vm := fmt.Sprintf("img-%d", i), fmt.Sprintf("vm-%d", i)
		tc.importFakeKernel(t, image)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, _ = tc.client.CreateVM(ctx, api.CreateVMRequest{Name: vm, Image: image, Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}})
		}()
		go func() { defer wg.Done(); _ = tc.client.DeleteImage(ctx, image) }()
		wg.Wait()
		_, verr := tc.client.VM(ctx, vm)
		_, ierr := tc.client.Image(ctx, image)
		if verr == nil && ierr != nil {
			t.Fatalf("round %d: vm %s exists, its image %s is gone (%v)", i, vm, image, ierr)
		}
	}
}

// importDisk imports a disk image whose virtual size is sizeMiB (so
// images of different sizes differ): made by qemu-img when it is
// installed, or else a bare qcow2 header, which the import then checks by
// its header alone.
func (tc *testCluster) importDisk(t *testing.T, name string, sizeMiB int) api.Image {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.qcow2")
	if _, err := exec.LookPath("qemu-img"); err == nil {
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", path, fmt.Sprintf("%dM", sizeMiB)).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img create: %v: %s", err, out)
		}
	} else {
		h := qcow2.MinimalHeader("", 0)
		binary.BigEndian.PutUint64(h[24:], uint64(sizeMiB)<<20)
		if err := os.WriteFile(path, h, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	im, err := tc.client.ImportImage(context.Background(), api.ImportImageMeta{Name: name}, map[string]string{api.RoleDisk: path})
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// forgetImage removes an image's record and files behind the
// controller's back, as a delete that raced a create could before the
// image-use lock, so that the name can be imported again with other
// content while a VM still uses it.
func (tc *testCluster) forgetImage(t *testing.T, name string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(tc.dataDir, "godwit.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM documents WHERE kind = 'image' AND id = ?`, name); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(tc.dataDir, "images", name)); err != nil {
		t.Fatal(err)
	}
}

func diskSum(im api.Image) string { f, _ := im.File(api.RoleDisk); return f.SHA256 }

// A VM records the checksum of its image's disk, and no copy of it is
// ever layered on another base: after the image's name is imported again
// with other content, migrations are refused (the VM stays where it
// runs), until a rebuild from the image gives it a fresh disk and the new
// checksum.
func TestVMKeepsItsBase(t *testing.T) {
	tc := newTestClusterSized(t, 4, 2048, 2048)
	ctx := context.Background()
	first := tc.importDisk(t, "base", 64)
	vm, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: "app", Image: "base", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128, DiskMiB: 1024}})
	if err != nil {
		t.Fatal(err)
	}
	if vm.ImageSHA256 == "" || vm.ImageSHA256 != diskSum(first) {
		t.Fatalf("vm records image_sha256 %q; want the image's disk checksum %q", vm.ImageSHA256, diskSum(first))
	}

	tc.forgetImage(t, "base")
	second := tc.importDisk(t, "base", 128)
	if diskSum(second) == diskSum(first) {
		t.Fatal("the second image has the first one's checksum")
	}
	for _, kind := range []api.MigrationKind{api.KindCold, api.KindLive} {
		m, err := tc.client.Migrate(ctx, "app", api.MigrateRequest{Kind: kind, To: "host2"})
		if err != nil {
			t.Fatal(err)
		}
		m = waitMigration(t, tc.client, m.ID)
		if m.State == api.MigCompleted || !strings.Contains(m.Reason, "now holds another disk") || !strings.Contains(m.Reason, "godwit rebuild app") {
			t.Errorf("%s migration onto another base: %s %q; want refused, saying how to recover", kind, m.State, m.Reason)
		}
		if got, _ := tc.client.VM(ctx, "app"); got.Host != "host1" || got.ImageSHA256 != diskSum(first) {
			t.Errorf("after the refused %s migration: host %s, image_sha256 %q", kind, got.Host, got.ImageSHA256)
		}
	}

	in, err := tc.client.Rebuild(ctx, "app", api.RebuildRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if in = waitIntent(t, tc.client, in.ID, 30*time.Second); in.State != api.IntentCompleted {
		t.Fatalf("rebuild: %s %+v", in.State, in.Operations)
	}
	if got, _ := tc.client.VM(ctx, "app"); got.ImageSHA256 != diskSum(second) {
		t.Errorf("after the rebuild image_sha256 = %q; want the new image's %q", got.ImageSHA256, diskSum(second))
	}
	m, err := tc.client.Migrate(ctx, "app", api.MigrateRequest{Kind: api.KindCold, To: "host2"})
	if err != nil {
		t.Fatal(err)
	}
	if m = waitMigration(t, tc.client, m.ID); m.State != api.MigCompleted {
		t.Errorf("migration after the rebuild: %s %q", m.State, m.Reason)
	}
}

// Uploads are bounded: a file over its role's limit, or a body declared
// larger than all of them, is refused with 413 naming the limit; an
// upload that stalls is cut off. Nothing of a refused upload stays.
func TestUploadLimits(t *testing.T) {
	tc := newTestClusterWith(t, clusterOptions{maxDiskUpload: 4 << 20, maxKernelUpload: 1 << 20, uploadIdle: 300 * time.Millisecond}, 2, 1024)
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name string, b []byte, size int) string {
		p := filepath.Join(dir, name)
		b = append(b, make([]byte, size-len(b))...)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kernelHeader := make([]byte, 0x206)
	copy(kernelHeader[0x202:], "HdrS")
	bigDisk := write("big.qcow2", qcow2.MinimalHeader("", 0), 5<<20)
	bigKernel := write("vmlinuz", kernelHeader, 2<<20)
	for _, tt := range []struct {
		name  string
		files map[string]string
		msg   string
	}{
		{"disk", map[string]string{api.RoleDisk: bigDisk}, "the disk file is larger than the upload limit of 4 MiB; make it smaller, or raise the limit with godwit serve --max-disk-upload"},
		{"kernel", map[string]string{api.RoleKernel: bigKernel}, "the kernel file is larger than the upload limit of 1 MiB"},
		{"initrd", map[string]string{api.RoleKernel: write("k", kernelHeader, 4096), api.RoleInitrd: bigKernel}, "the initrd file is larger than the upload limit of 1 MiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tc.client.ImportImage(ctx, api.ImportImageMeta{Name: "big"}, tt.files)
			var e *api.Error
			if !asAPIError(err, &e) || e.Status != http.StatusRequestEntityTooLarge || e.Code != api.CodeTooLarge || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("import = %v; want 413 containing %q", err, tt.msg)
			}
		})
	}

	// A body declared larger than every file at its limit: refused
	// before it is read.
	conn, err := net.Dial("tcp", strings.TrimPrefix(tc.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /v1/images HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 1099511627776\r\n\r\n--x\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("declared 1 TiB: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "limit of 8 MiB for an image's files in all") {
		t.Errorf("declared 1 TiB: %s %s; want 413 naming the limit", resp.Status, b)
	}

	// A body that goes on past that limit without being any file (a
	// preamble of lines, which the multipart reader skips).
	req, _ := http.NewRequest(http.MethodPost, tc.url+"/v1/images", io.LimitReader(junkLines{}, 9<<20))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	if status, e := doRaw(t, req); status != http.StatusRequestEntityTooLarge || e.Code != api.CodeTooLarge {
		t.Errorf("9 MiB of preamble = %d %q; want 413", status, e.Message)
	}

	// A client that sends the start of a disk, then nothing.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		fmt.Fprint(pw, "--x\r\nContent-Disposition: form-data; name=\"meta\"\r\n\r\n{\"name\":\"slow\"}\r\n"+
			"--x\r\nContent-Disposition: form-data; name=\"disk\"; filename=\"d\"\r\n\r\n")
		pw.Write(qcow2.MinimalHeader("", 0))
	}()
	req, _ = http.NewRequest(http.MethodPost, tc.url+"/v1/images", pr)
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	start := time.Now()
	status, e := doRaw(t, req)
	if status != http.StatusBadRequest || !strings.Contains(e.Message, "sent nothing for 300ms") {
		t.Errorf("stalled upload = %d %q; want 400 saying it stalled", status, e.Message)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the stalled upload was cut off after %v", d)
	}

	if ims, _ := tc.client.Images(ctx); len(ims) != 0 {
		t.Errorf("refused uploads left images: %+v", ims)
	}
	if left, _ := os.ReadDir(filepath.Join(tc.dataDir, "images")); len(left) != 0 {
		t.Errorf("refused uploads left files: %v", left)
	}
	// Uploads within the limits still work.
	tc.importDisk(t, "small", 64)
}

// junkLines reads as endless short lines.
type junkLines struct{}

func (junkLines) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "junk\r\n"[i%6]
	}
	return len(p) - len(p)%6, nil
}

// doRaw sends req and reads its JSON error, if any.
func doRaw(t *testing.T, req *http.Request) (int, api.Error) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e api.Error
	if resp.StatusCode >= 400 {
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Errorf("error body is not JSON: %v", err)
		}
	}
	return resp.StatusCode, e
}
