package agent

import (
	"testing"

	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/httpx/httpxtest"
)

// requestBodies lists every body the agent decodes (each validates
// itself: httpx.Decode calls its Validate), and the controller's
// heartbeat reply, whose IDs name files here too. Append only: an
// entry's index is the first byte of its corpus inputs.
var requestBodies = []httpxtest.Body{
	httpxtest.Of[hostapi.CreateVM](nil),
	httpxtest.Of[hostapi.StopVM](nil),
	httpxtest.Of[hostapi.ShutdownRequest](nil),
	httpxtest.Of[hostapi.MigrateOut](nil),
	httpxtest.Of[hostapi.ResizeVM](nil),
	httpxtest.Of[hostapi.ImportDisk](nil),
	httpxtest.Of[hostapi.HeartbeatReply](nil),
	httpxtest.Of[hostapi.TransferGrant](nil),
}

// FuzzRequestBody feeds arbitrary bodies to the decoder and validator of
// each body the agent takes (the first byte picks it): refusals are
// errs.Invalid, nothing panics, and what is accepted survives the JSON
// round trip and validates again.
func FuzzRequestBody(f *testing.F) { httpxtest.FuzzBodies(f, requestBodies) }

// TestRequestBodiesFuzzed fails when a handler decodes a body type that
// requestBodies lacks: the decoded types come from type-checking this
// package (httpxtest.DecodedTypes, every value given to httpx.Decode or
// DecodeBytes), so a new route cannot skip the fuzzer.
func TestRequestBodiesFuzzed(t *testing.T) {
	decoded := httpxtest.DecodedTypes(t, ".")
	if len(decoded) < 5 {
		t.Fatalf("found only %d decoded types (%v): the search is broken", len(decoded), decoded)
	}
	for _, m := range httpxtest.Missing(decoded, requestBodies) {
		t.Errorf("the agent decodes %s, which FuzzRequestBody does not fuzz: add it to requestBodies", m)
	}
}
