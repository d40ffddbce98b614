package api

// Strategies of the operations that are not live migrations, as plans and
// operations record them ("how", in the driver level's words). A live
// migration's strategy is the driver's own, e.g. "shared-storage/pre-copy"
// or "local-disk/block-copy+post-copy".
const (
	// Cold migration.
	StrategyColdShared   = "shared-storage/cold-restart" // stop, start on the destination from the same disk
	StrategyDiskTransfer = "local-disk/disk-transfer"    // stop, copy the local disk, start on the destination

	// Rebuild (evacuate, or in place).
	StrategyReuseDisk = "shared-storage/reuse-disk" // evacuate: same disk, new host
	StrategyReimage   = "local-disk/reimage"        // evacuate with --allow-data-loss: fresh disk from the image
	StrategyNoDisk    = "no-disk/restart"           // evacuate: a VM without a disk starts again elsewhere
	StrategyInPlace   = "in-place/reimage"          // rebuild: fresh disk from the image, same host

	// Resize.
	StrategyHotplug    = "online/hotplug"     // vCPU and memory hotplug, block_resize: the guest keeps running
	StrategyRestart    = "offline/restart"    // stop, change, start in place (--allow-restart)
	StrategyDefinition = "offline/definition" // a stopped VM: its next start has the new size
)
