// Package e2e holds godwit's end-to-end tests: they build the real godwit
// binary, start a controller and several agents as separate processes on
// loopback (each with its own state directory, sharing one shared pool;
// internal/cluster runs them, as it does for godwit up and the benchmark),
// and drive them through the public API, as an operator would. Tests that
// need QEMU skip with a reason where it is missing; `make test` installs it.
package e2e
