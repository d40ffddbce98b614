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
			if !a.structured() {
				fmt.Fprintf(a.errOut, "probing %s every %s for %s (Ctrl-C stops early and prints the results so far)\n", addr, interval, dur)
			}
			r, err := runProbe(cmd.Context(), addr, streamAddr, interval, dur)
			if err != nil {
				return err
			}
			if a.structured() {
				return a.print(netprobe.NewReport(addr, r.start, r.end, r.ping, streamAddr, r.stream))
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
