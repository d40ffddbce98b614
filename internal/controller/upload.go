package controller

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/godwit/godwit/internal/errs"
)

// uploadBody is an upload's body, at most limit bytes in all, whose every
// read must bring data within idle: a client that stalls is cut off
// rather than holding a connection and a half-written file forever. Its
// errors say which limit was hit (errs.ErrTooLarge, errs.ErrInvalid).
func uploadBody(w http.ResponseWriter, r *http.Request, limit int64, tooLarge error, idle time.Duration) io.Reader {
	return &idleReader{r: http.MaxBytesReader(w, r.Body, limit), rc: http.NewResponseController(w), idle: idle, tooLarge: tooLarge}
}

type idleReader struct {
	r        io.Reader
	rc       *http.ResponseController
	idle     time.Duration
	tooLarge error     // the error of a body over the limit
	armed    time.Time // when the deadline was last moved
}

func (b *idleReader) Read(p []byte) (int, error) {
	// The deadline is the connection's (the server resets it for the
	// next request). Moved on only every idle/8, not at each of the
	// small reads the multipart reader makes, so a read always has at
	// least 7/8 of idle.
	if now := time.Now(); now.Sub(b.armed) > b.idle/8 {
		_ = b.rc.SetReadDeadline(now.Add(b.idle))
		b.armed = now
	}
	n, err := b.r.Read(p)
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		err = b.tooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = errs.Invalid("the upload sent nothing for %v and was cut off; retry it over a steadier link", b.idle)
	}
	return n, err
}

// limited reports whether err is uploadBody's: a limit was hit.
func limited(err error) bool {
	return errors.Is(err, errs.ErrTooLarge) || errors.Is(err, errs.ErrInvalid)
}
