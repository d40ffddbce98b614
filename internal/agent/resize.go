package agent

import (
	"net/http"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/httpx"
)

func (a *Agent) resizeRoutes(m *httpx.Routes) {
	m.HandleFunc("POST /v1/vms/{id}/resize", a.resize)
}

// resize changes a VM's size in place: online when it runs, or not at all
// (422 with the reason, nothing changed); in its definition when stopped.
// The driver decides what its hypervisor can do; the reply carries the
// sizes the VM has afterwards, which for a memory shrink may be more than
// asked (its notes say why).
func (a *Agent) resize(w http.ResponseWriter, r *http.Request) {
	rz, ok := a.drv.(driver.Resizer)
	if !ok {
		a.fail(w, r, errs.NotSupported("the %s driver on host %s cannot resize vms; move the vm to a host that can", a.cfg.Driver, a.cfg.Name))
		return
	}
	var req hostapi.ResizeVM
	if err := httpx.Decode(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	res, err := rz.Resize(r.Context(), id, driver.Size{VCPUs: req.VCPUs, MemoryMiB: req.MemoryMiB, DiskMiB: req.DiskMiB,
		MaxVCPUs: req.MaxVCPUs, MaxMemoryMiB: req.MaxMemoryMiB})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	st, err := a.drv.Status(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	s := res.Spec
	rep := hostapi.ResizeReply{
		VCPUs: s.VCPUs, MemoryMiB: s.MemoryMiB, BootMemoryMiB: s.BootMemory(),
		MaxVCPUs: s.CPUCeiling(), MaxMemoryMiB: s.MemoryCeiling(),
		Online: res.Online, Notes: res.Notes, VM: report(st),
	}
	if s.Disk != nil {
		rep.DiskMiB = s.Disk.SizeMiB
	}
	a.log.Info("vm resized", "vm", st.Name, "id", id, "online", res.Online, "vcpus", rep.VCPUs,
		"memory_mib", rep.MemoryMiB, "disk_mib", rep.DiskMiB, "notes", len(rep.Notes))
	httpx.JSON(w, http.StatusOK, rep)
}
