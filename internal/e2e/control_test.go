package e2e

import (
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
)

// fakeGuestImage imports a tiny file shaped like a bzImage: the fake
// driver boots nothing, but the controller checks what it is given like
// any other image, and the test needs nothing installed.
func (c *cluster) fakeGuestImage() {
	c.t.Helper()
	path := filepath.Join(c.Dir(), "fake-vmlinuz")
	if err := gcluster.WriteFakeKernel(path); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.client.ImportImage(bg, api.ImportImageMeta{Name: "testguest", Cmdline: "console=ttyS0"},
		map[string]string{api.RoleKernel: path}); err != nil {
		c.t.Fatal(err)
	}
}

// The controller killed with -9 and restarted: hosts, VMs and images are
// as they were, and the VMs never stopped.
func TestControllerRestartKeepsState(t *testing.T) {
	c := newCluster(t, clusterOpts{hosts: 3, driver: "fake"})
	c.fakeGuestImage()
	for i := 0; i < 4; i++ {
		if _, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: fmt.Sprintf("vm-%d", i), Image: "testguest",
			Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 64}}); err != nil {
			t.Fatal(err)
		}
	}
	beforeVMs, _ := c.client.VMs(bg)
	beforeImages, _ := c.client.Images(bg)

	c.Controller().Kill()
	c.startController()
	c.waitHosts()

	afterVMs, err := c.client.VMs(bg)
	if err != nil {
		t.Fatal(err)
	}
	afterImages, _ := c.client.Images(bg)
	if len(afterVMs) != 4 {
		t.Fatalf("after restart %d VMs; want 4", len(afterVMs))
	}
	for i := range beforeVMs {
		b, a := beforeVMs[i], afterVMs[i]
		b.UpdatedAt, a.UpdatedAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("vm %s changed across restart:\nbefore %+v\nafter  %+v", b.Name, b, a)
		}
	}
	if !reflect.DeepEqual(beforeImages, afterImages) {
		t.Errorf("images changed across restart: %+v vs %+v", beforeImages, afterImages)
	}
}

// A host whose agent is killed is marked down within the configured
// timeout, and its VMs become unknown.
func TestHostMarkedDown(t *testing.T) {
	const downAfter = 3 * time.Second
	c := newCluster(t, clusterOpts{hosts: 2, driver: "fake", downAfter: downAfter})
	c.fakeGuestImage()
	vm, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "app", Image: "testguest", Host: "host2",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 128}})
	if err != nil {
		t.Fatal(err)
	}
	c.Agent(vm.Host).Kill()
	killed := time.Now()
	c.eventually(downAfter+5*time.Second, "host2 down", func() error {
		h, err := c.client.Host(bg, "host2")
		if err != nil {
			return err
		}
		if h.State != api.HostDown {
			return fmt.Errorf("host2 is %s", h.State)
		}
		return nil
	})
	t.Logf("host marked down %.1fs after its agent was killed (timeout %s)", time.Since(killed).Seconds(), downAfter)
	got, _ := c.client.VM(bg, "app")
	if got.State != api.VMUnknown {
		t.Errorf("vm on the down host is %s; want unknown", got.State)
	}
	if h, _ := c.client.Host(bg, "host1"); h.State != api.HostUp {
		t.Errorf("host1 is %s; want up", h.State)
	}
}
