package qmp

import "testing"

// FuzzDecode feeds arbitrary lines to the message decoder: it may refuse
// them but must never panic.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}`,
		`{"return": {}, "id": "1"}`,
		`{"error": {"class": "GenericError", "desc": "x"}, "id": "2"}`,
		`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}`,
		`{"return": [1,2`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := decode(line)
		if err == nil && m.Error != nil && m.Error.Error() == "" {
			t.Fatal("empty error text")
		}
	})
}
