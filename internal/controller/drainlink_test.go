package controller_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
)

// phaseAt is when a migration entered state (zero if it never did).
func phaseAt(m api.Migration, state api.MigrationState) time.Time {
	for _, p := range m.Phases {
		if p.State == state {
			return p.At
		}
	}
	return time.Time{}
}

// A drain sends one move's memory at a time out of the source (the moves
// share its link), while the next move's destination is prepared during
// the current transfer: transfers never overlap, and a move waits,
// prepared, in state waiting-for-link. With max_transfers_per_source 2
// the transfers overlap, as before. Either way one move prepares at a
// time.
func TestDrainSerializesTransfersAndPreparesAhead(t *testing.T) {
	for _, tt := range []struct {
		name      string
		transfers int
		overlap   bool
	}{
		{"default", 0, false},
		{"two-sending", 2, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCluster(t, 3, 8192)
			ctx := context.Background()
			tc.importFakeKernel(t, "guest")
			for i := 1; i <= 4; i++ {
				if _, err := tc.client.CreateVM(ctx, api.CreateVMRequest{Name: fmt.Sprintf("vm%d", i), Image: "guest", Pool: api.PoolShared,
					Host: "host1", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 256, DiskMiB: 64}}); err != nil {
					t.Fatal(err)
				}
			}
			// 256 MiB at 400 MB/s: about 0.7 s a transfer in the fake's model.
			in, err := tc.client.Drain(ctx, "host1", api.DrainRequest{BandwidthMBPerS: 400, MaxTransfersPerSource: tt.transfers})
			if err != nil {
				t.Fatal(err)
			}
			in = waitIntent(t, tc.client, in.ID, 60*time.Second)
			if in.State != api.IntentCompleted {
				t.Fatalf("drain ended %s (%s): %+v", in.State, in.Reason, in.Operations)
			}
			type span struct {
				vm                                    string
				prep, prepared, send, sent, completed time.Time
				waited                                bool
			}
			var spans []span
			for _, op := range in.Operations {
				m, err := tc.client.Migration(ctx, op.MigrationID)
				if err != nil {
					t.Fatal(err)
				}
				s := span{vm: op.VM, prep: phaseAt(m, api.MigPreparing), send: phaseAt(m, api.MigTransferring),
					sent: phaseAt(m, api.MigSwitchingOver), completed: phaseAt(m, api.MigCompleted), waited: !phaseAt(m, api.MigWaitingLink).IsZero()}
				s.prepared = s.send
				if s.waited {
					s.prepared = phaseAt(m, api.MigWaitingLink)
				}
				if m.State != api.MigCompleted || s.send.IsZero() || s.sent.IsZero() {
					t.Fatalf("%s: migration %s, phases %+v", op.VM, m.State, m.Phases)
				}
				spans = append(spans, s)
			}
			// One move prepares at a time: the next starts preparing once
			// the one before it is prepared.
			sort.Slice(spans, func(i, j int) bool { return spans[i].prep.Before(spans[j].prep) })
			for i := 1; i < len(spans); i++ {
				if prev, cur := spans[i-1], spans[i]; cur.prep.Before(prev.prepared) {
					t.Errorf("%s started preparing at %s, before %s was prepared (%s)", cur.vm,
						cur.prep.Format("15:04:05.000"), prev.vm, prev.prepared.Format("15:04:05.000"))
				}
			}
			sort.Slice(spans, func(i, j int) bool { return spans[i].send.Before(spans[j].send) })
			overlapped, preparedAhead, waited := false, false, 0
			for i := 1; i < len(spans); i++ {
				prev, cur := spans[i-1], spans[i]
				if cur.send.Before(prev.sent) {
					overlapped = true
				}
				// Prepared while the previous one still sent.
				if cur.prep.Before(prev.sent) {
					preparedAhead = true
				}
				if cur.waited {
					waited++
				}
			}
			if overlapped != tt.overlap {
				for _, s := range spans {
					t.Logf("%s: preparing %s, transferring %s, switching over %s", s.vm, s.prep.Format("15:04:05.000"), s.send.Format("15:04:05.000"), s.sent.Format("15:04:05.000"))
				}
				t.Fatalf("transfers overlapped: %v; want %v", overlapped, tt.overlap)
			}
			if !tt.overlap && (!preparedAhead || waited == 0) {
				t.Errorf("no move was prepared during another's transfer (prepared ahead %v, waited for the link %d times)", preparedAhead, waited)
			}
		})
	}
}

// max_transfers_per_source is checked against the moves allowed at once.
func TestDrainTransfersLimitInput(t *testing.T) {
	tc := newTestCluster(t, 2, 4096)
	ctx := context.Background()
	for _, tt := range []struct {
		req  api.DrainRequest
		want string
	}{
		{api.DrainRequest{MaxTransfersPerSource: -1}, "max_transfers_per_source must be between 1 and"},
		{api.DrainRequest{MaxTransfersPerSource: 3}, "raise max_per_source"},
		{api.DrainRequest{MaxPerSource: 1, MaxTransfersPerSource: 2}, "cannot exceed"},
	} {
		_, err := tc.client.Drain(ctx, "host1", tt.req)
		wantAPIError(t, err, 400, tt.want)
	}
	plan, err := tc.client.Drain(ctx, "host1", api.DrainRequest{DryRun: true, MaxPerSource: 3, MaxTransfersPerSource: 3})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Params.MaxTransfersPerSource != 3 {
		t.Errorf("plan params %+v; want max_transfers_per_source 3", plan.Params)
	}
}
