package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// The TCP stream: each connection to streamPort receives a line
//
//	godwit-stream seq=<n> up_ms=<ms>
//
// every streamTick, n counting from 1, so a client following it through
// a migration sees a gap in seq (lost lines) or a reset connection.
const (
	streamPort     = 7777
	streamTick     = 10 * time.Millisecond
	maxStreamConns = 32
)

// serveStream accepts stream clients on ln until it is closed.
func serveStream(ln net.Listener, start time.Time) {
	var conns atomic.Int64
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(100 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		if conns.Add(1) > maxStreamConns {
			conns.Add(-1)
			c.Close()
			continue
		}
		go func() {
			defer conns.Add(-1)
			defer c.Close()
			stream(c, start)
		}()
	}
}

// stream writes the lines to w until a write fails (the client left;
// accepted connections have TCP keepalive, so a vanished one fails too).
func stream(w io.Writer, start time.Time) {
	tick := time.NewTicker(streamTick)
	defer tick.Stop()
	var buf []byte
	for seq := int64(1); ; seq++ {
		buf = fmt.Appendf(buf[:0], "godwit-stream seq=%d up_ms=%d\n", seq, time.Since(start).Milliseconds())
		if _, err := w.Write(buf); err != nil {
			return
		}
		<-tick.C
	}
}
