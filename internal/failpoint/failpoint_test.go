package failpoint

import (
	"os"
	"os/exec"
	"testing"
)

func TestParse(t *testing.T) {
	got := parse(" live/after-prepare=kill, cold/after-stop ,x=exit,")
	want := map[string]string{"live/after-prepare": "kill", "cold/after-stop": "kill", "x": "exit"}
	if len(got) != len(want) {
		t.Fatalf("parse = %v; want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q; want %q", k, got[k], v)
		}
	}
	if parse("") != nil {
		t.Error("empty spec armed failpoints")
	}
}

// An armed failpoint kills its process with SIGKILL at that step; others
// do nothing.
func TestHitKills(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		Hit("not/armed")
		Hit("the/step")
		os.Exit(0) // not reached when armed
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHitKills$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", Env+"=the/step=kill")
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ProcessState.String() != "signal: killed" {
		t.Fatalf("child ended %v; want killed by the failpoint", err)
	}
}
