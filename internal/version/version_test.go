package version

import (
	"strings"
	"testing"
)

func TestCompatible(t *testing.T) {
	for _, tt := range []struct {
		ctrl, agent string
		want        string // "" compatible, else a part of the error
	}{
		{"1.4.0", "1.4.7", ""},
		{"1.4.0", "1.3.2", ""},
		{"1.4.0", "1.5.0-rc1", ""},
		{"v1.4.0", "1.4.0-dev", ""},
		{"0.1.0-dev", "0.1.0-dev", ""},
		{"0.1.0", "0.2", ""},
		{"1.4.0", "1.2.9", "agent 1.2.9 is too old for controller 1.4.0 (minor versions at most 1 apart): the agent is older: upgrade it to 1.3 or 1.4"},
		{"1.4.0", "1.6.0", "agent 1.6.0 is too new for controller 1.4.0 (minor versions at most 1 apart): the controller is older: upgrade it to 1.5 or 1.6"},
		{"2.0.0", "1.9.0", "differ in their major version; controller and agents must have the same major version and minor versions at most 1 apart: upgrade the agent to 2.x"},
		{"1.9.0", "2.0.0", "upgrade the controller to 2.x"},
		{"1.4.0", "", "the agent's version \"\" is not MAJOR.MINOR.PATCH"},
		{"1.4.0", "dev", "install a released godwit"},
	} {
		err := Compatible(tt.ctrl, tt.agent)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s with %s: %v", tt.ctrl, tt.agent, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s with %s: %v, want %q", tt.ctrl, tt.agent, err, tt.want)
		}
	}
	if err := Compatible(Version, Version); err != nil {
		t.Errorf("this build with itself: %v", err)
	}
}
