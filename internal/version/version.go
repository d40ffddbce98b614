// Package version holds godwit's version string, set at build time with
// -ldflags "-X github.com/godwit/godwit/internal/version.Version=...",
// and the rule by which a controller accepts agents of other versions.
package version

import (
	"fmt"
	"strconv"
	"strings"
)

// Version of this build.
var Version = "0.1.0-dev"

// Release is a version's MAJOR.MINOR.PATCH; what follows (-dev, -rc1,
// +build) does not count for compatibility.
type Release struct{ Major, Minor, Patch int }

func (r Release) String() string { return fmt.Sprintf("%d.%d.%d", r.Major, r.Minor, r.Patch) }

// Parse reads "1.4.2", "v1.4.2", "1.4.2-dev", "1.4" (patch 0).
func Parse(s string) (Release, error) {
	v := strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(v, "-+~"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Release{}, fmt.Errorf("version %q is not MAJOR.MINOR.PATCH", s)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return Release{}, fmt.Errorf("version %q is not MAJOR.MINOR.PATCH", s)
		}
		n[i] = x
	}
	return Release{n[0], n[1], n[2]}, nil
}

// MaxMinorSkew is how many minor releases a controller and its agents may
// be apart: one, so that a cluster is upgraded a minor release at a time,
// the controller first or the agents first, host by host, while
// everything keeps running (docs/deploy.md, "Upgrades").
const MaxMinorSkew = 1

// Compatible says whether a controller of version ctrl works with an
// agent of version agent: the same major version, minor versions at most
// MaxMinorSkew apart (patch releases never matter). The error says which
// side to upgrade.
func Compatible(ctrl, agent string) error {
	c, err := Parse(ctrl)
	if err != nil {
		return fmt.Errorf("the controller's %v", err)
	}
	a, err := Parse(agent)
	if err != nil {
		return fmt.Errorf("the agent's %v: install a released godwit on the host", err)
	}
	older := func(which string) string {
		return fmt.Sprintf("the %s is older: upgrade it to %d.%d or %d.%d", which, max(a.Major, c.Major), max(a.Minor, c.Minor)-MaxMinorSkew, max(a.Major, c.Major), max(a.Minor, c.Minor))
	}
	switch {
	case a.Major != c.Major:
		which := "agent"
		if c.Major < a.Major {
			which = "controller"
		}
		return fmt.Errorf("agent %s and controller %s differ in their major version; controller and agents must have the same major version and minor versions at most %d apart: upgrade the %s to %d.x", agent, ctrl, MaxMinorSkew, which, max(a.Major, c.Major))
	case a.Minor < c.Minor-MaxMinorSkew:
		return fmt.Errorf("agent %s is too old for controller %s (minor versions at most %d apart): %s", agent, ctrl, MaxMinorSkew, older("agent"))
	case a.Minor > c.Minor+MaxMinorSkew:
		return fmt.Errorf("agent %s is too new for controller %s (minor versions at most %d apart): %s", agent, ctrl, MaxMinorSkew, older("controller"))
	}
	return nil
}
