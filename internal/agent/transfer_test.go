package agent

import (
	"bytes"
	"context"
	"crypto/rand"
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
	if err := a.download(context.Background(), j, srv.URL, path, int64(len(data))); err != nil {
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
