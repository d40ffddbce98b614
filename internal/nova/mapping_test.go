package nova

import (
	"os"
	"strings"
	"testing"
)

const (
	docPath    = "../../docs/nova-compat.md"
	beginTable = "<!-- mapping: generated from internal/nova/mapping.go by TestMappingDocumented -->"
	endTable   = "<!-- end of mapping -->"
)

// MappingTable is Mapping as a Markdown table.
func mappingTable() string {
	var b strings.Builder
	b.WriteString("| Nova action | who | godwit intent | service operation | driver strategy | where they differ |\n|---|---|---|---|---|---|\n")
	for _, r := range Mapping {
		cells := []string{"`" + r.Nova + "`", string(r.Role), r.Intent, r.Service, r.Driver, r.Note}
		for i, c := range cells {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}

// docs/nova-compat.md carries the mapping table as the code has it;
// GODWIT_UPDATE_DOCS=1 rewrites it there.
func TestMappingDocumented(t *testing.T) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, beginTable), strings.Index(doc, endTable)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q ... %q block for the mapping table", docPath, beginTable, endTable)
	}
	want := doc[:i] + beginTable + "\n\n" + mappingTable() + "\n" + doc[j:]
	if want == doc {
		return
	}
	if os.Getenv("GODWIT_UPDATE_DOCS") != "" {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the mapping table in %s is not internal/nova/mapping.go's: run GODWIT_UPDATE_DOCS=1 go test -run TestMappingDocumented ./internal/nova/", docPath)
}

// Every action has a handler and a role.
func TestMappingComplete(t *testing.T) {
	for _, r := range Mapping {
		if r.do == nil || r.Role == "" || r.Intent == "" || r.Service == "" || r.Driver == "" {
			t.Errorf("mapping row %s is incomplete: %+v", r.Nova, r)
		}
	}
	if len(actions) != len(Mapping) {
		t.Errorf("%d actions for %d rows: an action is mapped twice", len(actions), len(Mapping))
	}
}
