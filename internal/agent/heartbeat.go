package agent

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/hostinfo"
	"github.com/godwit/godwit/internal/safe"
	"github.com/godwit/godwit/internal/version"
)

// heartbeatLoop reports the host and its VMs to the controller every
// interval, from the first moment (that first beat registers the host).
// A beat that panics is logged and the next one comes as usual: without
// heartbeats the controller takes the host for down.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	c := api.NewClient(a.cfg.Controller)
	c.HTTP = api.NewHTTPClient(api.HTTPOptions{Timeout: a.cfg.HeartbeatInterval * 2, TLS: a.controllerTLS()})
	failing := false
	for {
		var err error
		if perr := safe.Run(a.log, "heartbeat", func() { err = a.beat(ctx, c) }); perr != nil {
			err = perr
		}
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			a.log.Warn("heartbeat failed; will keep trying", "err", err)
			failing = true
		case err == nil && failing:
			a.log.Info("heartbeat delivered again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(a.cfg.HeartbeatInterval):
		}
	}
}

// beat sends one heartbeat and acts on the controller's reply.
func (a *Agent) beat(ctx context.Context, c *api.Client) error {
	hb, err := a.heartbeat(ctx)
	if err != nil {
		return err
	}
	var reply hostapi.HeartbeatReply
	if err := c.Do(ctx, http.MethodPost, "/v1/internal/heartbeat", hb, &reply); err != nil {
		return err
	}
	if err := reply.Validate(); err != nil { // its IDs name files here
		return fmt.Errorf("the controller's reply: %w", err)
	}
	a.delivered(hb.Cleaned)
	a.removeStale(ctx, reply.Remove)
	return nil
}

// heartbeat gathers what the controller should know now.
func (a *Agent) heartbeat(ctx context.Context) (hostapi.Heartbeat, error) {
	sts, err := a.drv.List(ctx)
	if err != nil {
		return hostapi.Heartbeat{}, err
	}
	hb := hostapi.Heartbeat{Host: a.facts()}
	a.staleMu.Lock()
	hb.Cleaned = slices.Clone(a.cleaned)
	a.staleMu.Unlock()
	for _, st := range sts {
		hb.VMs = append(hb.VMs, hostapi.VMReport{ID: st.ID, Name: st.Name, State: string(st.State), PID: st.PID,
			Reason: st.Reason, LastPanic: panicReport(st.LastPanic)})
	}
	return hb, nil
}

// facts measures the host. Capacity can be overridden so that one machine
// can play several smaller hosts.
func (a *Agent) facts() api.Host {
	caps := a.drv.Capabilities()
	model, flags := hostinfo.CPUInfo()
	h := api.Host{
		Name: a.cfg.Name, Address: a.cfg.Advertise,
		CPUs: runtime.NumCPU(), MemoryMiB: hostinfo.MemTotalMiB(),
		CPUModel: model, CPUFlags: flags,
		Hypervisor: caps.Hypervisor, Accelerator: caps.Accelerator, AccelReason: caps.AccelReason,
		QEMUVersion: caps.QEMUVersion, PostCopy: caps.PostCopy,
		Version: version.Version,
	}
	if a.cfg.Version != "" {
		h.Version = a.cfg.Version
	}
	if a.cfg.CPUs > 0 {
		h.CPUs = a.cfg.CPUs
	}
	if a.cfg.MemoryMiB > 0 {
		h.MemoryMiB = a.cfg.MemoryMiB
	}
	total, free := hostinfo.FsMiB(a.localPool())
	h.DiskMiB = total
	h.Pools = []api.Pool{{Name: api.PoolLocal, Kind: api.PoolLocal, Path: a.localPool(), FreeMiB: free}}
	if a.cfg.SharedDir != "" {
		_, sfree := hostinfo.FsMiB(a.cfg.SharedDir)
		h.Pools = append(h.Pools, api.Pool{Name: api.PoolShared, Kind: api.PoolShared, Path: a.cfg.SharedDir, FreeMiB: sfree, ID: a.poolID})
	}
	return h
}

// delivered forgets the cleaned copies a delivered heartbeat reported.
func (a *Agent) delivered(cleaned []hostapi.StaleVM) {
	a.staleMu.Lock()
	defer a.staleMu.Unlock()
	a.cleaned = slices.DeleteFunc(a.cleaned, func(v hostapi.StaleVM) bool { return slices.Contains(cleaned, v) })
}
