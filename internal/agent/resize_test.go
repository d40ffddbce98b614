package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/driver/fake"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
)

const resizeID = "3b9e4c1a-0000-4000-8000-0000000000aa"

// resizeAgent serves an agent over drv and returns its client.
func resizeAgent(t *testing.T, drv driver.Driver) (*hostapi.Agent, string) {
	t.Helper()
	_, url := resizeAgentWith(t, drv)
	return hostapi.NewAgent(url, 10*time.Second), url
}

// resizeAgentWith serves an agent over drv and returns it and its URL.
func resizeAgentWith(t *testing.T, drv driver.Driver) (*Agent, string) {
	t.Helper()
	a := &Agent{cfg: Config{Name: "h1", Driver: "fake", StateDir: t.TempDir()}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), drv: drv,
		imports: map[string]*importJob{}}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return a, srv.URL
}

// fakeWithVM is a fake driver running one VM: 1 of 2 vCPUs, 256 of
// 1024 MiB, a 1 GiB disk, and a guest working set (dirty_mb=300) that
// keeps 108 MiB of hot-plugged memory in use once it has it.
func fakeWithVM(t *testing.T) (*fake.Driver, int) {
	t.Helper()
	d, err := fake.New(fake.Config{StateDir: t.TempDir(), BootDelay: time.Millisecond, HeartbeatHz: 20,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx := context.Background()
	spec := driver.VMSpec{ID: resizeID, Name: "r", VCPUs: 1, MaxVCPUs: 2, MemoryMiB: 256, MaxMemoryMiB: 1024,
		Cmdline: "console=ttyS0 dirty_mb=300", Disk: &driver.Disk{Path: filepath.Join(t.TempDir(), "r.qcow2"), SizeMiB: 1024}}
	if err := d.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, resizeID); err != nil {
		t.Fatal(err)
	}
	st, err := d.Status(ctx, resizeID)
	if err != nil {
		t.Fatal(err)
	}
	return d, st.PID
}

// The handler answers with the sizes the VM has and its report; a running
// VM keeps its process; memory shrinks only as far as the guest lets it,
// with a note; a stopped VM takes new ceilings and boot memory.
func TestResizeHandlerReplies(t *testing.T) {
	d, pid := fakeWithVM(t)
	c, _ := resizeAgent(t, d)
	ctx := context.Background()

	rep, err := c.Resize(ctx, resizeID, hostapi.ResizeVM{VCPUs: 2, MemoryMiB: 512, DiskMiB: 2048})
	if err != nil {
		t.Fatal(err)
	}
	want := hostapi.ResizeReply{VCPUs: 2, MemoryMiB: 512, DiskMiB: 2048, BootMemoryMiB: 256, MaxVCPUs: 2, MaxMemoryMiB: 1024, Online: true,
		VM: hostapi.VMReport{ID: resizeID, Name: "r", State: "running", PID: pid}}
	if !sameReply(rep, want) {
		t.Errorf("grow online:\n got %+v\nwant %+v", rep, want)
	}

	rep, err = c.Resize(ctx, resizeID, hostapi.ResizeVM{MemoryMiB: 256})
	if err != nil {
		t.Fatal(err)
	}
	want.MemoryMiB = 364 // 108 MiB of the hot-plugged memory in use
	if !sameReply(rep, want) || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "released only 148 of 256 MiB") {
		t.Errorf("shrink online:\n got %+v\nwant %+v with a note on what the guest kept", rep, want)
	}

	if err := d.Stop(ctx, resizeID, driver.StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	rep, err = c.Resize(ctx, resizeID, hostapi.ResizeVM{VCPUs: 3, MemoryMiB: 384, MaxVCPUs: 4})
	if err != nil {
		t.Fatal(err)
	}
	want = hostapi.ResizeReply{VCPUs: 3, MemoryMiB: 384, DiskMiB: 2048, BootMemoryMiB: 384, MaxVCPUs: 4, MaxMemoryMiB: 1024,
		VM: hostapi.VMReport{ID: resizeID, Name: "r", State: "stopped"}}
	if !sameReply(rep, want) || len(rep.Notes) != 0 {
		t.Errorf("resize stopped:\n got %+v\nwant %+v", rep, want)
	}
}

func sameReply(a, b hostapi.ResizeReply) bool {
	a.Notes, b.Notes = nil, nil
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// Refusals carry the status and code the controller maps back to the
// sentinels, and a message saying what to do; none changes the VM.
func TestResizeHandlerRefusals(t *testing.T) {
	d, pid := fakeWithVM(t)
	c, base := resizeAgent(t, d)
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		id     string
		body   string
		status int
		sent   error
		says   string
	}{
		{"vcpus above the ceiling", resizeID, `{"vcpus":3}`, http.StatusUnprocessableEntity, errs.ErrNotSupported, "--allow-restart"},
		{"memory above the ceiling", resizeID, `{"memory_mib":2048}`, http.StatusUnprocessableEntity, errs.ErrNotSupported, "max memory"},
		{"memory below the boot memory", resizeID, `{"memory_mib":128}`, http.StatusUnprocessableEntity, errs.ErrNotSupported, "booted with"},
		{"a ceiling while running", resizeID, `{"max_memory_mib":2048}`, http.StatusUnprocessableEntity, errs.ErrNotSupported, "stopped"},
		{"disk shrink", resizeID, `{"disk_mib":512}`, http.StatusBadRequest, errs.ErrInvalid, "only grow"},
		{"unknown field", resizeID, `{"cpus":2}`, http.StatusBadRequest, errs.ErrInvalid, "unknown field"},
		{"unknown vm", "3b9e4c1a-0000-4000-8000-000000000999", `{"vcpus":2}`, http.StatusNotFound, errs.ErrNotFound, "not found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(base+"/v1/vms/"+tt.id+"/resize", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e api.Error
			_ = json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tt.status || !strings.Contains(e.Message, tt.says) {
				t.Errorf("status %d, %q; want %d saying %q", resp.StatusCode, e.Message, tt.status, tt.says)
			}
			var req hostapi.ResizeVM
			dec := json.NewDecoder(strings.NewReader(tt.body))
			dec.DisallowUnknownFields()
			if dec.Decode(&req) == nil { // the same through the client
				if _, err := c.Resize(ctx, tt.id, req); !errors.Is(err, tt.sent) {
					t.Errorf("client error %v; want %v", err, tt.sent)
				}
			}
			st, err := d.Status(ctx, resizeID)
			if err != nil {
				t.Fatal(err)
			}
			if s := st.Spec; s.VCPUs != 1 || s.MemoryMiB != 256 || s.Disk.SizeMiB != 1024 || s.CPUCeiling() != 2 || s.MemoryCeiling() != 1024 || st.PID != pid {
				t.Errorf("refused resize changed the vm: %+v pid %d", s, st.PID)
			}
		})
	}
}

// A driver without resize support answers 422, naming the host.
func TestResizeWithoutResizer(t *testing.T) {
	d, _ := fakeWithVM(t)
	c, _ := resizeAgent(t, struct{ driver.Driver }{d})
	_, err := c.Resize(context.Background(), resizeID, hostapi.ResizeVM{VCPUs: 2})
	if !errors.Is(err, errs.ErrNotSupported) || !strings.Contains(err.Error(), "h1") {
		t.Errorf("resize on a driver without Resizer: %v; want not supported, naming host h1", err)
	}
}
