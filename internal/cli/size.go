package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseMiB reads a size as MiB: 256M, 1G, 1.5G, 512MiB, 2GiB, 1T; a plain
// number is MiB. Units are binary (G = 1024 MiB).
func parseMiB(s string) (int, error) {
	in := strings.TrimSpace(s)
	i := strings.IndexFunc(in, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(in)
	}
	num := in[:i]
	unit := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(in[i:])), "B"), "I")
	mult := map[string]float64{"": 1, "M": 1, "G": 1024, "T": 1024 * 1024}[unit]
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || v < 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("size %q is not understood; use a number of MiB or a size such as 256M, 1.5G, 2GiB", s)
	}
	mib := v * mult
	if mib != math.Trunc(mib) || mib > math.MaxInt32 {
		return 0, fmt.Errorf("size %q is not a whole number of MiB", s)
	}
	return int(mib), nil
}

// mib prints a size in MiB briefly: 512M, 1G, 1.5G (a tenth of a GiB at
// most off).
func mib(n int) string {
	switch {
	case n == 0:
		return "0"
	case n%1024 == 0:
		return fmt.Sprintf("%dG", n/1024)
	case n >= 1024:
		return strings.TrimSuffix(strconv.FormatFloat(float64(n)/1024, 'f', 1, 64), ".0") + "G"
	}
	return fmt.Sprintf("%dM", n)
}

// sizeFlag is a flag holding a size in MiB, given as parseMiB reads it;
// a bad size is a usage error that says the accepted forms.
type sizeFlag int

func (s *sizeFlag) Set(v string) error {
	n, err := parseMiB(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func (s *sizeFlag) String() string { return mib(int(*s)) }

func (s *sizeFlag) Type() string { return "size" }
