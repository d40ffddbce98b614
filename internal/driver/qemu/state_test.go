package qemu

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
)

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st := vmState{Version: stateVersion,
		Launch: launch{
			Spec: driver.VMSpec{ID: goldenID, Name: "x", VCPUs: 1, MaxVCPUs: 2, MemoryMiB: 128, Kernel: "/k", Cmdline: "a=b",
				Disk: &driver.Disk{Path: "/d.qcow2", SizeMiB: 64, Backing: "/base.qcow2", Shared: true}, CPUModel: "qemu64"},
			Accel: "tcg", Machine: "pc-q35-7.2", CPUModel: "qemu64", QMP: "/run/x.qmp", Console: "/c.log", PIDFile: "/q.pid",
			Incoming: true, // not persisted: a restart boots normally
		},
		PID: 42, StartedAt: time.Now().UTC().Truncate(time.Microsecond), StopRequested: true, ShutdownSeen: true}
	if err := writeState(dir, st); err != nil {
		t.Fatal(err)
	}
	got, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := st
	want.Launch.Incoming = false
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("state dir holds %d files; want only state.json", len(ents))
	}
	if fi, err := os.Stat(filepath.Join(dir, "state.json")); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("state.json has mode %v; want 0600 (it names the guest's disks and kernel)", fi.Mode().Perm())
	}

	st.Version = 99
	if err := writeState(dir, st); err != nil {
		t.Fatal(err)
	}
	if _, err := readState(dir); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("a state file of an unknown version: %v; want refused", err)
	}
	os.WriteFile(filepath.Join(dir, "state.json"), []byte(`{"version": 1, "pid": `), 0o644)
	if _, err := readState(dir); err == nil {
		t.Error("a truncated state file was accepted")
	}
}

func TestAliveChecksTheUUID(t *testing.T) {
	self := os.Getpid()
	if alive(self, goldenID) {
		t.Error("this test process was taken for the vm's qemu")
	}
	if alive(0, goldenID) || alive(-1, goldenID) {
		t.Error("pid <= 0 is alive")
	}
}

func TestValidate(t *testing.T) {
	ok := driver.VMSpec{ID: goldenID, Name: "a", VCPUs: 1, MemoryMiB: 128}
	if err := validate(ok); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	for name, mutate := range map[string]func(*driver.VMSpec){
		"no vcpus":      func(s *driver.VMSpec) { s.VCPUs = 0 },
		"no memory":     func(s *driver.VMSpec) { s.MemoryMiB = 0 },
		"id not a uuid": func(s *driver.VMSpec) { s.ID = "vm-1" },
		"max below":     func(s *driver.VMSpec) { s.VCPUs, s.MaxVCPUs = 4, 2 },
		"disk sizeless": func(s *driver.VMSpec) { s.Disk = &driver.Disk{Path: "/d.qcow2"} },
		"disk pathless": func(s *driver.VMSpec) { s.Disk = &driver.Disk{SizeMiB: 64} },
	} {
		s := ok
		mutate(&s)
		if err := validate(s); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", name, err)
		}
	}
}
