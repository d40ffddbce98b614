package qmp

import (
	"encoding/json"
	"testing"
)

// FuzzDecode feeds arbitrary lines to the decoder and to what the reader
// does with a decoded line. A line may be refused, but nothing may panic,
// only valid JSON may be accepted, and a line is never both an event and a
// reply. Seeds: the f.Add lines below plus testdata/fuzz/FuzzDecode,
// which holds lines captured from QEMU 7.2.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}`,
		`{"return": {}, "id": "1"}`,
		`{"error": {"class": "GenericError", "desc": "x"}, "id": "2"}`,
		`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}`,
		`{"timestamp": {"seconds": -1, "microseconds": -1}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}`,
		`{"event": "RESET", "id": "3"}`,
		`{"return": [1,2`,
		`{"id": 4, "return": {}}`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := decode(line)
		if err != nil {
			return
		}
		if !json.Valid(line) {
			t.Fatalf("accepted invalid JSON %q", line)
		}
		if ev, ok := m.event(); ok {
			if ev.Name == "" {
				t.Fatal("an event without a name")
			}
			if !ev.Timestamp.IsZero() && ev.Timestamp.Unix() < 0 {
				t.Fatalf("negative timestamp %v from %q", ev.Timestamp, line)
			}
			return
		}
		var out any
		err = m.result("cmd", &out)
		if m.Error != nil {
			if e, ok := err.(*Error); !ok || e != m.Error || e.Error() == "" {
				t.Fatalf("a QMP error came back as %v", err)
			}
		}
	})
}
