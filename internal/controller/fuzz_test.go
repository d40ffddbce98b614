package controller_test

import (
	"testing"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/httpx/httpxtest"
	"github.com/godwit/godwit/internal/service"
	"github.com/godwit/godwit/internal/sshkey"
)

// requestBodies lists every body the controller decodes, each with the
// checks its handler makes next where they are exported. Append only: an
// entry's index is the first byte of its corpus inputs.
var requestBodies = []httpxtest.Body{
	httpxtest.Of[api.CreateVMRequest](nil), // validated in the service: FuzzCreateVMRequest
	httpxtest.Of[api.VMActionRequest](nil),
	httpxtest.Of(func(r *api.MigrateRequest) error {
		if err := r.Normalize(); err != nil {
			return errs.Invalid("%v", err)
		}
		return service.ValidateMigrate(*r)
	}),
	httpxtest.Of[api.CreateNetworkRequest](nil),
	httpxtest.Of[api.ClusterSettingsUpdate](nil),
	httpxtest.Of[api.CancelIntentRequest](nil),
	httpxtest.Of(func(r *api.DrainRequest) error {
		if err := r.Normalize(); err != nil {
			return errs.Invalid("%v", err)
		}
		return nil
	}),
	httpxtest.Of[api.EvacuateRequest](nil),
	httpxtest.Of[api.ResizeRequest](nil),
	httpxtest.Of[api.RebuildRequest](nil),
	httpxtest.Of[api.JoinTokenRequest](nil),
	httpxtest.Of[api.ImportImageMeta](nil),
	httpxtest.Of[hostapi.Heartbeat](nil),
	httpxtest.Of[hostapi.JoinRequest](nil),
	httpxtest.Of[api.CreateTokenRequest](nil),
	httpxtest.Of[api.Quota](nil),
	httpxtest.Of(func(r *api.CreateFlavorRequest) error {
		if err := r.Validate(); err != nil {
			return errs.Invalid("%v", err)
		}
		return nil
	}),
	httpxtest.Of(func(r *api.UpdateVMRequest) error {
		if err := r.Validate(); err != nil {
			return errs.Invalid("%v", err)
		}
		return nil
	}),
	httpxtest.Of(func(r *api.CreateKeyPairRequest) error {
		if err := api.ValidateKeyPairName(r.Name); err != nil {
			return errs.Invalid("%v", err)
		}
		if r.PublicKey != "" {
			if _, err := sshkey.Parse(r.PublicKey); err != nil {
				return errs.Invalid("%v", err)
			}
		}
		return nil
	}),
	httpxtest.Of[api.LockVMRequest](nil), // validated in the service
}

// FuzzRequestBody feeds arbitrary bodies to the decoder of each body the
// controller takes (the first byte picks it): refusals are errs.Invalid,
// nothing panics, and what is accepted survives the JSON round trip.
func FuzzRequestBody(f *testing.F) { httpxtest.FuzzBodies(f, requestBodies) }

// TestRequestBodiesFuzzed fails when a handler decodes a body type that
// requestBodies lacks. The list of decoded types comes from type-checking
// this package (httpxtest.DecodedTypes): every value given to
// httpx.Decode or DecodeBytes, and every type argument of the generic
// handlers (call, decode, intentKind) that reaches one — so a new route,
// whatever its form, cannot skip the fuzzer.
func TestRequestBodiesFuzzed(t *testing.T) {
	decoded := httpxtest.DecodedTypes(t, ".")
	if len(decoded) < 10 {
		t.Fatalf("found only %d decoded types (%v): the search is broken", len(decoded), decoded)
	}
	for _, m := range httpxtest.Missing(decoded, requestBodies) {
		t.Errorf("the controller decodes %s, which FuzzRequestBody does not fuzz: add it to requestBodies", m)
	}
}
