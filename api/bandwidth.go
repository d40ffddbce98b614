package api

import (
	"encoding/json"
	"fmt"
)

// MB is a megabyte, 10^6 bytes: the unit of every bandwidth cap in this
// API (the fields named BandwidthMBPerS, JSON bandwidth_mb_per_s).
//
// The unit is in the name because the old one, bandwidth_mbps, reads as
// megabits a second — what "Mbps" means on a network link — while it
// always meant megabytes: a cap of 125 is 125 MB/s, a 1 Gbit/s link's
// worth. Rates in godwit are decimal, as QEMU reports them and the CLI
// prints them; sizes are binary (MiB). When no cap is set the driver's
// applies: QEMU's is 128 MiB/s, about 134 MB/s.
//
// Clients and records from before the rename use bandwidth_mbps. The
// request bodies, decoded strictly (unknown fields refused), keep it as
// a deprecated field (MigrateRequest.BandwidthMBps,
// DrainRequest.BandwidthMBps) that the controller folds into the new one
// (Normalize); the records, Migration and IntentParams, take it on input
// when bandwidth_mb_per_s is absent. Only the new name is written.
const MB = 1_000_000

// oldBandwidth is the bandwidth cap under its old JSON name.
type oldBandwidth struct {
	MBps int `json:"bandwidth_mbps,omitempty"`
}

// or returns mbPerS, or else the cap under the old name.
func (o oldBandwidth) or(mbPerS int) int {
	if mbPerS != 0 {
		return mbPerS
	}
	return o.MBps
}

// foldBandwidth moves a cap sent under the deprecated name into the
// current field, refusing two different caps.
func foldBandwidth(mbPerS, old *int) error {
	switch {
	case *old == 0:
	case *mbPerS == 0 || *mbPerS == *old:
		*mbPerS = *old
	default:
		return fmt.Errorf("bandwidth_mbps (%d) is the old name of bandwidth_mb_per_s (%d): send one", *old, *mbPerS)
	}
	*old = 0
	return nil
}

// Normalize moves what the request carries under deprecated names into
// the current fields (BandwidthMBps into BandwidthMBPerS); it fails when
// both are set and differ.
func (r *MigrateRequest) Normalize() error {
	return foldBandwidth(&r.BandwidthMBPerS, &r.BandwidthMBps)
}

// Normalize moves what the request carries under deprecated names into
// the current fields (BandwidthMBps into BandwidthMBPerS); it fails when
// both are set and differ.
func (r *DrainRequest) Normalize() error {
	return foldBandwidth(&r.BandwidthMBPerS, &r.BandwidthMBps)
}

// UnmarshalJSON decodes an intent's parameters, taking the bandwidth cap
// under its old name, bandwidth_mbps, when the new one is absent (intents
// stored before the rename, or from an older controller).
func (p *IntentParams) UnmarshalJSON(b []byte) error {
	type plain IntentParams
	v := struct {
		*plain
		oldBandwidth
	}{plain: (*plain)(p)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	p.BandwidthMBPerS = v.or(p.BandwidthMBPerS)
	return nil
}

// UnmarshalJSON decodes a migration record, taking the bandwidth cap
// under its old name, bandwidth_mbps, when the new one is absent
// (migrations stored before the rename, or from an older controller).
func (m *Migration) UnmarshalJSON(b []byte) error {
	type plain Migration
	v := struct {
		*plain
		oldBandwidth
	}{plain: (*plain)(m)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	m.BandwidthMBPerS = v.or(m.BandwidthMBPerS)
	return nil
}
