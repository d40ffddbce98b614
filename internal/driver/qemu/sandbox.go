package qemu

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godwit/godwit/internal/driver"
)

// sandboxFull is QEMU's seccomp filter (-sandbox) as tight as the driver
// allows. QEMU installs it before it opens anything a guest can reach;
// from then on a guest that takes QEMU over (a device emulation bug) is
// held to the system calls QEMU needs. Each option, measured on QEMU 10.0
// with everything the driver does (package tests, e2e network moves):
//
//   - obsolete=deny: on. Syscalls no modern libc makes; nothing missed
//     them.
//   - resourcecontrol=deny: on. Scheduler and priority calls
//     (sched_setaffinity, setpriority...); QEMU needs them only for
//     thread-context preallocation, which godwit does not use.
//   - elevateprivileges: left allowed. deny (and children) also forbids
//     setsid, which -daemonize calls in its child after the filter is in
//     place: the child dies of SIGSYS (audit: syscall 112) and QEMU
//     exits 1 with no message. It would also forbid the setuid of
//     RunAs. After RunAs drops to an unprivileged user, set*id cannot
//     gain anything back anyway.
//   - spawn: left allowed. deny makes fork fail (EPERM), and -daemonize
//     forks: QEMU exits 1 with no message. The driver never asks QEMU to
//     run a program (taps are opened with script=no).
const sandboxFull = "on,obsolete=deny,resourcecontrol=deny"

// sandboxes caches, per QEMU binary, the -sandbox value it accepts.
var sandboxes sync.Map // binary path -> string

// sandboxFor returns the -sandbox value for bin, probed once per binary:
// sandboxFull where QEMU installs it, else plain "on" (a QEMU without
// the deny options), else "" — a QEMU built without seccomp, or a kernel
// without it, runs unfiltered, as before, with a warning.
func sandboxFor(bin string, log *slog.Logger) string {
	if s, ok := sandboxes.Load(bin); ok {
		return s.(string)
	}
	s := ""
	var why string
	for _, try := range []string{sandboxFull, "on"} {
		err := probeSandbox(bin, try)
		if err == nil {
			s = try
			break
		}
		why = err.Error()
	}
	if s == "" {
		log.Warn("qemu runs without a seccomp sandbox: this build or kernel cannot install one", "binary", bin, "err", why)
	} else if s != sandboxFull {
		log.Warn("qemu's seccomp sandbox lacks the deny options", "binary", bin, "sandbox", s, "err", why)
	}
	sandboxes.Store(bin, s)
	return s
}

// probeSandbox starts bin with the filter installed — no machine, QMP on
// its standard input — and has it quit: it fails where this QEMU or this
// kernel cannot install that filter.
func probeSandbox(bin, sandbox string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-machine", "none", "-nodefaults", "-no-user-config", "-display", "none",
		"-sandbox", sandbox, "-qmp", "stdio")
	cmd.Stdin = strings.NewReader(`{"execute":"qmp_capabilities"}` + "\n" + `{"execute":"quit"}` + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("-sandbox %s: %v: %s", sandbox, err, strings.TrimSpace(lastLine(out.String())))
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// runAsArgs is how bin, of version, drops to user after setting up:
// -run-with user= from QEMU 9.1, which deprecated -runas. QEMU opens the
// disks, the QMP socket, the console log and the pid file, and the taps,
// before it drops; what it opens later as the user is only what QMP asks
// for (the migration's TLS credentials, network sockets).
func runAsArgs(version, name string) []string {
	if name == "" {
		return nil
	}
	if version == "" || driver.QEMUAtLeast(version, "9.1") {
		return []string{"-run-with", "user=" + name}
	}
	return []string{"-runas", name}
}

// runAsGID is the primary group of the user QEMU drops to, -1 for none.
// Looking it up also makes sure the user exists, so a typo fails when
// the agent starts, not at each VM's start.
func runAsGID(name string) (int, error) {
	if name == "" {
		return -1, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return -1, fmt.Errorf("qemu driver: the user to run qemu as: %w", err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return -1, fmt.Errorf("qemu driver: user %s: group %q: %w", name, u.Gid, err)
	}
	return gid, nil
}

// credsForQEMU returns a directory QEMU can read the TLS credentials of
// dir from, and a function to call once it has (tls-creds-x509 reads its
// files when the object is made). A QEMU that keeps the agent's user
// reads dir itself. One that dropped to another user cannot: the host's
// credentials are the agent's alone (0600). It gets a copy, readable by
// the user's group and writable by no one but root — another QEMU of the
// same user must not be able to swap a CA in — that lives only until
// QEMU has read it.
func (d *Driver) credsForQEMU(dir string) (string, func(), error) {
	if d.runGID < 0 {
		return dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "godwit-qemu-tls-")
	if err != nil {
		return "", nil, err
	}
	done := func() { _ = os.RemoveAll(tmp) }
	fail := func(err error) (string, func(), error) {
		done()
		return "", nil, fmt.Errorf("copy the tls credentials for qemu's user: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fail(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".pem") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fail(err)
		}
		p := filepath.Join(tmp, e.Name())
		if err := os.WriteFile(p, b, 0o440); err != nil {
			return fail(err)
		}
		if err := os.Chown(p, 0, d.runGID); err != nil {
			return fail(err)
		}
	}
	if err := os.Chown(tmp, 0, d.runGID); err != nil {
		return fail(err)
	}
	if err := os.Chmod(tmp, 0o750); err != nil {
		return fail(err)
	}
	return tmp, done, nil
}
