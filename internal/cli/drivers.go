package cli

// The hypervisor drivers the godwit binary offers: each registers itself
// with package driver when linked in, and the agent opens the one
// --driver names through that registry (driver.Names lists them).
import (
	"strings"

	_ "github.com/godwit/godwit/internal/driver/fake"
	_ "github.com/godwit/godwit/internal/driver/qemu"
)

// oneOf lists choices for a help text or a usage error: "a, b or c".
func oneOf(choices []string) string {
	if len(choices) < 2 {
		return strings.Join(choices, "")
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}
