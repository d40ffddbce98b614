package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// testBinaries builds godwit and godwit-guest once; binDir is where.
var (
	binDir       string
	testBinaries = sync.OnceValue(func() error {
		goTool, err := exec.LookPath("go")
		if err != nil {
			return err
		}
		if binDir, err = os.MkdirTemp("", "godwit-test-bin-"); err != nil {
			return err
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		for _, b := range []struct{ out, pkg string }{{"godwit", "./cmd/godwit"}, {"godwit-guest", "./cmd/godwit-guest"}} {
			cmd := exec.Command(goTool, "build", "-o", filepath.Join(binDir, b.out), b.pkg)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
			}
		}
		return nil
	})
)

// BinariesForTest returns a directory holding godwit and godwit-guest:
// $GODWIT_TEST_BIN (make test builds them there) or, under plain go test,
// builds of this module made once per test binary (RunTests removes
// them). It skips the test when there is no go command to build with.
func BinariesForTest(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("GODWIT_TEST_BIN"); d != "" {
		return d
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build godwit with")
	}
	if err := testBinaries(); err != nil {
		t.Fatal(err)
	}
	return binDir
}

// RunTests runs a test package's tests and removes the binaries
// BinariesForTest built; a TestMain calls os.Exit(RunTests(m)).
func RunTests(m *testing.M) int {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}

// WriteFakeKernel writes a file shaped like a bzImage: the fake driver
// boots nothing, but the controller checks any kernel it is given.
func WriteFakeKernel(path string) error {
	k := make([]byte, 4096)
	copy(k[0x202:], "HdrS") // enough of a bzImage header for the controller's check
	return os.WriteFile(path, k, 0o644)
}
