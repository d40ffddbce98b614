package netprobe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StreamTick is how often the test guest writes a stream line.
const StreamTick = 10 * time.Millisecond

// StreamResult is what Follow saw.
type StreamResult struct {
	Lines   int // lines read before the context ended
	LastSeq int // the last line's seq

	// LongestGap is the longest time between two consecutive lines;
	// GapStart is when it began (the line before it). Both are zero with
	// fewer than two lines.
	LongestGap time.Duration
	GapStart   time.Time
	// SinceLastLine is the time from the last line (or, with none, from
	// the connect) to the end: a stall still going on when the probe
	// ended shows here, not in LongestGap.
	SinceLastLine time.Duration

	Survived  bool   // still open and reading when the context ended
	Err       string // why it ended early ("" when it survived)
	SeqBroken bool   // a line's seq was not the previous + 1 (the first's not 1)
}

// String is a one-line summary, e.g. "stream: 1890 lines, survived,
// longest gap 74ms" or "stream: broken after 512 lines: connection reset".
func (r StreamResult) String() string {
	var b strings.Builder
	if r.Survived {
		fmt.Fprintf(&b, "stream: %s, survived", count(r.Lines, "line", "lines"))
	} else {
		fmt.Fprintf(&b, "stream: broken after %s", count(r.Lines, "line", "lines"))
	}
	if r.SeqBroken {
		b.WriteString(", seq broken")
	}
	if r.Lines > 1 {
		fmt.Fprintf(&b, ", longest gap %s", ms(r.LongestGap))
	}
	if r.Survived && r.SinceLastLine > r.LongestGap && r.SinceLastLine > 2*StreamTick {
		fmt.Fprintf(&b, ", no line for the last %s", ms(r.SinceLastLine))
	}
	if !r.Survived {
		fmt.Fprintf(&b, ": %s", r.Err)
	}
	return b.String()
}

// Follow connects to addr (host:port) and reads the test guest's stream
// lines, "godwit-stream seq=N up_ms=M", until ctx is done or the
// connection ends. It returns an error only when the connect fails; a
// connection that ends early, or a line that is not a stream line, is
// reported in the result (Survived false, Err why). Lines that arrive
// after ctx is done do not count.
func Follow(ctx context.Context, addr string) (StreamResult, error) {
	var res StreamResult
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		res.Err = err.Error()
		return res, fmt.Errorf("follow %s: %w", addr, err)
	}
	defer conn.Close()
	start := time.Now()
	// The end of ctx wakes the blocked read: a deadline in the past.
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	br := bufio.NewReaderSize(conn, 4096)
	var last time.Time
	for {
		line, err := br.ReadSlice('\n')
		now := time.Now()
		if ctx.Err() != nil {
			res.Survived = true
			break
		}
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				res.Err = fmt.Sprintf("not a stream line: %q...", truncate(line))
			} else {
				res.Err = describe(err)
			}
			break
		}
		seq, ok := parseStreamLine(line)
		if !ok {
			res.Err = fmt.Sprintf("not a stream line: %q", truncate(line))
			break
		}
		if seq != res.LastSeq+1 {
			res.SeqBroken = true
		}
		res.LastSeq = seq
		res.Lines++
		if !last.IsZero() {
			if gap := now.Sub(last); gap > res.LongestGap {
				res.LongestGap, res.GapStart = gap, last
			}
		}
		last = now
	}
	if last.IsZero() {
		last = start
	}
	res.SinceLastLine = time.Since(last)
	return res, nil
}

// parseStreamLine returns the seq of "godwit-stream seq=N up_ms=M\n".
func parseStreamLine(line []byte) (seq int, ok bool) {
	rest, ok := bytes.CutPrefix(line, []byte("godwit-stream seq="))
	if !ok {
		return 0, false
	}
	seqText, rest, ok := bytes.Cut(rest, []byte(" up_ms="))
	if !ok {
		return 0, false
	}
	upText, ok := bytes.CutSuffix(rest, []byte("\n"))
	if !ok {
		return 0, false
	}
	seq, err := strconv.Atoi(string(seqText))
	if err != nil || seq < 0 {
		return 0, false
	}
	if up, err := strconv.ParseInt(string(upText), 10, 64); err != nil || up < 0 {
		return 0, false
	}
	return seq, true
}

// describe says briefly why a connection ended.
func describe(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "connection closed by the peer"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ETIMEDOUT):
		return "connection timed out"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "read deadline exceeded"
	}
	return err.Error()
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
