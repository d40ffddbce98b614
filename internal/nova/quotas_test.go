package nova

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/service"
)

// TestQuotaExceeded: godwit's quota refusal, wrapped as the handlers
// wrap it, is still a 403 and is worded as Nova words it, naming
// Nova's key and godwit's option; the disk, which Nova has no key for,
// names godwit's only.
func TestQuotaExceeded(t *testing.T) {
	for _, c := range []struct {
		resource string
		want     []string
	}{
		{"vms", []string{"Quota exceeded for instances: Requested 1, but already used 2 of 2 instances", "--instances N alpha", "--vms N"}},
		{"vcpus", []string{"Quota exceeded for cores: Requested 1, but already used 2 of 2 cores", "--cores N alpha", "--vcpus N"}},
		{"memory_mib", []string{"Quota exceeded for ram: Requested 1, but already used 2 of 2 ram", "--ram N alpha", "--memory-mib N"}},
		{"disk_mib", []string{"Quota exceeded for disk: Requested 1 MiB, but already used 2 of 2 MiB", "Nova's API does not show", "--disk-mib N"}},
	} {
		err := fmt.Errorf("resize: %w", &service.QuotaExceeded{Project: "alpha", Resource: c.resource, Limit: 2, Used: 2, Requested: 1})
		q, ok := asQuotaExceeded(err)
		if !ok || errs.Code(err) != api.CodeForbidden {
			t.Fatalf("%s: not found in %v, or code %s", c.resource, err, errs.Code(err))
		}
		msg := quotaExceeded(q)
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not say %q", c.resource, msg, w)
			}
		}
	}
}

// TestQuotaValue: limits as Nova takes them.
func TestQuotaValue(t *testing.T) {
	for raw, want := range map[string]struct {
		n        int
		set, bad bool
	}{
		`5`: {5, true, false}, `"5120"`: {5120, true, false}, `-1`: {-1, true, false}, `0`: {0, true, false},
		`null`: {}, `""`: {}, `"x"`: {bad: true}, `1.5`: {bad: true}, `4294967296`: {bad: true}, `true`: {bad: true},
	} {
		n, set, err := quotaValue(json.RawMessage(raw))
		if (err != nil) != want.bad || n != want.n || set != want.set {
			t.Errorf("quotaValue(%s) = %d, %v, %v; want %d, %v, error %v", raw, n, set, err, want.n, want.set, want.bad)
		}
	}
}
