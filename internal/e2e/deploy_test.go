package e2e

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	gcluster "github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/guestlog"
	"github.com/godwit/godwit/internal/hostinfo"
	"github.com/godwit/godwit/internal/testguest"
)

// TestDeployPackage deploys the Debian package the way docs/deploy.md
// says, on a network lab (netlab_test.go) instead of four machines. It
// builds the .deb (scripts/deb.sh; GODWIT_TEST_DEB names a built one)
// and installs it on this machine with dpkg -i, so that its maintainer
// scripts run: it checks the godwit user, the files, directories and
// conffiles with their owners and modes (deploy_dpkg_test.go), upgrades
// it (a conffile deleted), purges it and checks that nothing is left but
// the user, and installs it again for the deployment:
//
//   - godwit init makes the CA in /etc/godwit/pki (chown -R godwit:
//     after), /etc/godwit/controller.conf is edited in place, and the
//     controller runs in the root namespace from the installed unit's
//     ExecStart as the unit runs it: as its User= godwit, without
//     capabilities, with no_new_privs and its UMask (unitCommand), its
//     database in /var/lib/godwit/controller;
//   - each of three host namespaces runs the agent and its watchdog from
//     their units, with a copy of /etc/godwit/agent.conf edited as the
//     guide edits it (join tokens from godwit host add); a directory
//     stands in for the NFS pool;
//   - a VM is created on the shared pool and moved live, then its host's
//     agent is restarted (join line removed, sed as in the guide) and
//     the VM runs on, the same process.
//
// With QEMU and the test guest's kernel and busybox (requireQEMU's
// needs) the hosts run the qemu driver (TCG unless GODWIT_TEST_ACCEL
// says otherwise): the VM is the test guest built with the installed
// godwit and godwit-guest, and its heartbeat carries on, without a
// restart or trouble, across the move and the agent's restart. Without
// them, or with GODWIT_TEST_DEPLOY_DRIVER=fake, the hosts run the fake
// driver and the test says so in its log.
//
// The units are enabled (systemctl enable, which needs no running
// systemd) and the test ends with dpkg --purge: no file of the package
// is left, no unit enabled, the cluster's data (CA, database) is kept as
// postrm promises; the test then removes that data and the godwit user
// it made. It skips unless root, dpkg and a machine where no godwit
// package or data is found (requireDpkgInstall).
func TestDeployPackage(t *testing.T) {
	requireDpkgInstall(t)
	requireLabUnused(t) // early, and again just before the lab is built
	dir := t.TempDir()
	deb := buildPackage(t, dir)
	driver := "qemu"
	if why := deployQEMUMissing(); why != "" {
		driver = "fake"
		t.Logf("the hosts run the fake driver, not QEMU: %s", why)
	}
	pkg := newDebInstall(t, deb) // its cleanup purges, after every process below has stopped

	// An install, an upgrade, a purge, nothing between: nothing is left
	// but the user. The upgrade (the same package again: postinst
	// configure with the old version) comes after the administrator
	// deleted a conffile, which dpkg keeps deleted: the postinst copes.
	pkg.install()
	pkg.checkInstalled()
	if err := os.Remove(agentConfPath); err != nil {
		t.Fatal(err)
	}
	pkg.install()
	if _, err := os.Stat(agentConfPath); !os.IsNotExist(err) {
		t.Errorf("the upgrade brought back the deleted conffile %s (%v); dpkg keeps it deleted", agentConfPath, err)
	}
	pkg.purge()

	// Installed again (the godwit user exists, as after any purge) for the deployment.
	pkg.install()
	pkg.checkInstalled()
	enableUnits(t)
	d := deployCluster(t, dir, driver)
	d.moveAndRestart()
	d.procs.stopAll()
	d.checkControllerData()
	pkg.purge()
}

// deployQEMUMissing says why the deployment test cannot run QEMU ("" if
// it can): requireQEMU's reasons, or GODWIT_TEST_DEPLOY_DRIVER=fake.
func deployQEMUMissing() string {
	if os.Getenv("GODWIT_TEST_DEPLOY_DRIVER") == "fake" {
		return "GODWIT_TEST_DEPLOY_DRIVER=fake"
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return "qemu-system-x86_64 is not installed (make test installs it)"
	}
	return testguest.Missing()
}

// deployed is a cluster run from the installed package on a netLab.
type deployed struct {
	t      *testing.T
	dir    string
	driver string
	url    string
	pool   string
	procs  *deployProcs
	client *api.Client
	cli    func(args ...string) string
}

// The installed package's paths the test runs from.
const (
	installedExe  = "/usr/bin/godwit"
	installedPKI  = "/etc/godwit/pki"
	ctrlConfPath  = "/etc/godwit/controller.conf"
	agentConfPath = "/etc/godwit/agent.conf"
	ctrlDataDir   = "/var/lib/godwit/controller"
)

// deployCluster starts the controller and three hosts from the
// installed package, as docs/deploy.md sections 1 and 3 say, and waits
// until the hosts are up.
func deployCluster(t *testing.T, dir, driver string) *deployed {
	requireLabUnused(t)
	newNetLab(t, 3) // torn down by its cleanup
	ctrlAddr, err := gcluster.FreeAddr(labControllerIP)
	if err != nil {
		t.Fatal(err)
	}
	d := &deployed{t: t, dir: dir, driver: driver, url: "https://" + ctrlAddr, procs: &deployProcs{t: t, dir: dir}}
	// The NFS mount, on every host and the controller: the controller,
	// as godwit, reads the hosts' leases there.
	d.pool = filepath.Join(dir, "pool")
	for _, p := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(d.pool, 0o755); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the processes stop, then what they left
	// (QEMUs, a watchdog an agent started itself) is killed by PID.
	t.Cleanup(func() {
		for i := 1; i <= 3; i++ {
			if pid := gcluster.WatchdogPID(filepath.Join(dir, fmt.Sprintf("host%d", i))); pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if pids := hostinfo.QEMUPIDs(dir); len(pids) > 0 {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Errorf("the test left qemu processes running: %v (killed)", pids)
		}
	})
	t.Cleanup(d.procs.stopAll)

	// godwit init on the controller; its admin config is the CLI's.
	admin := filepath.Join(dir, "admin.json")
	env := append(os.Environ(), "GODWIT_CONFIG="+admin, "GODWIT_SERVER="+d.url)
	d.cli = func(args ...string) string {
		t.Helper()
		cmd := exec.Command(installedExe, args...)
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output() // stdout only: host add's token, -o json
		if err != nil {
			t.Fatalf("godwit %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}
	d.cli("init", "--tls-dir", installedPKI, "--address", labControllerIP)
	run(t, "chown", "-R", "godwit:godwit", installedPKI)

	// controller.conf edited in place: it stays root:godwit 0640, and
	// keeps the package's data-dir and tls-dir.
	editConf(t, ctrlConfPath, ctrlConfPath, map[string]string{"listen": ctrlAddr, "shared-dir": d.pool, "host-down-after": "5s"})
	d.procs.start("controller", "", unitCommand(t, "/", "godwit-controller.service", installedExe, ctrlConfPath))
	eventually(t, 20*time.Second, "the controller answers", func() error {
		cmd := exec.Command(installedExe, "host", "list")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	d.checkControllerUser()

	for i := 1; i <= 3; i++ {
		host := fmt.Sprintf("host%d", i)
		token := strings.TrimSpace(d.cli("host", "add", host, "--controller-url", d.url))
		conf := d.agentConf(i, token)
		// The watchdog unit first, as the agent's After= orders it.
		wd := d.procs.start(host+"-watchdog", labHostNS(i), unitCommand(t, "/", "godwit-agent-watchdog.service", installedExe, conf))
		if driver == "qemu" {
			// It guards the host's shared-pool QEMUs: the agent must
			// find it, by its pid file, and start none of its own.
			eventually(t, 10*time.Second, host+"'s watchdog writes its pid file", func() error {
				_, err := os.Stat(filepath.Join(dir, host, "fence", "watchdog.pid"))
				return err
			})
		}
		d.procs.start(host, labHostNS(i), unitCommand(t, "/", "godwit-agent.service", installedExe, conf))
		if driver == "fake" {
			// Nothing to guard: it leaves, status 0, and the unit's
			// Restart=on-failure does not restart it.
			if err := d.procs.wait(wd, 20*time.Second); err != nil {
				t.Errorf("%s's watchdog: %v (want: nothing to guard, status 0)", host, err)
			}
		}
	}
	d.client = userClient(t, installedPKI, d.url, admin)
	eventually(t, 30*time.Second, "three hosts up", func() error {
		hs, err := d.client.Hosts(bg)
		if err != nil {
			return err
		}
		up := 0
		for _, h := range hs {
			if h.State == api.HostUp {
				up++
			}
		}
		if up != 3 {
			return fmt.Errorf("%d of %d hosts up", up, len(hs))
		}
		return nil
	})
	if driver == "qemu" {
		for i := 1; i <= 3; i++ {
			d.watchdogFound(fmt.Sprintf("host%d", i))
		}
	}
	return d
}

// requireLabUnused fails the test if processes run in the network lab's
// namespaces: another test run on this machine (another checkout's)
// uses the lab, whose fixed names newNetLab would tear down under it.
// A killed run's leftovers count too: stop them, then ip netns del.
func requireLabUnused(t *testing.T) {
	t.Helper()
	for _, ns := range []string{labHostNS(1), labHostNS(2), labHostNS(3), labClientNS} {
		out, err := exec.Command("ip", "netns", "pids", ns).Output()
		if pids := strings.Fields(string(out)); err == nil && len(pids) > 0 {
			t.Fatalf("network namespace %s is in use by pids %v: another test run's network lab (wait for it; a killed run's: stop them, ip netns del %s)",
				ns, pids, ns)
		}
	}
}

// agentConf is host i's copy of the installed agent.conf, edited as
// docs/deploy.md section 3 says (the state directory one per host: three
// hosts share this machine), with the join token if not "".
func (d *deployed) agentConf(i int, join string) string {
	host := fmt.Sprintf("host%d", i)
	set := map[string]string{
		"name": host, "controller": d.url, "listen": labHostAddr(i) + ":7401", "advertise": "https://" + labHostAddr(i) + ":7401",
		"state-dir": filepath.Join(d.dir, host), "shared-dir": d.pool, "driver": d.driver, "heartbeat": "500ms",
	}
	if d.driver == "qemu" {
		// As the other real-QEMU tests (harness_test.go): TCG, which
		// boots Debian's kernel everywhere, unless GODWIT_TEST_ACCEL says.
		set["accel"] = "tcg"
		if a := os.Getenv("GODWIT_TEST_ACCEL"); a != "" {
			set["accel"] = a
		}
	}
	if join != "" {
		set["join"] = join
	}
	return editConf(d.t, agentConfPath, filepath.Join(d.dir, host+".conf"), set)
}

// checkControllerUser checks that the controller runs as the unit says:
// as its User= and Group=, with no_new_privs and no capabilities.
func (d *deployed) checkControllerUser() {
	d.t.Helper()
	pw, err := user.Lookup("godwit")
	if err != nil {
		d.t.Fatal(err)
	}
	st, err := procStatus(d.procs.pid("controller"))
	if err != nil {
		d.t.Fatalf("the controller: %v", err)
	}
	ids := func(id string) string { return strings.Repeat(id+"\t", 3) + id }
	if st["Uid"] != ids(pw.Uid) || st["Gid"] != ids(pw.Gid) || st["NoNewPrivs"] != "1" ||
		st["CapBnd"] != "0000000000000000" || st["CapEff"] != "0000000000000000" {
		d.t.Errorf("the controller runs with Uid %q Gid %q NoNewPrivs %q CapBnd %q CapEff %q; want the godwit user's %s:%s, no_new_privs, no capabilities",
			st["Uid"], st["Gid"], st["NoNewPrivs"], st["CapBnd"], st["CapEff"], pw.Uid, pw.Gid)
	}
}

// watchdogFound waits until host's agent reports that it found its
// unit's watchdog (and started none of its own).
func (d *deployed) watchdogFound(host string) {
	d.t.Helper()
	want := fmt.Sprintf(`msg="fencing watchdog found" host=%s watchdog_pid=%d`, host, d.procs.pid(host+"-watchdog"))
	eventually(d.t, 20*time.Second, host+"'s agent finds its unit's watchdog", func() error {
		b, _ := os.ReadFile(filepath.Join(d.dir, host+".log"))
		if strings.Contains(string(b), "fencing watchdog started") {
			d.t.Fatalf("%s's agent started a watchdog of its own:\n%s", host, b)
		}
		if !strings.Contains(string(b), want) {
			return fmt.Errorf("no %q in its log yet", want)
		}
		return nil
	})
}

// moveAndRestart creates web-1 on host1's shared pool, moves it live to
// host2, restarts host2's agent without its join line (docs/deploy.md)
// and deletes the VM. With QEMU the guest's heartbeat must carry on
// across both, its QEMU the one process moved and then kept.
func (d *deployed) moveAndRestart() {
	t, qemu := d.t, d.driver == "qemu"
	image, extra := "tiny", []string(nil)
	if qemu {
		// Built by the installed godwit from the installed godwit-guest.
		d.cli("image", "build-testguest", "--out", filepath.Join(d.dir, "guest"), "--import=testguest")
		image = "testguest"
		extra = []string{"--cmdline", "dirty_mb=8 dirty_rate_mb=4"}
	} else {
		kernel := filepath.Join(d.dir, "vmlinuz")
		if err := gcluster.WriteFakeKernel(kernel); err != nil {
			t.Fatal(err)
		}
		d.cli("image", "import", "tiny", "--kernel", kernel)
	}
	// The smallest guest the e2e tests boot (128 MiB: Debian's kernel
	// with the test guest's initramfs does not boot in 64).
	d.cli(append([]string{"vm", "create", "web-1", "--image", image, "--memory", "128M", "--disk", "16M", "--pool", "shared", "--host", "host1"}, extra...)...)
	eventually(t, 60*time.Second, "web-1 running on host1", func() error { return vmOn(d.client, "web-1", "host1") })
	g := deployGuest{t: t, c: d.client, vm: "web-1"}
	var before, after guestlog.Heartbeat
	if qemu {
		before = g.waitBeat(2, 90*time.Second)
	}
	vm, err := d.client.VM(bg, "web-1")
	if err != nil {
		t.Fatal(err)
	}

	// Capped at 125 MB/s, as the other live moves under TCG (docs/testing.md).
	var m api.Migration
	if err := json.Unmarshal([]byte(d.cli("migrate", "web-1", "--live", "--to", "host2", "--bandwidth", "125", "--wait", "-o", "json")), &m); err != nil {
		t.Fatal(err)
	}
	if m.State != api.MigCompleted {
		t.Fatalf("the live move ended %s: %s", m.State, m.Reason)
	}
	if err := vmOn(d.client, "web-1", "host2"); err != nil {
		t.Fatal(err)
	}
	if qemu {
		moved, err := d.client.VM(bg, "web-1")
		if err != nil {
			t.Fatal(err)
		}
		if pids := hostinfo.QEMUPIDs(vm.ID); len(pids) != 1 || pids[0] != moved.PID || moved.PID == vm.PID {
			t.Errorf("after the move web-1's qemu processes are %v; want only host2's, pid %d (host1's was %d)", pids, moved.PID, vm.PID)
		}
		first := g.healthy(before.Counter).First
		after = g.waitBeat(first.Counter+2, 30*time.Second)
		t.Logf("live move host1 → host2 (%s): %d ms, downtime %d ms; heartbeat %d before, %d first after, %d later",
			m.Strategy, m.Progress.TotalTimeMS, m.Progress.DowntimeMS, before.Counter, first.Counter, after.Counter)
		vm = moved
	}

	// docs/deploy.md: remove the join line once joined; restart the
	// agent (systemctl restart: SIGTERM to the main process only,
	// KillMode=process); the VM runs on.
	conf := filepath.Join(d.dir, "host2.conf")
	run(t, "sed", "-i", "/^join *=/d", conf)
	d.procs.stop("host2")
	restarted := time.Now() // one machine: the controller's clock is ours
	d.procs.start("host2", labHostNS(2), unitCommand(t, "/", "godwit-agent.service", installedExe, conf))
	eventually(t, 30*time.Second, "host2 up again, web-1 running there", func() error {
		h, err := d.client.Host(bg, "host2")
		if err != nil {
			return err
		}
		if h.State != api.HostUp || !h.LastHeartbeat.After(restarted) {
			return fmt.Errorf("host2 %s, no heartbeat from its new agent yet", h.State)
		}
		return vmOn(d.client, "web-1", "host2")
	})
	if qemu {
		if got, err := d.client.VM(bg, "web-1"); err != nil || got.PID != vm.PID {
			t.Errorf("after the agent's restart web-1 has pid %d (%v); want its qemu kept, pid %d", got.PID, err, vm.PID)
		}
		if pids := hostinfo.QEMUPIDs(vm.ID); len(pids) != 1 || pids[0] != vm.PID {
			t.Errorf("after the agent's restart web-1's qemu processes are %v; want %d", pids, vm.PID)
		}
		last := g.waitBeat(after.Counter+2, 30*time.Second)
		g.healthy(before.Counter)
		t.Logf("host2's agent restarted: web-1's qemu kept (pid %d), heartbeat %d", vm.PID, last.Counter)
	}
	d.cli("vm", "delete", "web-1")
	if qemu {
		eventually(t, 30*time.Second, "web-1's qemu gone", func() error {
			if pids := hostinfo.QEMUPIDs(vm.ID); len(pids) > 0 {
				return fmt.Errorf("qemu processes %v", pids)
			}
			return nil
		})
	}
}

// checkControllerData checks, once the controller has stopped, that
// what it wrote in its data directory is its user's alone: the godwit
// user's, no access for others (UMask=0077).
func (d *deployed) checkControllerData() {
	d.t.Helper()
	n := 0
	err := filepath.WalkDir(ctrlDataDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		owner, group, mode, err := ownerOf(p)
		if err != nil {
			return err
		}
		if owner != "godwit" || group != "godwit" || mode.Perm()&0o077 != 0 {
			d.t.Errorf("the controller's %s is %s:%s %v; want godwit:godwit, no access for others", p, owner, group, mode)
		}
		if !e.IsDir() {
			n++
		}
		return nil
	})
	if err != nil || n == 0 {
		d.t.Errorf("the controller's data directory %s: %v, %d files; want its database", ctrlDataDir, err, n)
	}
}

// run runs a command, failing the test if it fails.
func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// The watchdog unit's watchdog (--stay, reading agent.conf) is the one
// the agent uses: the agent finds it (by its pid file and lock, its
// command line naming no state directory) and starts none of its own;
// it outlives the agent's stop, and stays when no agent runs. No VM: the
// fencing itself is TestSplitBrainFencedQEMU's.
func TestWatchdogUnitFoundByAgent(t *testing.T) {
	requireQEMU(t)
	if os.Geteuid() != 0 {
		t.Skip("the deployment tests run the agent as its unit does: as root")
	}
	dir := t.TempDir()
	root := extractPackage(t, dir)
	exe := filepath.Join(root, "usr/bin/godwit")
	state := filepath.Join(dir, "agent")
	addr, err := gcluster.FreeAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	conf := editConf(t, filepath.Join(root, "etc/godwit/agent.conf"), filepath.Join(dir, "agent.conf"), map[string]string{
		"name": "host1", "controller": "http://127.0.0.1:1", "listen": addr, "state-dir": state,
		"shared-dir": filepath.Join(dir, "pool"), "driver": "qemu", "accel": "tcg", "heartbeat": "500ms",
	})
	procs := &deployProcs{t: t, dir: dir}
	t.Cleanup(procs.stopAll)
	procs.start("watchdog", "", unitCommand(t, root, "godwit-agent-watchdog.service", exe, conf))
	pidFile := filepath.Join(state, "fence", "watchdog.pid")
	eventually(t, 10*time.Second, "the unit's watchdog writes its pid file", func() error {
		_, err := os.Stat(pidFile)
		return err
	})
	wdPID := procs.cmds["watchdog"].Process.Pid
	procs.start("agent", "", unitCommand(t, root, "godwit-agent.service", exe, conf))
	agentLog := filepath.Join(dir, "agent.log")
	eventually(t, 20*time.Second, "the agent finds the unit's watchdog", func() error {
		b, _ := os.ReadFile(agentLog)
		if strings.Contains(string(b), "fencing watchdog started") {
			t.Fatalf("the agent started a watchdog of its own:\n%s", b)
		}
		if !strings.Contains(string(b), fmt.Sprintf(`msg="fencing watchdog found" host=host1 watchdog_pid=%d`, wdPID)) {
			return fmt.Errorf("not yet:\n%s", b)
		}
		return nil
	})
	if n := watchdogsOf(t, state); n != 1 {
		t.Errorf("%d watchdogs guard %s; want the unit's only", n, state)
	}
	// systemctl stop godwit-agent: the watchdog stays, and stays on.
	procs.stop("agent")
	time.Sleep(2 * time.Second)
	if err := procs.wait("watchdog", 0); err == nil {
		t.Fatal("the unit's watchdog left with the agent")
	}
}

// watchdogsOf counts the agent-watchdog processes guarding state: those
// started with --state-dir state, and those whose config file names it.
func watchdogsOf(t *testing.T, state string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), "\x00agent-watchdog\x00") {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		for i, a := range args {
			if i+1 < len(args) && a == "--state-dir" && args[i+1] == state {
				n++
			}
			if i+1 < len(args) && a == "--config" {
				if c, err := os.ReadFile(args[i+1]); err == nil && strings.Contains(string(c), "state-dir = "+state+"\n") {
					n++
				}
			}
		}
	}
	return n
}
