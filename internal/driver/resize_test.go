package driver

import (
	"errors"
	"testing"

	"github.com/godwit/godwit/internal/errs"
)

func TestPlanResize(t *testing.T) {
	// 2 of 4 vCPUs; 512 MiB of 1024, booted with 256; a 1 GiB disk.
	cur := VMSpec{ID: "vm", VCPUs: 2, MaxVCPUs: 4, MemoryMiB: 512, MaxMemoryMiB: 1024, BootMemoryMiB: 256, Disk: &Disk{SizeMiB: 1024}}
	type sizes struct{ vcpus, maxVCPUs, mem, maxMem, boot, disk int }
	of := func(s VMSpec) sizes {
		return sizes{s.VCPUs, s.CPUCeiling(), s.MemoryMiB, s.MemoryCeiling(), s.BootMemory(), s.Disk.SizeMiB}
	}
	for _, tt := range []struct {
		name      string
		running   bool
		cpuUnplug bool
		to        Size
		want      sizes
		err       error
	}{
		{"nothing asked", true, false, Size{}, sizes{2, 4, 512, 1024, 256, 1024}, nil},
		{"online grow", true, false, Size{VCPUs: 4, MemoryMiB: 1024, DiskMiB: 2048}, sizes{4, 4, 1024, 1024, 256, 2048}, nil},
		{"online memory down to boot", true, false, Size{MemoryMiB: 256}, sizes{2, 4, 256, 1024, 256, 1024}, nil},
		{"online vcpu unplug where allowed", true, true, Size{VCPUs: 1}, sizes{1, 4, 512, 1024, 256, 1024}, nil},
		{"online vcpu unplug where not", true, false, Size{VCPUs: 1}, sizes{}, errs.ErrNotSupported},
		{"online above the vcpu ceiling", true, true, Size{VCPUs: 5}, sizes{}, errs.ErrNotSupported},
		{"online above the memory ceiling", true, true, Size{MemoryMiB: 1026}, sizes{}, errs.ErrNotSupported},
		{"online below the boot memory", true, true, Size{MemoryMiB: 254}, sizes{}, errs.ErrNotSupported},
		{"online odd MiB of hot-plugged memory", true, true, Size{MemoryMiB: 511}, sizes{}, errs.ErrInvalid},
		{"online ceiling change", true, true, Size{MaxVCPUs: 8}, sizes{}, errs.ErrNotSupported},
		{"online ceiling as it is", true, true, Size{MaxVCPUs: 4}, sizes{2, 4, 512, 1024, 256, 1024}, nil},
		{"disk shrink online", true, true, Size{DiskMiB: 512}, sizes{}, errs.ErrInvalid},
		{"disk shrink stopped", false, true, Size{DiskMiB: 512}, sizes{}, errs.ErrInvalid},
		{"negative", false, true, Size{MemoryMiB: -1}, sizes{}, errs.ErrInvalid},
		{"stopped: boot memory becomes the memory", false, false, Size{MemoryMiB: 300}, sizes{2, 4, 300, 1024, 300, 1024}, nil},
		{"stopped: ceilings rise", false, false, Size{VCPUs: 6, MemoryMiB: 2048, MaxVCPUs: 8}, sizes{6, 8, 2048, 2048, 2048, 1024}, nil},
		{"stopped: ceiling below the size", false, false, Size{VCPUs: 6, MaxVCPUs: 5}, sizes{}, errs.ErrInvalid},
		{"stopped: vcpus down without unplug", false, false, Size{VCPUs: 1}, sizes{1, 4, 512, 1024, 512, 1024}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PlanResize(cur, tt.running, tt.cpuUnplug, tt.to)
			switch {
			case tt.err != nil && !errors.Is(err, tt.err):
				t.Errorf("err = %v; want %v", err, tt.err)
			case tt.err == nil && err != nil:
				t.Errorf("err = %v", err)
			case tt.err == nil && of(got) != tt.want:
				t.Errorf("planned %+v; want %+v", of(got), tt.want)
			}
			if cur.Disk.SizeMiB != 1024 {
				t.Fatal("PlanResize changed the current spec's disk")
			}
		})
	}
}

func TestCheckSizes(t *testing.T) {
	for _, tt := range []struct {
		s  VMSpec
		ok bool
	}{
		{VMSpec{VCPUs: 1, MemoryMiB: 128}, true},
		{VMSpec{VCPUs: 1, MemoryMiB: 128, MaxMemoryMiB: 1024}, true},
		{VMSpec{VCPUs: 1, MemoryMiB: 129, MaxMemoryMiB: 1024, BootMemoryMiB: 128}, false},
		{VMSpec{VCPUs: 1, MemoryMiB: 128, MaxMemoryMiB: 1023}, false},
		{VMSpec{VCPUs: 2, MaxVCPUs: 1, MemoryMiB: 128}, false},
		{VMSpec{VCPUs: 1, MemoryMiB: 128, BootMemoryMiB: 256}, false},
		{VMSpec{VCPUs: 1, MemoryMiB: 256, MaxMemoryMiB: 128}, false},
	} {
		if err := CheckSizes(tt.s); (err == nil) != tt.ok {
			t.Errorf("CheckSizes(%+v) = %v; want ok %v", tt.s, err, tt.ok)
		}
	}
}
