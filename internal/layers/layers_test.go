// Package layers_test holds the test that keeps godwit's import arrows
// pointing down: API (controller, CLI) → intent → service (with the pure
// scheduler) → host agent (over hostapi) → driver → vocabulary (api/ and
// small helpers). It reads each package's
// imports with go/build, so it needs no go tool and no network.
package layers_test

import (
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/godwit/godwit/"

// forbidden lists, per package prefix, the package prefixes it must not
// import (its own subtree is never forbidden). Test files are not read:
// tests may reach across levels to set a scene.
var forbidden = []struct {
	pkg, why string
	not      []string
}{
	{"api", "the vocabulary is the bottom level: it imports nothing of godwit's",
		[]string{"internal/", "cmd/"}},
	{"internal/driver", "drivers are the bottom of the three levels",
		[]string{"internal/agent", "internal/controller", "internal/intent", "internal/service", "internal/scheduler", "internal/cli", "internal/store", "internal/hostapi", "internal/cluster", "internal/bench", "internal/e2e", "cmd/"}},
	{"internal/agent", "the host agent serves the controller and never calls it",
		[]string{"internal/controller", "internal/intent", "internal/service", "internal/scheduler", "internal/cli", "internal/store", "internal/cluster", "internal/bench", "internal/e2e", "cmd/"}},
	{"internal/agent", "the agent opens drivers by name through the registry in internal/driver; the binary links them in",
		[]string{"internal/driver/qemu", "internal/driver/fake"}},
	{"internal/controller", "the controller serves the intent and service levels over HTTP; it talks to no agent or driver itself",
		[]string{"internal/agent", "internal/cli", "internal/cluster", "internal/bench", "internal/e2e", "internal/driver/qemu", "internal/driver/fake", "cmd/"}},
	{"internal/nova", "the Nova API translates onto intents and the service, as the controller's own routes do: no agent, driver or controller",
		[]string{"internal/controller", "internal/agent", "internal/hostapi", "internal/driver", "internal/cli", "internal/cluster", "internal/bench", "internal/e2e", "cmd/"}},
	{"internal/intent", "intents call service methods only: no HTTP, no agent wire, no driver",
		[]string{"internal/controller", "internal/agent", "internal/hostapi", "internal/httpx", "internal/driver", "internal/cli", "internal/cluster", "internal/bench", "internal/e2e", "cmd/"}},
	{"internal/service", "the service level never calls up into intents or the API",
		[]string{"internal/intent", "internal/controller", "internal/agent", "internal/httpx", "internal/cli", "internal/cluster", "internal/bench", "internal/e2e", "internal/driver/qemu", "internal/driver/fake", "cmd/"}},
	{"internal/scheduler", "the scheduler is pure: it reads the hosts it is given, never a store or an agent",
		[]string{"internal/service", "internal/intent", "internal/controller", "internal/agent", "internal/store", "internal/hostapi", "internal/cli", "internal/driver/qemu", "internal/driver/fake", "cmd/"}},
	{"internal/store", "the store keeps records; it knows no operation",
		[]string{"internal/controller", "internal/intent", "internal/service", "internal/scheduler", "internal/agent", "internal/cli", "internal/driver", "cmd/"}},
	{"internal/events", "the event stream sits on the store: every level writes through it, so it calls none of them",
		[]string{"internal/controller", "internal/intent", "internal/service", "internal/scheduler", "internal/agent", "internal/hostapi", "internal/httpx", "internal/cli", "internal/driver", "internal/cluster", "cmd/"}},
	{"internal/qcow2", "the qcow2 header check is a pure decoder that the controller and the agent both use",
		[]string{"internal/agent", "internal/controller", "internal/intent", "internal/service", "internal/scheduler", "internal/store", "internal/hostapi", "internal/driver", "internal/cli", "internal/cluster", "internal/bench", "internal/e2e", "cmd/"}},
	{"internal/metrics", "the metrics sit at the vocabulary's level, so that every level records into them",
		[]string{"internal/agent", "internal/controller", "internal/intent", "internal/service", "internal/scheduler", "internal/store", "internal/hostapi", "internal/driver", "internal/cli", "internal/cluster", "internal/bench", "internal/e2e", "cmd/"}},
	{"internal/hostapi", "the agent's wire format sits below both its ends",
		[]string{"internal/controller", "internal/intent", "internal/service", "internal/agent", "internal/cli", "internal/driver/qemu", "internal/driver/fake", "cmd/"}},
}

func TestImportsPointDown(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module root is not at %s: %v", root, err)
	}
	imports := map[string][]string{} // package (relative to the module) → godwit imports
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "node_modules") {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files (or only tests) here
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module) {
				imports[rel] = append(imports[rel], strings.TrimPrefix(imp, module))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 10 {
		t.Fatalf("read the imports of only %d packages under %s: the walk is broken", len(imports), root)
	}
	for _, b := range violations(imports) {
		t.Error(b)
	}
}

// violations lists the forbidden imports in imports (package → godwit
// packages it imports, both relative to the module).
func violations(imports map[string][]string) []string {
	var bad []string
	for pkg, imps := range imports {
		for _, rule := range forbidden {
			if !under(pkg, rule.pkg) {
				continue
			}
			for _, imp := range imps {
				for _, no := range rule.not {
					if under(imp, strings.TrimSuffix(no, "/")) && !under(imp, rule.pkg) {
						bad = append(bad, pkg+" imports "+imp+": "+rule.why)
					}
				}
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// under reports whether pkg is prefix or inside it.
func under(pkg, prefix string) bool {
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}

// The rules catch an upward arrow and pass downward ones.
func TestViolations(t *testing.T) {
	got := violations(map[string][]string{
		"internal/driver/qemu": {"internal/driver", "api", "internal/controller"},
		"internal/controller":  {"internal/driver", "internal/store", "internal/driver/fake"},
		"internal/agent":       {"internal/driver", "internal/driver/qemu"},
		"internal/service":     {"internal/scheduler", "internal/store", "internal/intent"},
		"internal/intent":      {"internal/service", "internal/hostapi"},
		"api":                  {"internal/errs"},
		"internal/drivers":     {"internal/controller"}, // not under internal/driver
	})
	want := []string{
		"api imports internal/errs: the vocabulary is the bottom level: it imports nothing of godwit's",
		"internal/agent imports internal/driver/qemu: the agent opens drivers by name through the registry in internal/driver; the binary links them in",
		"internal/controller imports internal/driver/fake: the controller serves the intent and service levels over HTTP; it talks to no agent or driver itself",
		"internal/driver/qemu imports internal/controller: drivers are the bottom of the three levels",
		"internal/intent imports internal/hostapi: intents call service methods only: no HTTP, no agent wire, no driver",
		"internal/service imports internal/intent: the service level never calls up into intents or the API",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
