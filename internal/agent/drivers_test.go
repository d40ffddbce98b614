package agent

// The agent's tests open drivers by name, as the godwit binary does: link
// both in.
import (
	_ "github.com/godwit/godwit/internal/driver/fake"
	_ "github.com/godwit/godwit/internal/driver/qemu"
)
