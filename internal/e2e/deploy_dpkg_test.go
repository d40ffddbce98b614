package e2e

import (
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Debian package for the deployment tests: built (or named by
// GODWIT_TEST_DEB), extracted, or installed on this machine with dpkg and
// purged again.

// buildPackage builds the .deb into dir (GODWIT_TEST_DEB names a built
// one) and returns its path. It skips the test unless GODWIT_TEST_BIN
// (make test) or GODWIT_TEST_DEB is set and dpkg-deb and ip are
// installed.
func buildPackage(t *testing.T, dir string) string {
	t.Helper()
	if os.Getenv("GODWIT_TEST_BIN") == "" && os.Getenv("GODWIT_TEST_DEB") == "" {
		t.Skip("set GODWIT_TEST_BIN (make test does) or GODWIT_TEST_DEB to run the deployment tests")
	}
	for _, tool := range []string{"dpkg-deb", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the deployment tests need %s", tool)
		}
	}
	if deb := os.Getenv("GODWIT_TEST_DEB"); deb != "" {
		return deb
	}
	cmd := exec.Command("../../scripts/deb.sh")
	// Uncompressed: xz would take longer than the rest of the build.
	cmd.Env = append(os.Environ(), "OUT="+dir, "DEB_COMPRESS=none")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1] // in OUT
}

// extractPackage builds the .deb and extracts it into dir/root, which it
// returns: the package's files without installing it (the maintainer
// scripts do not run).
func extractPackage(t *testing.T, dir string) string {
	t.Helper()
	deb := buildPackage(t, dir)
	root := filepath.Join(dir, "root")
	if out, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v: %s", deb, err, out)
	}
	return root
}

// The directories the package and its postinst make, where the cluster
// keeps its data: the test refuses to touch a machine that has them.
var godwitDataDirs = []string{"/etc/godwit", "/var/lib/godwit"}

// requireDpkgInstall skips unless the package may be installed on this
// machine and purged after: root, dpkg, no godwit package installed and
// none of its directories (an operator's install, or the data a purged
// one left, the cluster's CA among them, is never disturbed).
func requireDpkgInstall(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("installs the Debian package on this machine: not in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("installs the Debian package with dpkg and makes network namespaces: it needs root (make test runs as root)")
	}
	for _, tool := range []string{"dpkg", "dpkg-query"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("installs the Debian package: it needs %s (a Debian machine)", tool)
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "godwit").CombinedOutput(); err == nil {
		t.Skipf("a godwit package is known to dpkg on this machine (%s): the test installs and purges its own and leaves this one alone "+
			"(if a killed run of this test left it: dpkg --purge godwit)", strings.TrimSpace(string(out)))
	}
	for _, d := range godwitDataDirs {
		if _, err := os.Lstat(d); err == nil {
			t.Skipf("%s exists on this machine (an earlier install's data, perhaps a cluster's CA): the test installs the package "+
				"only where it can remove everything after (if a killed run of this test left it: rm -r %s)", d, strings.Join(godwitDataDirs, " "))
		}
	}
}

// debInstall is the package installed on this machine with dpkg -i, and
// purged with dpkg --purge in the test's cleanup at the latest. The
// cleanup also removes what the package promises to keep on purge (the
// cluster's data, the godwit user if the test's install made it), so
// that the machine is left as it was found.
type debInstall struct {
	t           *testing.T
	deb         string
	userExisted bool
	installed   bool
	files       []string // dpkg -L godwit at install
}

// newDebInstall prepares to install deb. Call it before starting any
// process that runs from the installed files: its cleanup, which purges
// the package, must run after theirs.
func newDebInstall(t *testing.T, deb string) *debInstall {
	t.Helper()
	requireDpkgInstall(t)
	_, err := user.Lookup("godwit")
	d := &debInstall{t: t, deb: deb, userExisted: err == nil}
	t.Cleanup(d.cleanup)
	return d
}

// install installs the package with dpkg -i: its postinst runs.
func (d *debInstall) install() {
	d.t.Helper()
	d.installed = true // a failed dpkg -i may leave it half-installed: purge it all the same
	if out, err := dpkgLocked(d.t, "-i", d.deb); err != nil {
		d.t.Fatalf("dpkg -i %s: %v\n%s", d.deb, err, out)
	}
	out, err := exec.Command("dpkg", "-L", "godwit").Output()
	if err != nil {
		d.t.Fatalf("dpkg -L godwit: %v", err)
	}
	d.files = strings.Fields(string(out))
}

// checkInstalled checks what docs/deploy.md ("The package") says an
// installed package holds: the godwit system user, the files, the
// directories the postinst makes, with their owners and modes, and the
// conffiles.
func (d *debInstall) checkInstalled() {
	t := d.t
	t.Helper()
	if st := query(t, "${Status}"); st != "install ok installed" {
		t.Errorf("dpkg says godwit is %q, want install ok installed", st)
	}
	if cf := query(t, "${Conffiles}"); !strings.Contains(cf, "/etc/godwit/controller.conf ") || !strings.Contains(cf, "/etc/godwit/agent.conf ") {
		t.Errorf("conffiles: %q; want /etc/godwit/controller.conf and /etc/godwit/agent.conf", cf)
	}
	// The system user: no login, home /var/lib/godwit, its own group.
	out, err := exec.Command("getent", "passwd", "godwit").Output()
	f := strings.Split(strings.TrimSpace(string(out)), ":")
	if err != nil || len(f) != 7 {
		t.Fatalf("getent passwd godwit: %v %q: the postinst made no godwit user", err, out)
	}
	uid, _ := strconv.Atoi(f[2])
	g, gerr := user.LookupGroupId(f[3])
	if uid == 0 || uid >= 1000 || gerr != nil || g.Name != "godwit" || f[5] != "/var/lib/godwit" || f[6] != "/usr/sbin/nologin" {
		t.Errorf("the godwit user is %q (group %v %v); want a system user (uid 1-999), group godwit, home /var/lib/godwit, shell /usr/sbin/nologin", out, g, gerr)
	}
	const dir = fs.ModeDir
	for _, w := range []struct {
		path, owner, group string
		mode               fs.FileMode
	}{
		{"/usr/bin/godwit", "root", "root", 0o755},
		{"/usr/bin/godwit-guest", "root", "root", 0o755},
		{"/lib/systemd/system/godwit-controller.service", "root", "root", 0o644},
		{"/lib/systemd/system/godwit-agent.service", "root", "root", 0o644},
		{"/lib/systemd/system/godwit-agent-watchdog.service", "root", "root", 0o644},
		{"/usr/share/doc/godwit/deploy.md", "root", "root", 0o644},
		{"/etc/godwit", "root", "root", dir | 0o755},
		{"/etc/godwit/controller.conf", "root", "godwit", 0o640},
		{"/etc/godwit/agent.conf", "root", "root", 0o600},
		{"/etc/godwit/pki", "godwit", "godwit", dir | 0o700},
		{"/var/lib/godwit", "root", "root", dir | 0o755},
		{"/var/lib/godwit/controller", "godwit", "godwit", dir | 0o700},
		{"/var/lib/godwit/agent", "root", "root", dir | 0o700},
	} {
		owner, group, mode, err := ownerOf(w.path)
		if err != nil {
			t.Errorf("after dpkg -i: %v", err)
		} else if owner != w.owner || group != w.group || mode != w.mode {
			t.Errorf("%s is %s:%s %v; want %s:%s %v", w.path, owner, group, mode, w.owner, w.group, w.mode)
		}
	}
}

// purge removes the package with dpkg --purge (prerm, postrm remove and
// purge run) and checks what is left: none of the package's files, its
// conffiles included (edited or not), no unit still enabled, and under
// /etc/godwit and /var/lib/godwit only the data the cluster wrote there
// (the CA, the controller's database), which postrm promises to keep, with
// the directories holding it; the directories it made that hold no data
// are gone. The godwit user stays, as postrm promises.
func (d *debInstall) purge() {
	t := d.t
	t.Helper()
	pkgFiles := map[string]bool{}
	for _, f := range d.files {
		pkgFiles[f] = true
	}
	// The data: whatever is under the package's directories and not
	// its own.
	data := map[string]uint32{}
	for _, root := range godwitDataDirs {
		_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && !pkgFiles[p] {
				if fi, err := e.Info(); err == nil {
					data[p] = fi.Sys().(*syscall.Stat_t).Uid
				}
			}
			return nil
		})
	}
	kept := slices.Sorted(maps.Keys(data))
	_, err := user.Lookup("godwit")
	hadUser := err == nil
	out, err := dpkgLocked(t, "--purge", "godwit")
	if err != nil {
		t.Fatalf("dpkg --purge godwit: %v\n%s", err, out)
	}
	d.installed = false
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Status}", "godwit").Output(); err == nil && !strings.Contains(string(out), "not-installed") {
		t.Errorf("after dpkg --purge dpkg says godwit is %q", out)
	}
	for _, f := range d.files {
		fi, err := os.Stat(f)
		if err != nil || (fi.IsDir() && !strings.Contains(f, "godwit")) { // /usr/bin, /etc, /lib (a link to usr/lib), ...
			continue
		}
		if !holdsData(f, data) {
			t.Errorf("dpkg --purge left the package's %s", f)
		}
	}
	for p, uid := range data {
		if fi, err := os.Lstat(p); err != nil {
			t.Errorf("dpkg --purge deleted the cluster's %s (postrm promises to keep the data): %v", p, err)
		} else if got := fi.Sys().(*syscall.Stat_t).Uid; got != uid {
			t.Errorf("after dpkg --purge %s belongs to uid %d, was %d", p, got, uid)
		}
	}
	for _, root := range godwitDataDirs {
		_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if _, ok := data[p]; !ok && !(e.IsDir() && holdsData(p, data)) {
				t.Errorf("dpkg --purge left %s, which holds no data of the cluster", p)
			}
			return nil
		})
	}
	if len(kept) > 0 {
		t.Logf("dpkg --purge kept the cluster's data, as postrm promises: %s", strings.Join(kept, " "))
	}
	if links := enabledLinks(); len(links) > 0 {
		t.Errorf("after dpkg --purge the units are still enabled: %v (prerm disables them)", links)
	}
	for _, f := range []string{"/etc/godwit/controller.conf", "/etc/godwit/agent.conf"} {
		if _, err := os.Lstat(f); !os.IsNotExist(err) {
			t.Errorf("dpkg --purge left the conffile %s (%v)", f, err)
		}
	}
	if _, err := user.Lookup("godwit"); hadUser && err != nil {
		t.Errorf("dpkg --purge removed the godwit user (postrm keeps it: files may still belong to it): %v", err)
	}
}

// cleanup purges the package if it is still installed, and removes what
// a purge keeps: the cluster's data, enabled units' links a failing prerm
// left, and the godwit user and group if the test's install made them.
// The test made sure at its start that none of it was there before.
func (d *debInstall) cleanup() {
	if d.installed {
		d.purge()
	}
	for _, p := range godwitDataDirs {
		if err := os.RemoveAll(p); err != nil {
			d.t.Errorf("remove the test cluster's data: %v", err)
		}
	}
	for _, l := range enabledLinks() {
		_ = os.Remove(l)
	}
	if _, err := user.Lookup("godwit"); d.userExisted || err != nil {
		return
	}
	if out, err := exec.Command("userdel", "godwit").CombinedOutput(); err != nil {
		d.t.Errorf("userdel godwit: %v: %s", err, out)
	}
	if _, err := user.LookupGroup("godwit"); err == nil { // userdel removes it with USERGROUPS_ENAB
		if out, err := exec.Command("groupdel", "godwit").CombinedOutput(); err != nil {
			d.t.Errorf("groupdel godwit: %v: %s", err, out)
		}
	}
}

// dpkgLocked runs dpkg with args, waiting (up to dpkgLockWait) while
// another dpkg or apt holds dpkg's lock.
func dpkgLocked(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	deadline := time.Now().Add(dpkgLockWait)
	for logged := false; ; time.Sleep(time.Second) {
		out, err := exec.Command("dpkg", args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "lock") || time.Now().After(deadline) {
			return out, err
		}
		if !logged {
			t.Logf("dpkg %s: waiting up to %s for dpkg's lock: %s", strings.Join(args, " "), dpkgLockWait, strings.TrimSpace(string(out)))
			logged = true
		}
	}
}

// dpkgLockWait is how long dpkgLocked waits for another dpkg or apt.
const dpkgLockWait = 3 * time.Minute

// query is a field of the godwit package's dpkg status (dpkg-query -f).
func query(t *testing.T, field string) string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f", field, "godwit").Output()
	if err != nil {
		t.Fatalf("dpkg-query -W -f %s godwit: %v", field, err)
	}
	return strings.TrimSpace(string(out))
}

// holdsData says whether directory dir holds one of data's files.
func holdsData(dir string, data map[string]uint32) bool {
	for p := range data {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

// ownerOf is path's owner and group by name, and its mode.
func ownerOf(path string) (owner, group string, mode fs.FileMode, err error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return "", "", 0, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	owner, group = strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username
	}
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	return owner, group, fi.Mode() & (fs.ModeType | fs.ModePerm), nil
}

// godwitUnits are the package's systemd units.
var godwitUnits = []string{"godwit-controller.service", "godwit-agent-watchdog.service", "godwit-agent.service"}

// enableUnits enables the units as docs/deploy.md does (systemctl enable;
// without --now where systemd does not run, as on a test machine). It
// only makes their links in /etc/systemd/system, which systemctl does
// without systemd running: the purge must remove them (prerm disables).
// Without systemctl it does nothing.
func enableUnits(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Log("no systemctl: the units are not enabled, and the purge's disabling them is not checked")
		return
	}
	if out, err := exec.Command("systemctl", append([]string{"enable"}, godwitUnits...)...).CombinedOutput(); err != nil {
		t.Fatalf("systemctl enable: %v: %s", err, out)
	}
	if len(enabledLinks()) != len(godwitUnits) {
		t.Fatalf("systemctl enable made %v; want a link for each of %v", enabledLinks(), godwitUnits)
	}
}

// enabledLinks are the links in /etc/systemd/system that enable a
// godwit unit.
func enabledLinks() []string {
	var links []string
	for _, u := range godwitUnits {
		m, _ := filepath.Glob(filepath.Join("/etc/systemd/system/*.wants", u))
		links = append(links, m...)
	}
	slices.Sort(links)
	return links
}
