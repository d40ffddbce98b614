package api

import "strings"

// Strategy names how an operation does its work, in the driver level's
// words: "<disk>/<method>". A live migration's method is pre-copy
// followed by the techniques it turned to on the way, each after a
// "+": "shared-storage/pre-copy+auto-converge+post-copy". Drivers build
// it from StrategyLiveShared or StrategyLiveBlockCopy with With; code
// asks it with Has, PostCopy and AutoConverge, never by searching the
// text. The JSON is the string itself.
type Strategy string

// Live migration strategies, as a driver starts them.
const (
	// StrategyLiveShared: the disk is shared (or there is none); only
	// memory and device state move.
	StrategyLiveShared Strategy = "shared-storage/pre-copy"
	// StrategyLiveBlockCopy: a local disk is mirrored into the
	// destination's empty copy (NBD) while memory moves.
	StrategyLiveBlockCopy Strategy = "block-copy/pre-copy"
)

// Strategies of the operations that are not live migrations, as plans and
// operations record them.
const (
	// Cold migration.
	StrategyColdShared   Strategy = "shared-storage/cold-restart" // stop, start on the destination from the same disk
	StrategyDiskTransfer Strategy = "local-disk/disk-transfer"    // stop, copy the local disk, start on the destination

	// Rebuild (evacuate, or in place).
	StrategyReuseDisk Strategy = "shared-storage/reuse-disk" // evacuate: same disk, new host
	StrategyReimage   Strategy = "local-disk/reimage"        // evacuate with --allow-data-loss: fresh disk from the image
	StrategyNoDisk    Strategy = "no-disk/restart"           // evacuate: a VM without a disk starts again elsewhere
	StrategyInPlace   Strategy = "in-place/reimage"          // rebuild: fresh disk from the image, same host

	// Resize.
	StrategyHotplug    Strategy = "online/hotplug"     // vCPU and memory hotplug, block_resize: the guest keeps running
	StrategyRestart    Strategy = "offline/restart"    // stop, change, start in place (--allow-restart)
	StrategyDefinition Strategy = "offline/definition" // a stopped VM: its next start has the new size
)

// Technique is one way a live migration moves memory and makes it
// converge. A live Strategy's method lists the techniques it ran, and
// Convergence.Strategy names the one the convergence engine runs now.
// The names are those of the policies (Policy) that ask for them, but a
// policy is what was asked and a technique what runs: the auto policy
// runs any of them.
type Technique string

// Techniques, in the order a strategy lists them.
const (
	TechniquePreCopy      Technique = "pre-copy"      // send all memory, then what the guest dirtied, pass after pass
	TechniqueAutoConverge Technique = "auto-converge" // pre-copy with the guest's vCPUs throttled
	TechniquePostCopy     Technique = "post-copy"     // the guest runs on the destination; its memory follows on demand
)

// Techniques lists the techniques in the order a strategy lists them.
var Techniques = []Technique{TechniquePreCopy, TechniqueAutoConverge, TechniquePostCopy}

// rank is a technique's place in Techniques; any other part of a
// method ranks after them all.
func rank(t Technique) int {
	for i, o := range Techniques {
		if o == t {
			return i
		}
	}
	return len(Techniques)
}

// split returns the part before the slash and the method's parts.
func (s Strategy) split() (disk string, method []string) {
	disk, rest, ok := strings.Cut(string(s), "/")
	if !ok {
		disk, rest = "", string(s)
	}
	if rest == "" {
		return disk, nil
	}
	return disk, strings.Split(rest, "+")
}

// Has reports whether the strategy ran technique t.
func (s Strategy) Has(t Technique) bool {
	_, method := s.split()
	for _, m := range method {
		if Technique(m) == t {
			return true
		}
	}
	return false
}

// PostCopy reports whether a live migration switched to post-copy: from
// then on the guest runs on the destination while part of its memory is
// still on the source, and the move can only finish, never roll back.
func (s Strategy) PostCopy() bool { return s.Has(TechniquePostCopy) }

// AutoConverge reports whether a live migration throttled the guest's
// vCPUs to converge.
func (s Strategy) AutoConverge() bool { return s.Has(TechniqueAutoConverge) }

// With returns the strategy with technique t added to its method, once,
// in the order techniques are listed (pre-copy, auto-converge,
// post-copy): a strategy that throttled after switching to post-copy
// still reads "pre-copy+auto-converge+post-copy".
func (s Strategy) With(t Technique) Strategy {
	if s.Has(t) {
		return s
	}
	disk, method := s.split()
	at := len(method)
	for i, m := range method {
		if r := rank(Technique(m)); r < len(Techniques) && r > rank(t) {
			at = i
			break
		}
	}
	method = append(method[:at], append([]string{string(t)}, method[at:]...)...)
	out := strings.Join(method, "+")
	if disk != "" {
		out = disk + "/" + out
	}
	return Strategy(out)
}
