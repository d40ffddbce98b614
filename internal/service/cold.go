package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/failpoint"
	"github.com/godwit/godwit/internal/hostapi"
)

// runCold is a cold migration, start to end:
//
//	preparing       the strategy is chosen from the VM's pool
//	transferring    the VM stops on the source; a local disk is copied to the destination and verified
//	switching-over  the VM is defined (and started, if it ran) on the destination
//	finishing       the record moves to the destination; the source copy goes (its disk too, if local)
//
// Before the switch-over a failure or abort removes what the destination
// got and restarts the VM on the source; the source copy is removed only
// once the VM runs on the destination.
func (c *Service) runCold(ctx context.Context, m api.Migration, vm api.VM, src, dst api.Host) {
	log := c.log.With("vm", vm.Name, "op", m.ID, "from", src.Name, "to", dst.Name)
	srcA, dstA := c.agent(src), c.agent(dst)
	var rb rollback
	fail := c.failure(ctx, m.ID, log, &rb)
	im, err := c.store.Image(ctx, vm.Image)
	if err != nil {
		fail(fmt.Errorf("image %s: %w", vm.Image, err))
		return
	}
	local := vm.Pool == api.PoolLocal && vm.Flavor.DiskMiB > 0
	strategy := api.StrategyColdShared
	if local {
		strategy = api.StrategyDiskTransfer
	}
	wasRunning := vm.State == api.VMRunning
	create, err := c.agentSpec(ctx, vm, im, wasRunning)
	if err != nil {
		fail(err)
		return
	}

	failpoint.Hit("cold/after-scheduling")
	if _, err := c.advance(ctx, m.ID, api.MigPreparing, ""); err != nil {
		fail(err)
		return
	}
	c.updateMigration(ctx, m.ID, func(mm *api.Migration) error { mm.Strategy = strategy; return nil })

	if _, err := c.advance(ctx, m.ID, api.MigTransferring, ""); err != nil {
		fail(err)
		return
	}
	start := time.Now()
	if wasRunning {
		// Added before the stop: a stop whose reply is lost (the source's
		// agent died after stopping it) stopped the VM all the same, and
		// starting a running VM changes nothing.
		rb.add("restart on the source", func(ctx context.Context) error {
			rep, err := srcA.Action(ctx, vm.ID, "start")
			if err == nil {
				_, err = c.applyReport(ctx, vm.Name, rep) // its new PID, at once
			}
			return err
		})
		if _, err := srcA.Stop(ctx, vm.ID, hostapi.StopVM{TimeoutSeconds: 60}); err != nil {
			fail(fmt.Errorf("stop on %s: %w", src.Name, err))
			return
		}
	}
	failpoint.Hit("cold/after-stop")
	if local {
		rb.add("delete the destination's copy", func(ctx context.Context) error { return dstA.DeleteVM(ctx, vm.ID) })
		if err := c.transferDisk(ctx, log, m.ID, srcA, dstA, src, create); err != nil {
			fail(err)
			return
		}
	} else {
		rb.add("release the destination", func(ctx context.Context) error { return dstA.Release(ctx, vm.ID) })
	}

	if _, err := c.advance(ctx, m.ID, api.MigSwitchingOver, ""); err != nil {
		fail(err)
		return
	}
	failpoint.Hit("cold/switch-over")
	var rep hostapi.VMReport
	switch {
	case local && wasRunning:
		rep, err = dstA.Action(ctx, vm.ID, "start")
	case local:
		rep, err = dstA.VM(ctx, vm.ID)
	default:
		rep, err = dstA.CreateVM(ctx, create)
	}
	if err != nil {
		fail(fmt.Errorf("start on %s: %w", dst.Name, err))
		return
	}

	// The VM is on the destination now: forward only.
	cleanup := srcA.Release
	if local {
		cleanup = srcA.DeleteVM // the source's disk goes only now
	}
	done := c.arrive(context.WithoutCancel(ctx), log, arrival{kind: api.KindCold, id: m.ID, vm: vm, src: src.Name, dst: dst.Name, rep: rep,
		dropSrc: cleanup, srcCopy: "its old copy", figures: func(mm *api.Migration) {
			total := time.Since(start)
			mm.Progress.TotalTimeMS = total.Milliseconds()
			if wasRunning {
				mm.Progress.DowntimeMS = total.Milliseconds() // a cold move is all downtime
			}
		}})
	if done {
		log.Info("cold migration completed", "strategy", strategy, "total", time.Since(start))
	}
}

// transferDisk copies a stopped VM's local disk from src to the
// destination under a token of its own: the source lets that token in for
// this VM's disk only, until the copy has ended (or the grant lapses, if
// this controller dies first), and the destination presents it, reading
// from src's registered address and accepting only src's certificate.
// The token is kept nowhere else (hostapi's transfer.go says why none
// need survive a restart).
func (c *Service) transferDisk(ctx context.Context, log *slog.Logger, id string, srcA, dstA *hostapi.Agent, src api.Host, vm hostapi.CreateVM) error {
	token := hostapi.NewTransferToken()
	ttl := hostapi.TransferTTL(vm.DiskMiB)
	if err := srcA.GrantDiskTransfer(ctx, vm.ID, hostapi.TransferGrant{Token: token, TTLSeconds: int(ttl.Seconds())}); err != nil {
		return fmt.Errorf("grant the disk transfer on %s: %w", src.Name, err)
	}
	defer func() {
		if err := srcA.RevokeDiskTransfer(context.WithoutCancel(ctx), vm.ID); err != nil {
			log.Warn("the disk transfer's grant could not be revoked on the source; it lapses by itself", "in", ttl, "err", err)
		}
	}()
	return c.copyDisk(ctx, id, dstA, hostapi.ImportDisk{VM: vm, Source: src.Address, SourceHost: src.Name, Token: token})
}

// copyDisk has the destination import the disk and follows its progress.
func (c *Service) copyDisk(ctx context.Context, id string, dstA *hostapi.Agent, req hostapi.ImportDisk) error {
	if err := dstA.ImportDisk(ctx, req); err != nil {
		return fmt.Errorf("start the disk copy: %w", err)
	}
	failpoint.Hit("cold/mid-transfer")
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	// The copy's spans without progress, for the metrics only: a disk
	// copy has its own timeouts.
	var stall stallWatch
	defer func() { c.cfg.Metrics.MigrationStalled(api.KindCold, stall.open(time.Now())) }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		var st hostapi.ImportStatus
		err := c.whileUnavailable(ctx, func(ctx context.Context) (err error) { st, err = dstA.ImportStatus(ctx, req.VM.ID); return err })
		if err != nil {
			return fmt.Errorf("read the disk copy's status: %w", err)
		}
		c.updateMigration(context.WithoutCancel(ctx), id, func(m *api.Migration) error {
			m.Progress.DiskTotal, m.Progress.DiskTransferred = st.Total, st.Transferred
			return nil
		})
		now := time.Now()
		c.cfg.Metrics.MigrationStalled(api.KindCold, stall.resumed(now, st.Transferred))
		stall.stalled(now, st.Transferred)
		switch st.Status {
		case "completed":
			return nil
		case "failed":
			return fmt.Errorf("disk copy: %s", st.Error)
		case "none":
			return errors.New("disk copy: the destination has no import of this disk (its agent restarted and lost it)")
		}
	}
}
