//go:build !linux

package cli

import "io"

// termWidth is 0 (unknown) where the terminal is not asked.
func termWidth(io.Writer) int { return 0 }
