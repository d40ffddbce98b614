package service

import "testing"

// A live move's source handed its guest over when its migration completed
// with memory sent; a VM that arrived by migration itself reports
// "completed" with nothing sent.
func TestHandedOver(t *testing.T) {
	for _, tt := range []struct {
		name string
		src  facts
		want bool
	}{
		{"sent everything, paused", facts{has: true, state: "paused", mig: "completed", sent: 1 << 20}, true},
		{"sent everything, QEMU's process running", facts{has: true, state: "running", mig: "completed", sent: 1 << 20}, true},
		{"still sending", facts{has: true, state: "running", mig: "active", sent: 1 << 20}, false},
		{"arrived by migration itself", facts{has: true, state: "paused", mig: "completed"}, false},
		{"gone", facts{}, false},
	} {
		if got := handedOver(tt.src); got != tt.want {
			t.Errorf("%s: handedOver = %v; want %v", tt.name, got, tt.want)
		}
	}
}
