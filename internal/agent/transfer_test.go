package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/driver"
	"github.com/godwit/godwit/internal/errs"
	"github.com/godwit/godwit/internal/hostapi"
)

// A disk transfer whose connection breaks mid-way resumes where it
// stopped (HTTP Range) and ends with the whole file.
func TestDownloadResumesAfterBrokenConnection(t *testing.T) {
	data := make([]byte, 3<<20)
	rand.Read(data)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		if n == 1 {
			// First connection: send a third, then cut it.
			w.Header().Set("Content-Length", "3145728")
			w.WriteHeader(http.StatusOK)
			w.Write(data[:1<<20])
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		if !strings.HasPrefix(r.Header.Get("Range"), "bytes=1048576-") {
			t.Errorf("resume asked for %q; want bytes=1048576-", r.Header.Get("Range"))
		}
		http.ServeContent(w, r, "disk", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	a := &Agent{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	j := &importJob{}
	path := filepath.Join(t.TempDir(), "disk.part")
	if err := a.download(context.Background(), j, srv.Client(), srv.URL, path, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, data) {
		t.Fatalf("resumed copy differs from the source (%d bytes of %d)", len(got), len(data))
	}
	if j.st.Attempts != 2 || j.st.Transferred != int64(len(data)) {
		t.Errorf("status after resume = %+v; want 2 attempts, all bytes", j.st)
	}
}

// A stopped VM's disk is served only with the token the controller
// granted for it, until the grant is revoked or the VM starts; a grant's
// body is checked (400).
func TestDiskReadNeedsGrant(t *testing.T) {
	d, _ := fakeWithVM(t)
	ctx := context.Background()
	if err := d.Stop(ctx, resizeID, driver.StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	st, _ := d.Status(ctx, resizeID)
	if err := os.WriteFile(st.Spec.Disk.Path, []byte("the guest's data"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, base := resizeAgentWith(t, d)
	c := hostapi.NewAgent(base, 10*time.Second)
	read := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/vms/"+resizeID+"/disk", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tok := hostapi.NewTransferToken()
	if got := read(tok); got != http.StatusForbidden {
		t.Errorf("a read before any grant: %d; want 403", got)
	}
	if err := c.GrantDiskTransfer(ctx, resizeID, hostapi.TransferGrant{Token: "short", TTLSeconds: 60}); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("a grant with a malformed token: %v; want 400", err)
	}
	if err := c.GrantDiskTransfer(ctx, resizeID, hostapi.TransferGrant{Token: tok, TTLSeconds: 60}); err != nil {
		t.Fatal(err)
	}
	if got := read(""); got != http.StatusForbidden {
		t.Errorf("a read without a token: %d; want 403", got)
	}
	if got := read(hostapi.NewTransferToken()); got != http.StatusForbidden {
		t.Errorf("a read with another token: %d; want 403", got)
	}
	if got := read(tok); got != http.StatusOK {
		t.Errorf("a read with the granted token: %d; want 200", got)
	}
	if got := read(tok); got != http.StatusOK {
		t.Errorf("a second read (a resumed transfer) with the granted token: %d; want 200", got)
	}
	if err := c.RevokeDiskTransfer(ctx, resizeID); err != nil {
		t.Fatal(err)
	}
	if got := read(tok); got != http.StatusForbidden {
		t.Errorf("a read after the revocation: %d; want 403", got)
	}
	// A start drops a grant: the disk changes from then on.
	if err := c.GrantDiskTransfer(ctx, resizeID, hostapi.TransferGrant{Token: tok, TTLSeconds: 60}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Action(ctx, resizeID, "start"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stop(ctx, resizeID, hostapi.StopVM{Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := read(tok); got != http.StatusForbidden {
		t.Errorf("a read after the vm started and stopped again: %d; want 403", got)
	}
}

// Grants outlive a restart of the agent (a transfer resumes after one),
// and what is written of them is the token's hash, never the token.
func TestGrantsSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), grantsFile)
	tok := hostapi.NewTransferToken()
	var before grants
	if err := before.load(path); err != nil {
		t.Fatal(err)
	}
	if err := before.put(resizeID, tok, time.Minute); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), tok) {
		t.Errorf("the token is written in %s", path)
	}
	var after grants
	if err := after.load(path); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if err := after.check(req, resizeID); err != nil {
		t.Errorf("the grant after a restart: %v", err)
	}
	if err := after.drop(resizeID); err != nil {
		t.Fatal(err)
	}
	var third grants
	third.load(path)
	if err := third.check(req, resizeID); !errors.Is(err, errs.ErrForbidden) {
		t.Errorf("a revoked grant after a restart: %v; want 403", err)
	}
}
