package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/godwit/godwit/internal/guestlog"
)

// beat is one heartbeat line, stamped with this host's clock when it was
// read from a console log.
type beat struct {
	At      time.Time
	Counter int64
	UpMS    int64 // the guest's own clock: a gap here too means the guest stopped, not its console
}

// worstGap is the longest time between consecutive heartbeats over the
// window [from, to]: every gap that ends after from and starts before to
// counts in full, and when the last heartbeat is older than to, the time
// since it counts too (a guest that never beats again stalls until the
// window ends).
func worstGap(beats []beat, from, to time.Time) time.Duration {
	bs := append([]beat(nil), beats...)
	sort.SliceStable(bs, func(i, j int) bool { return bs[i].At.Before(bs[j].At) })
	var worst time.Duration
	for i := 1; i < len(bs); i++ {
		a, b := bs[i-1].At, bs[i].At
		if b.After(from) && a.Before(to) {
			worst = max(worst, b.Sub(a))
		}
	}
	switch {
	case len(bs) == 0:
		return to.Sub(from)
	case bs[len(bs)-1].At.Before(to):
		last := bs[len(bs)-1].At
		if last.Before(from) {
			last = from // nothing beat inside the window at all
		}
		worst = max(worst, to.Sub(last))
	}
	return worst
}

// rebooted reports whether the heartbeat counter went backwards: the
// guest restarted (a panic resets it, panic=-1).
func rebooted(beats []beat) bool {
	for i := 1; i < len(beats); i++ {
		if beats[i].Counter < beats[i-1].Counter {
			return true
		}
	}
	return false
}

// tailer follows console log files by polling, stamping each new
// heartbeat line as it is read. It follows a migrating VM's source and
// destination consoles at once: the source's from its end at the start,
// the destination's (a new file) from its beginning once it appears.
type tailer struct {
	mu    sync.Mutex
	files []*tailFile
	beats []beat
	text  []byte // everything new read from the files, for oops checks
}

type tailFile struct {
	path    string
	f       *os.File
	off     int64
	partial []byte
}

// follow adds a console log; fromEnd skips what it holds now.
func (t *tailer) follow(path string, fromEnd bool) {
	tf := &tailFile{path: path}
	if fromEnd {
		if st, err := os.Stat(path); err == nil {
			tf.off = st.Size()
		}
	}
	t.mu.Lock()
	t.files = append(t.files, tf)
	t.mu.Unlock()
}

// run polls the files every interval until ctx ends, then closes them.
func (t *tailer) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	defer t.close()
	for {
		t.poll()
		select {
		case <-ctx.Done():
			t.poll()
			return
		case <-tick.C:
		}
	}
}

func (t *tailer) poll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tf := range t.files {
		b := tf.read()
		if len(b) == 0 {
			continue
		}
		now := time.Now()
		t.text = append(t.text, b...)
		data := append(tf.partial, b...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			if hb, ok := guestlog.Parse(string(data[:i])); ok {
				t.beats = append(t.beats, beat{At: now, Counter: hb.Counter, UpMS: hb.UpMS})
			}
			data = data[i+1:]
		}
		tf.partial = append([]byte(nil), data...)
	}
}

// read returns what was appended to the file since the last read. The
// file stays open: a source VM's directory is removed after the move, and
// an open file can still be read to its end.
func (tf *tailFile) read() []byte {
	if tf.f == nil {
		f, err := os.Open(tf.path)
		if err != nil {
			return nil
		}
		tf.f = f
	}
	buf := make([]byte, 64<<10)
	var out []byte
	for {
		n, err := tf.f.ReadAt(buf, tf.off)
		out = append(out, buf[:n]...)
		tf.off += int64(n)
		if err != nil || n < len(buf) {
			if err != nil && !errors.Is(err, io.EOF) {
				tf.f.Close()
				tf.f = nil
			}
			return out
		}
	}
}

func (t *tailer) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tf := range t.files {
		if tf.f != nil {
			tf.f.Close()
			tf.f = nil
		}
	}
}

// snapshot returns the heartbeats and console text read so far.
func (t *tailer) snapshot() ([]beat, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]beat(nil), t.beats...), string(t.text)
}

// beatsSince counts heartbeats read after at.
func (t *tailer) beatsSince(at time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, b := range t.beats {
		if b.At.After(at) {
			n++
		}
	}
	return n
}

// writeTimeline writes a move's heartbeats (kept with -keep): each as the
// host's milliseconds since the move started, the gap since the one
// before, and the guest's own up_ms and its gap. A host gap with an equal
// guest gap is a guest that did not run; a host gap the guest did not
// see is a console that was not written. The console text follows.
func writeTimeline(path string, start, end time.Time, beats []beat, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# move took %d ms\n# host_ms host_gap_ms counter up_ms up_gap_ms\n", end.Sub(start).Milliseconds())
	for i, bt := range beats {
		var hostGap, upGap int64
		if i > 0 {
			hostGap, upGap = bt.At.Sub(beats[i-1].At).Milliseconds(), bt.UpMS-beats[i-1].UpMS
		}
		fmt.Fprintf(&b, "%d %d %d %d %d\n", bt.At.Sub(start).Milliseconds(), hostGap, bt.Counter, bt.UpMS, upGap)
	}
	b.WriteString("# console\n")
	b.WriteString(text)
	return os.WriteFile(path, b.Bytes(), 0o644)
}
