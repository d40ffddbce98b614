package service

import (
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/httpx"
)

// FuzzCreateVMRequest feeds arbitrary bodies to the create decoder and
// validator: they may refuse anything, but never panic, and what they
// accept is a valid request.
func FuzzCreateVMRequest(f *testing.F) {
	f.Add([]byte(`{"name":"web-1","image":"guest","flavor":{"vcpus":1,"memory_mib":256,"disk_mib":1024}}`))
	f.Add([]byte(`{"name":"x","image":"g","flavor":{"vcpus":1,"memory_mib":64},"pool":"shared","start":false}`))
	f.Add([]byte(`{"name":`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"flavor":{"vcpus":1e309}}`))
	f.Add([]byte(`{"name":"x","image":"g","flavor":{"vcpus":1,"memory_mib":64},"display_name":"Web – Zürich","description":"a\u0007"}`))
	f.Add([]byte(`{"name":"x","image":"g","flavor":{"vcpus":1,"memory_mib":64},"access_ipv4":"203.0.113.10","access_ipv6":"2001:DB8::1"}`))
	f.Add([]byte(`{"name":"x","image":"g","flavor":{"vcpus":1,"memory_mib":64},"access_ipv4":"::ffff:1.2.3.4","access_ipv6":"1.2.3.4"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req api.CreateVMRequest
		if httpx.DecodeBytes(body, &req) != nil {
			return
		}
		if validateCreate(&req) != nil {
			return
		}
		if api.ValidateName("vm", req.Name) != nil || req.Flavor.VCPUs < 1 || req.Flavor.MemoryMiB < MinMemoryMiB ||
			(req.Pool != api.PoolLocal && req.Pool != api.PoolShared) ||
			api.ValidateDisplayText("display_name", req.DisplayName) != nil || api.ValidateDisplayText("description", req.Description) != nil ||
			api.ValidateAccessIP("access_ipv4", req.AccessIPv4, false) != nil || api.ValidateAccessIP("access_ipv6", req.AccessIPv6, true) != nil {
			t.Fatalf("accepted an invalid request: %+v", req)
		}
		// Access addresses are kept in canonical form.
		if req.AccessIPv4 != api.CanonicalAccessIP(req.AccessIPv4) || req.AccessIPv6 != api.CanonicalAccessIP(req.AccessIPv6) {
			t.Fatalf("accepted access addresses %q, %q not in canonical form", req.AccessIPv4, req.AccessIPv6)
		}
	})
}
