package bench

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// table is a titled grid of cells, rendered as an aligned Markdown table:
// readable on a terminal and in docs/benchmarks.md alike.
type table struct {
	header []string
	rows   [][]string
	// right marks the columns whose cells are right-aligned (numbers).
	right map[int]bool
}

func newTable(header ...string) *table { return &table{header: header, right: map[int]bool{}} }

// alignRight right-aligns the given columns.
func (t *table) alignRight(cols ...int) *table {
	for _, c := range cols {
		t.right[c] = true
	}
	return t
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// markdown renders the table; short rows are padded with empty cells.
func (t *table) markdown() string {
	width := make([]int, len(t.header))
	for i, h := range t.header {
		width[i] = max(3, utf8.RuneCountInString(h))
	}
	for _, r := range t.rows {
		for i := 0; i < len(width) && i < len(r); i++ {
			width[i] = max(width[i], utf8.RuneCountInString(r[i]))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i := range width {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if t.right[i] {
				b.WriteString(" " + pad + c + " |")
			} else {
				b.WriteString(" " + c + pad + " |")
			}
		}
		b.WriteString("\n")
	}
	line(t.header)
	b.WriteString("|")
	for i, w := range width {
		if t.right[i] {
			b.WriteString(" " + strings.Repeat("-", w-1) + ": |")
		} else {
			b.WriteString(" " + strings.Repeat("-", w) + " |")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		line(r)
	}
	return b.String()
}

// Cell formats. A dash stands for "not measured".

func fmtSeconds(ms int64) string {
	if ms <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f s", float64(ms)/1000)
}

func fmtMS(ms int64, ok bool) string {
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%d ms", ms)
}

func fmtRatio(r float64) string {
	if r <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", r)
}

func fmtGap(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
