// Package bench is godwit's benchmark program (make bench, cmd/godwit-bench):
// it starts a real cluster on this machine — the godwit binary as a
// controller and agents in separate processes, QEMU running the project's
// test guest — and measures live migration through the public API:
// convergence of one guest under each convergence policy at several dirty
// rates, the drain of a host whose links are shaped to 1 Gbit/s in their
// own network namespaces, and the controller's overhead on top of QEMU's
// own migration time. It prints tables, checks the targets of issue 5
// (PASS/FAIL) and writes them, with the machine they ran on, to
// docs/benchmarks.md.
//
// One more scenario runs only when named (-scenarios repro): it
// live-migrates a guest that keeps writing between two TCG hosts, once
// per QEMU binary given with -qemu, and judges the guest after every move,
// to show the TCG defect of QEMU before 9.0 (docs/migration.md) and its
// absence on a newer QEMU. It prints Markdown for docs/migration.md and is
// not part of the report.
//
// The arithmetic, the tables, the heartbeat-gap measure and the target
// checks are pure functions with unit tests. The clusters are
// internal/cluster's (cluster.Local, as godwit up and the end-to-end
// tests run them): cluster.go adds the benchmark's settings and VMs,
// netns.go the shaped network namespaces of the drain scenario's hosts.
package bench
