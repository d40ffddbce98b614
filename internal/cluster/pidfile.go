package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// A cluster directory records who runs in it, so that godwit down finds
// the supervisor and nothing outlives a supervisor that died:
//
//	DIR/up.pid            the supervisor (godwit up)
//	DIR/up.lock           locked by the supervisor while it lives
//	DIR/run/NAME.pid      each child: controller, host1..hostN
//	DIR/run/ready         written once every host is up; holds the accelerator
//
// A pid file holds the PID on its first line (so `kill $(head -1 up.pid)`
// works), the process start time on the second and, for an agent, its URL
// on the third. The start time guards against a recycled PID: a record
// whose process started at another time names someone else.

// PIDFile is where a running cluster's supervisor records its PID.
func PIDFile(dir string) string { return filepath.Join(dir, "up.pid") }

func runDir(dir string) string             { return filepath.Join(dir, "run") }
func childPIDFile(dir, name string) string { return filepath.Join(runDir(dir), name+".pid") }
func readyFile(dir string) string          { return filepath.Join(runDir(dir), "ready") }

// pidRecord is the content of a pid file.
type pidRecord struct {
	PID   int
	Start uint64 // process start time, clock ticks after boot; 0 if unknown
	URL   string // an agent's API URL
}

func (r pidRecord) String() string {
	s := strconv.Itoa(r.PID) + "\n" + strconv.FormatUint(r.Start, 10) + "\n"
	if r.URL != "" {
		s += r.URL + "\n"
	}
	return s
}

func parsePIDRecord(b []byte) (pidRecord, error) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var r pidRecord
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return r, fmt.Errorf("not a pid file: first line %q", lines[0])
	}
	r.PID = pid
	if len(lines) > 1 {
		if r.Start, err = strconv.ParseUint(strings.TrimSpace(lines[1]), 10, 64); err != nil {
			return r, fmt.Errorf("not a pid file: start time %q", lines[1])
		}
	}
	if len(lines) > 2 {
		r.URL = strings.TrimSpace(lines[2])
	}
	return r, nil
}

func readPIDFile(path string) (pidRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pidRecord{}, err
	}
	r, err := parsePIDRecord(b)
	if err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// recordOf describes the running process pid.
func recordOf(pid int, url string) pidRecord {
	start, _, _ := procStat(pid)
	return pidRecord{PID: pid, Start: start, URL: url}
}

// writePIDFile replaces path atomically.
func writePIDFile(path string, r pidRecord) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(r.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// alive reports whether the recorded process still runs (a zombie does
// not count).
func (r pidRecord) alive() bool {
	if r.PID <= 0 {
		return false
	}
	if err := syscall.Kill(r.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	start, zombie, err := procStat(r.PID)
	if err != nil {
		return false
	}
	return !zombie && (r.Start == 0 || start == r.Start)
}

// procStat reads a process's start time and whether it is a zombie from
// /proc/PID/stat.
func procStat(pid int) (start uint64, zombie bool, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, err
	}
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after the last ')' are plain: state is field 3, starttime 22.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, false, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0] == "Z" || f[0] == "X", err
}

// Running returns the PID of the live supervisor of the cluster in dir, or 0.
func Running(dir string) int {
	r, err := readPIDFile(PIDFile(dir))
	if err != nil || !r.alive() {
		return 0
	}
	return r.PID
}

// errRunning says a live supervisor holds the cluster directory.
type errRunning struct {
	dir string
	pid int
}

func (e errRunning) Error() string {
	pid := ""
	if e.pid != 0 {
		pid = fmt.Sprintf(" (pid %d)", e.pid)
	}
	return fmt.Sprintf("a cluster is already running in %s%s; stop it with: godwit down --dir %s", e.dir, pid, e.dir)
}

// acquire makes this process the supervisor of dir: it holds an
// exclusive lock on DIR/up.lock for as long as it lives (the kernel drops
// it when the process dies, however it dies, so a crash leaves nothing
// stale that blocks the next godwit up) and records its PID in up.pid.
func acquire(dir string) (release func(), err error) {
	lock, err := os.OpenFile(filepath.Join(dir, "up.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			r, _ := readPIDFile(PIDFile(dir))
			return nil, errRunning{dir, r.PID}
		}
		return nil, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	self := recordOf(os.Getpid(), "")
	if err := writePIDFile(PIDFile(dir), self); err != nil {
		lock.Close()
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	return func() {
		os.Remove(PIDFile(dir))
		lock.Close() // releases the lock
	}, nil
}

// member is a recorded child of a cluster.
type member struct {
	name string
	rec  pidRecord
}

// leftovers returns the children recorded in dir whose processes still
// run, agents first (sorted by name), the controller last.
func leftovers(dir string) []member {
	paths, _ := filepath.Glob(filepath.Join(runDir(dir), "*.pid"))
	var ms []member
	for _, p := range paths {
		r, err := readPIDFile(p)
		if err != nil || !r.alive() {
			os.Remove(p) // stale: the process is gone
			continue
		}
		ms = append(ms, member{name: strings.TrimSuffix(filepath.Base(p), ".pid"), rec: r})
	}
	sort.Slice(ms, func(i, j int) bool {
		ci, cj := ms[i].name == controllerName, ms[j].name == controllerName
		if ci != cj {
			return cj
		}
		return ms[i].name < ms[j].name
	})
	return ms
}

func describe(ms []member) string {
	var s []string
	for _, m := range ms {
		s = append(s, fmt.Sprintf("%s pid %d", m.name, m.rec.PID))
	}
	return strings.Join(s, ", ")
}
