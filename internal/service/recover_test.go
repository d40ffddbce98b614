package service

import "testing"

// Recovery moves a live migration forward only when its source holds the
// guest paused after sending everything: a source whose guest runs again
// (a rollback resumed it after a cancel that came too late) is the vm,
// and a VM that arrived by migration itself reports "completed" with
// nothing sent.
func TestHandedOver(t *testing.T) {
	for _, tt := range []struct {
		name string
		src  facts
		want bool
	}{
		{"sent everything, paused", facts{has: true, state: "paused", mig: "completed", sent: 1 << 20}, true},
		{"sent everything, resumed by a rollback", facts{has: true, state: "running", mig: "completed", sent: 1 << 20}, false},
		{"still sending", facts{has: true, state: "running", mig: "active", sent: 1 << 20}, false},
		{"arrived by migration itself", facts{has: true, state: "paused", mig: "completed"}, false},
		{"gone", facts{}, false},
	} {
		if got := handedOver(tt.src); got != tt.want {
			t.Errorf("%s: handedOver = %v; want %v", tt.name, got, tt.want)
		}
	}
}
