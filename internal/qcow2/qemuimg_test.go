package qcow2

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// qemuImg runs qemu-img, skipping the test when it is not installed.
func qemuImg(t *testing.T, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img is not installed (apt install qemu-utils); the hand-built headers of TestCheck cover the same cases")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

func checkFile(t *testing.T, path string) error {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Check(f)
}

// Images qemu-img makes: Check takes the plain ones and refuses those
// that name another file, and Read agrees with qemu-img info.
func TestQemuImgImages(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, tt := range []struct {
		name   string
		create []string // qemu-img create arguments before the file and size
		msg    string   // "" when Check accepts it
	}{
		{"plain", []string{"-f", "qcow2"}, ""},
		{"version 2", []string{"-f", "qcow2", "-o", "compat=0.10"}, ""},
		{"zstd", []string{"-f", "qcow2", "-o", "compression_type=zstd"}, ""},
		{"extended l2", []string{"-f", "qcow2", "-o", "extended_l2=on"}, ""},
		{"lazy refcounts", []string{"-f", "qcow2", "-o", "lazy_refcounts=on"}, ""},
		{"small clusters", []string{"-f", "qcow2", "-o", "cluster_size=512"}, ""},
		{"backing file", []string{"-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", "-u"}, `names a backing file ("/etc/passwd")`},
		{"data file", []string{"-f", "qcow2", "-o", "data_file=" + p("data.raw")}, "external file (\"" + p("data.raw") + "\")"},
		{"raw data file", []string{"-f", "qcow2", "-o", "data_file=" + p("data2.raw") + ",data_file_raw=on"}, "external file"},
		{"encrypted", []string{"--object", "secret,id=s0,data=pw", "-f", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10"}, "encrypted (LUKS)"},
		{"raw", []string{"-f", "raw"}, "not qcow2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := p(strings.ReplaceAll(tt.name, " ", "-") + ".img")
			qemuImg(t, append(append([]string{"create", "-q"}, tt.create...), path, "64M")...)
			err := checkFile(t, path)
			switch {
			case tt.msg == "" && err != nil:
				t.Fatalf("Check = %v; want nil", err)
			case tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)):
				t.Fatalf("Check = %v; want an error containing %q", err, tt.msg)
			case tt.msg != "":
				return
			}
			var info struct {
				VirtualSize uint64 `json:"virtual-size"`
				ClusterSize uint64 `json:"cluster-size"`
				Specific    struct {
					Data struct {
						Compat          string `json:"compat"`
						CompressionType string `json:"compression-type"`
						ExtendedL2      bool   `json:"extended-l2"`
						LazyRefcounts   bool   `json:"lazy-refcounts"`
					} `json:"data"`
				} `json:"format-specific"`
			}
			if err := json.Unmarshal(qemuImg(t, "info", "--output=json", path), &info); err != nil {
				t.Fatal(err)
			}
			f, _ := os.Open(path)
			defer f.Close()
			h, err := Read(f)
			if err != nil {
				t.Fatal(err)
			}
			d := info.Specific.Data
			wantVersion := uint32(3)
			if d.Compat == "0.10" {
				wantVersion = 2
			}
			wantCompression := uint8(CompressionZlib)
			if d.CompressionType == "zstd" {
				wantCompression = CompressionZstd
			}
			if h.Version != wantVersion || h.VirtualSize != info.VirtualSize || h.ClusterSize() != info.ClusterSize ||
				h.CompressionType != wantCompression || (h.IncompatibleFeatures&IncompatExtendedL2 != 0) != d.ExtendedL2 ||
				(h.CompatibleFeatures&1 != 0) != d.LazyRefcounts {
				t.Errorf("Read = %+v; qemu-img info says %+v", h, info)
			}
			// QEMU leaves the table out where it does not fit a cluster.
			if h.Version == 3 && h.ClusterBits >= 12 && len(h.FeatureNames) == 0 {
				t.Errorf("no feature name table read from a version 3 image: %+v", h)
			}
		})
	}
}
