package qemu

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
)

// With virtio-mem, the guest's boot memory must be QEMU's RAM block at
// offset 0: QEMU's TCG dirty-bitmap sync resets the TLB dirty state from
// a block's own offset, not its RAM address (cmdline.go, memory), so a
// boot memory elsewhere loses writes in a live migration. Asked of the
// real QEMU (info ramblock), not of the command line.
func TestBootMemoryIsRAMBlockZero(t *testing.T) {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 is not installed (make test installs it)")
	}
	l := launch{Spec: driver.VMSpec{ID: goldenID, VCPUs: 1, MemoryMiB: 256, MaxMemoryMiB: 1024}}
	args := append([]string{"-machine", "q35", "-accel", "tcg", "-nodefaults", "-display", "none", "-S", "-monitor", "stdio"}, l.memory()...)
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader("info ramblock\nquit\n")
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("qemu did not answer info ramblock within 30s")
	}
	if err != nil {
		t.Fatalf("qemu: %v: %s", err, out)
	}
	m := regexp.MustCompile(`(?m)^\s*(\S+)\s+\S+ \S+\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)`).FindAllStringSubmatch(string(out), -1)
	offsets := map[string]string{}
	for _, r := range m {
		offsets[r[1]] = r[2]
	}
	if offsets[bootMemID] != "0x0000000000000000" {
		t.Errorf("boot memory block %q at offset %q; want 0 (blocks: %v)\n%s", bootMemID, offsets[bootMemID], offsets, out)
	}
}
