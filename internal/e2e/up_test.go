package e2e

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
)

// godwit up --detach starts a controller and three agents in the
// background; the CLI works against it; godwit down stops every process.
func TestUpDetachAndDown(t *testing.T) {
	bin := filepath.Join(gcluster.BinariesForTest(t), "godwit")
	dir := t.TempDir()
	// The agents take the ports after the controller's.
	port, err := gcluster.FreePorts(3)
	if err != nil {
		t.Skip(err)
	}
	portStr := strconv.Itoa(port)
	server := gcluster.Config{Dir: dir, Port: port}.URL()
	godwit := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"--server", server, "--ca", gcluster.CAFile(dir)}, args...)...)
		if tok, err := os.ReadFile(gcluster.TokenFile(dir)); err == nil { // made by up
			cmd.Env = append(os.Environ(), "GODWIT_TOKEN="+strings.TrimSpace(string(tok)))
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := godwit("up", "--driver", "fake", "--hosts", "3", "--dir", dir, "--port", portStr, "--detach")
	pid := gcluster.Running(dir)
	t.Cleanup(func() {
		if pid != 0 && syscall.Kill(pid, 0) == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if err != nil {
		t.Fatalf("godwit up: %v\n%s", err, out)
	}
	if !strings.Contains(out, "export GODWIT_SERVER="+server) || pid == 0 {
		t.Fatalf("godwit up printed %q (pid %d)", out, pid)
	}
	if out, err := godwit("up", "--driver", "fake", "--dir", dir, "--port", portStr, "--detach"); err == nil || !strings.Contains(out, "already running") {
		t.Errorf("a second up in the same dir: %v %s", err, out)
	}

	out, err = godwit("host", "list", "-o", "json")
	if err != nil {
		t.Fatal(err, out)
	}
	var hosts []api.Host
	if err := json.Unmarshal([]byte(out), &hosts); err != nil || len(hosts) != 3 {
		t.Fatalf("host list -o json = %s (%v)", out, err)
	}
	kernel := filepath.Join(dir, "vmlinuz")
	if err := gcluster.WriteFakeKernel(kernel); err != nil {
		t.Fatal(err)
	}
	if out, err := godwit("image", "import", "tiny", "--kernel", kernel); err != nil {
		t.Fatal(err, out)
	}
	if out, err := godwit("vm", "create", "v1", "--image", "tiny", "--memory", "128M", "--disk", "64M"); err != nil || !strings.Contains(out, "running") {
		t.Fatalf("vm create: %v\n%s", err, out)
	}

	if out, err := godwit("down", "--dir", dir); err != nil || !strings.Contains(out, "cluster stopped") {
		t.Fatalf("godwit down: %v\n%s", err, out)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("godwit up (pid %d) still running after down", pid)
	}
	for i := 0; i <= 3; i++ {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port+i), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still answers after down", port+i)
		}
	}
	if out, err := godwit("down", "--dir", dir); err != nil || !strings.Contains(out, "no cluster is running") {
		t.Errorf("down twice: %v %s", err, out)
	}
}
