package cli

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/netprobe"
)

func (a *app) probeCmd() *cobra.Command {
	var (
		port     int
		dur      time.Duration
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "probe ADDR [--stream PORT] [--for DURATION] [--interval 10ms]",
		Short: "Measure what a client sees of a VM: ping every 10 ms and follow its TCP stream",
		Long: `Measure what a client outside a VM sees of it, for instance while it is
live-migrated: ping ADDR every --interval and report the longest gap
between replies (the blackout a client sees); with --stream, also follow
the test guest's TCP stream on that port (a line every 10 ms) and report
whether the connection survived and its longest gap between lines.

The probe runs for --for, or until Ctrl-C, which prints the results so
far. Pinging needs root or CAP_NET_RAW.`,
		Example: `  godwit probe 10.99.0.5 --stream 7777 --for 60s
  godwit probe 10.99.0.5 --interval 1ms -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dur <= 0 {
				return usagef("--for must be positive, e.g. --for 30s")
			}
			if interval < time.Millisecond {
				return usagef("--interval must be at least 1ms, not %s", interval)
			}
			if cmd.Flags().Changed("stream") && (port < 1 || port > 65535) {
				return usagef("--stream must be a TCP port, 1-65535, not %d", port)
			}
			addr := args[0]
			if addr == "" {
				return usagef("name the address to probe, e.g. godwit probe 10.99.0.5")
			}
			streamAddr := ""
			if cmd.Flags().Changed("stream") {
				streamAddr = net.JoinHostPort(addr, strconv.Itoa(port))
			}
			if !a.json() {
				fmt.Fprintf(a.errOut, "probing %s every %s for %s (Ctrl-C stops early and prints the results so far)\n", addr, interval, dur)
			}
			r, err := runProbe(cmd.Context(), addr, streamAddr, interval, dur)
			if err != nil {
				return err
			}
			if a.json() {
				return printJSON(a.out, r.view(addr, streamAddr))
			}
			fmt.Fprintln(a.out, r.ping)
			if streamAddr != "" {
				fmt.Fprintln(a.out, r.stream)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&port, "stream", 0, "also follow the test guest's TCP stream on this port (it serves one on 7777)")
	f.DurationVar(&dur, "for", 30*time.Second, "how long to probe")
	f.DurationVar(&interval, "interval", 10*time.Millisecond, "time between pings")
	return cmd
}

// probeResult is what runProbe measured.
type probeResult struct {
	start, end time.Time
	ping       netprobe.PingResult
	stream     netprobe.StreamResult
}

// runProbe pings addr, and follows streamAddr unless it is empty, for dur
// or until ctx ends. Either probe failing to start stops the other.
func runProbe(ctx context.Context, addr, streamAddr string, interval, dur time.Duration) (probeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	r := probeResult{start: time.Now()}
	var (
		wg                 sync.WaitGroup
		pingErr, streamErr error
	)
	wg.Go(func() {
		if r.ping, pingErr = netprobe.Ping(ctx, addr, interval); pingErr != nil {
			cancel()
		}
	})
	if streamAddr != "" {
		wg.Go(func() {
			if r.stream, streamErr = netprobe.Follow(ctx, streamAddr); streamErr != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	r.end = time.Now()
	if pingErr != nil {
		return r, pingErr
	}
	return r, streamErr
}

// probeJSON is probe's -o json output; durations are in milliseconds.
type probeJSON struct {
	Addr       string      `json:"addr"`
	Start      time.Time   `json:"start"`
	DurationMS float64     `json:"duration_ms"`
	Ping       pingJSON    `json:"ping"`
	Stream     *streamJSON `json:"stream,omitempty"`
}

type pingJSON struct {
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

type streamJSON struct {
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

func (r probeResult) view(addr, streamAddr string) probeJSON {
	p := r.ping
	v := probeJSON{
		Addr:       addr,
		Start:      r.start,
		DurationMS: msec(r.end.Sub(r.start)),
		Ping: pingJSON{
			IntervalMS: msec(p.Interval), Sent: p.Sent, Received: p.Received, Lost: p.Lost,
			LongestGapMS: msec(p.LongestGap), GapStart: timeOrNil(p.GapStart),
			FirstReplyAfterMS: msec(p.FirstReplyAfter), SinceLastReplyMS: msec(p.SinceLastReply),
			SendErrors: p.SendErrors, SendError: p.SendErr,
		},
	}
	if streamAddr != "" {
		s := r.stream
		v.Stream = &streamJSON{
			Addr: streamAddr, Lines: s.Lines, LastSeq: s.LastSeq,
			LongestGapMS: msec(s.LongestGap), GapStart: timeOrNil(s.GapStart), SinceLastLineMS: msec(s.SinceLastLine),
			Survived: s.Survived, Error: s.Err, SeqBroken: s.SeqBroken,
		}
	}
	return v
}

// msec is d in milliseconds, to the microsecond.
func msec(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
