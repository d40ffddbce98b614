package controller_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/godwit/godwit/api"
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
