package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/godwit/godwit/api"
)

// State is what the cluster holds now, read from the store at each
// scrape: hosts with their claims (as the scheduler counts them), the
// migrations under way and the intents that have not ended.
type State struct {
	Hosts      []api.Host
	Migrations []api.Migration // active ones
	Intents    []api.Intent    // active ones
}

// scrapeTimeout bounds the store reads of one scrape.
const scrapeTimeout = 10 * time.Second

// WatchState registers the gauges computed at scrape time from what read
// returns. Computed, not kept up to date by hand: they are always what
// the store says, whichever controller process changed it.
func (m *Controller) WatchState(read func(context.Context) (State, error)) {
	m.reg.MustRegister(&stateCollector{read: read})
}

var (
	hostsDesc = prometheus.NewDesc("godwit_hosts",
		"Hosts by state (up, down) and whether the scheduler may place VMs there (enabled).", []string{"state", "enabled"}, nil)
	hostVMsDesc = prometheus.NewDesc("godwit_host_vms",
		"VMs placed on each host, a moving VM counted on its destination too.", []string{"host"}, nil)
	claimedVCPUsDesc = prometheus.NewDesc("godwit_host_claimed_vcpus",
		"vCPUs claimed on each host: the flavors of the VMs placed there and of those migrating to it.", []string{"host"}, nil)
	claimedMemoryDesc = prometheus.NewDesc("godwit_host_claimed_memory_bytes",
		"Memory claimed on each host, in bytes, counted as for godwit_host_claimed_vcpus.", []string{"host"}, nil)
	claimedDiskDesc = prometheus.NewDesc("godwit_host_claimed_disk_bytes",
		"Local-pool disk claimed on each host, in bytes.", []string{"host"}, nil)
	capacityVCPUsDesc = prometheus.NewDesc("godwit_host_capacity_vcpus",
		"vCPUs each host offers (its agent's report).", []string{"host"}, nil)
	capacityMemoryDesc = prometheus.NewDesc("godwit_host_capacity_memory_bytes",
		"Memory each host offers, in bytes.", []string{"host"}, nil)
	bandwidthDesc = prometheus.NewDesc("godwit_host_migration_bandwidth_bytes_per_second",
		"Migration throughput in use on each host, in bytes/s: the sum over the migrations transferring out of it (direction out) or into it (in), as last reported by the source.",
		[]string{"host", "direction"}, nil)
	migrationsActiveDesc = prometheus.NewDesc("godwit_migrations_active",
		"Migrations under way, by kind and state (queued, scheduling, preparing, waiting-for-link, transferring, switching-over, finishing).", []string{"kind", "state"}, nil)
	intentsActiveDesc = prometheus.NewDesc("godwit_intents_active",
		"Intents not ended, by kind and state (running, cancelling).", []string{"kind", "state"}, nil)
	operationsActiveDesc = prometheus.NewDesc("godwit_intent_operations_active",
		"Operations of intents not ended that are pending (queued behind the limits) or running, by kind and state.", []string{"kind", "state"}, nil)
)

// stateCollector computes the State gauges at each scrape.
type stateCollector struct {
	read func(context.Context) (State, error)
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hostsDesc, hostVMsDesc, claimedVCPUsDesc, claimedMemoryDesc, claimedDiskDesc,
		capacityVCPUsDesc, capacityMemoryDesc, bandwidthDesc, migrationsActiveDesc, intentsActiveDesc, operationsActiveDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	st, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(hostsDesc, err)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	const mib = 1 << 20

	// Every combination, zeros included: a panel shows 0 down hosts
	// rather than no data.
	hosts := map[[2]string]int{}
	for _, s := range []string{api.HostUp, api.HostDown} {
		for _, e := range []string{"true", "false"} {
			hosts[[2]string{s, e}] = 0
		}
	}
	out, in := map[string]float64{}, map[string]float64{}
	for _, h := range st.Hosts {
		hosts[[2]string{h.State, boolLabel(h.Enabled)}]++
		gauge(hostVMsDesc, float64(h.VMs), h.Name)
		gauge(claimedVCPUsDesc, float64(h.AllocatedCPUs), h.Name)
		gauge(claimedMemoryDesc, float64(h.AllocatedMemoryMiB)*mib, h.Name)
		gauge(claimedDiskDesc, float64(h.AllocatedDiskMiB)*mib, h.Name)
		gauge(capacityVCPUsDesc, float64(h.CPUs), h.Name)
		gauge(capacityMemoryDesc, float64(h.MemoryMiB)*mib, h.Name)
		out[h.Name], in[h.Name] = 0, 0
	}
	for k, n := range hosts {
		gauge(hostsDesc, float64(n), k[0], k[1])
	}

	migs := map[[2]string]int{}
	for _, m := range st.Migrations {
		migs[[2]string{string(m.Kind), string(m.State)}]++
		if m.State != api.MigTransferring {
			continue // its last throughput is history, not bandwidth in use
		}
		if _, ok := out[m.Source]; ok {
			out[m.Source] += m.Progress.Throughput
		}
		if _, ok := in[m.Destination]; ok {
			in[m.Destination] += m.Progress.Throughput
		}
	}
	for h, v := range out {
		gauge(bandwidthDesc, v, h, "out")
	}
	for h, v := range in {
		gauge(bandwidthDesc, v, h, "in")
	}
	// The kinds always, so that an idle cluster's queue reads 0.
	for _, k := range []api.MigrationKind{api.KindLive, api.KindCold} {
		key := [2]string{string(k), string(api.MigTransferring)}
		migs[key] += 0
	}
	for k, n := range migs {
		gauge(migrationsActiveDesc, float64(n), k[0], k[1])
	}

	ins, ops := map[[2]string]int{}, map[[2]string]int{}
	for _, in := range st.Intents {
		if in.State.Final() {
			continue
		}
		ins[[2]string{string(in.Kind), string(in.State)}]++
		for _, op := range in.Operations {
			if op.State == api.OpPending || op.State == api.OpRunning {
				ops[[2]string{string(op.Kind), string(op.State)}]++
			}
		}
	}
	for _, k := range []api.IntentKind{api.IntentDrain, api.IntentEvacuate, api.IntentResize, api.IntentRebuild} {
		ins[[2]string{string(k), string(api.IntentRunning)}] += 0
	}
	for k, n := range ins {
		gauge(intentsActiveDesc, float64(n), k[0], k[1])
	}
	for k, n := range ops {
		gauge(operationsActiveDesc, float64(n), k[0], k[1])
	}
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
