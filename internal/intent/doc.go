// Package intent is godwit's intent level: what users ask for — migrate
// (with or without a kind), drain a host that is up, evacuate one that is
// down, resize or rebuild a VM — planned, recorded, and run as service
// operations. It calls the service level (internal/service) only; the
// controller serves it over HTTP.
package intent
