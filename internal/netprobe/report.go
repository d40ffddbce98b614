package netprobe

import "time"

// Report is what godwit probe prints with -o json: one ping probe and,
// when asked, one stream followed, over the same time. Durations are in
// milliseconds (fractions to the microsecond). The networking tests and
// the benchmark read it back.
type Report struct {
	Addr       string        `json:"addr"`
	Start      time.Time     `json:"start"`
	DurationMS float64       `json:"duration_ms"`
	Ping       PingReport    `json:"ping"`
	Stream     *StreamReport `json:"stream,omitempty"`
}

// PingReport is a PingResult in a Report.
type PingReport struct {
	IntervalMS        float64    `json:"interval_ms"`
	Sent              int        `json:"sent"`
	Received          int        `json:"received"`
	Lost              int        `json:"lost"`
	LongestGapMS      float64    `json:"longest_gap_ms"`
	GapStart          *time.Time `json:"gap_start,omitempty"`
	FirstReplyAfterMS float64    `json:"first_reply_after_ms"`
	SinceLastReplyMS  float64    `json:"since_last_reply_ms"`
	SendErrors        int        `json:"send_errors,omitempty"`
	SendError         string     `json:"send_error,omitempty"`
}

// StreamReport is a StreamResult in a Report.
type StreamReport struct {
	Addr            string     `json:"addr"`
	Lines           int        `json:"lines"`
	LastSeq         int        `json:"last_seq"`
	LongestGapMS    float64    `json:"longest_gap_ms"`
	GapStart        *time.Time `json:"gap_start,omitempty"`
	SinceLastLineMS float64    `json:"since_last_line_ms"`
	Survived        bool       `json:"survived"`
	Error           string     `json:"error,omitempty"`
	SeqBroken       bool       `json:"seq_broken"`
}

// NewReport reports a probe of addr from start to end; streamAddr is ""
// when no stream was followed.
func NewReport(addr string, start, end time.Time, p PingResult, streamAddr string, s StreamResult) Report {
	v := Report{
		Addr:       addr,
		Start:      start,
		DurationMS: msec(end.Sub(start)),
		Ping: PingReport{
			IntervalMS: msec(p.Interval), Sent: p.Sent, Received: p.Received, Lost: p.Lost,
			LongestGapMS: msec(p.LongestGap), GapStart: timeOrNil(p.GapStart),
			FirstReplyAfterMS: msec(p.FirstReplyAfter), SinceLastReplyMS: msec(p.SinceLastReply),
			SendErrors: p.SendErrors, SendError: p.SendErr,
		},
	}
	if streamAddr != "" {
		v.Stream = &StreamReport{
			Addr: streamAddr, Lines: s.Lines, LastSeq: s.LastSeq,
			LongestGapMS: msec(s.LongestGap), GapStart: timeOrNil(s.GapStart), SinceLastLineMS: msec(s.SinceLastLine),
			Survived: s.Survived, Error: s.Err, SeqBroken: s.SeqBroken,
		}
	}
	return v
}

// Results turns a Report back into the probe's results (the stream's
// zero when none was followed).
func (r Report) Results() (PingResult, StreamResult) {
	p := PingResult{Sent: r.Ping.Sent, Received: r.Ping.Received, Lost: r.Ping.Lost, Interval: dur(r.Ping.IntervalMS),
		LongestGap: dur(r.Ping.LongestGapMS), FirstReplyAfter: dur(r.Ping.FirstReplyAfterMS), SinceLastReply: dur(r.Ping.SinceLastReplyMS),
		SendErrors: r.Ping.SendErrors, SendErr: r.Ping.SendError}
	if r.Ping.GapStart != nil {
		p.GapStart = *r.Ping.GapStart
	}
	var s StreamResult
	if st := r.Stream; st != nil {
		s = StreamResult{Lines: st.Lines, LastSeq: st.LastSeq, LongestGap: dur(st.LongestGapMS), SinceLastLine: dur(st.SinceLastLineMS),
			Survived: st.Survived, Err: st.Error, SeqBroken: st.SeqBroken}
		if st.GapStart != nil {
			s.GapStart = *st.GapStart
		}
	}
	return p, s
}

// msec is d in milliseconds, to the microsecond.
func msec(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

func dur(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond)).Round(time.Microsecond)
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
