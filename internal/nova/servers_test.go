package nova

import (
	"regexp"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
)

// TestGodwitName: a server's free-text name becomes a valid, unique
// godwit VM name.
func TestGodwitName(t *testing.T) {
	if got := godwitName("web1", false); got != "web1" {
		t.Errorf("a valid name is kept: got %q", got)
	}
	suffixed := regexp.MustCompile(`^(.*)-[0-9a-f]{8}$`)
	for name, slug := range map[string]string{
		"web1":                              "web1", // taken: unique asked
		"Web Server 1":                      "web-server-1",
		"tempest-ServersTestJSON-server-42": "tempest-serverstestjson-server-42",
		"tempest-₡-747451702":               "tempest-747451702",
		"₡₡":                                "server",
		"--a--":                             "a",
		strings.Repeat("x", 300):            strings.Repeat("x", api.MaxNameLen-9),
	} {
		got := godwitName(name, true)
		if err := api.ValidateName("vm", got); err != nil {
			t.Errorf("%q → %q: %v", name, got, err)
		}
		if m := suffixed.FindStringSubmatch(got); m == nil || m[1] != slug {
			t.Errorf("%q → %q, want %s-XXXXXXXX", name, got, slug)
		}
	}
	if godwitName("Web", true) == godwitName("Web", true) {
		t.Error("two servers of one name got the same godwit name")
	}
}
