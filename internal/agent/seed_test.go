package agent

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/godwit/godwit/internal/hostapi"
	"github.com/godwit/godwit/internal/seed"
)

// A VM with an SSH key and nothing else for its seed (no NICs, no
// user-data) gets a seed all the same, whose meta-data gives the guest
// the key; the seed is the one seed.Build makes of the request.
func TestSeedCarriesPublicKeys(t *testing.T) {
	state := t.TempDir()
	a := &Agent{cfg: Config{StateDir: state}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	const id = "0b5c7c4e-2f57-4a0e-9d8a-7e1f6c2b9a11"
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRq3fk62e9kYAMosJexl3KA9E+TimRLE7ODuQL6EEYQ alice@example"
	if _, path, err := a.network(hostapi.CreateVM{ID: id, Name: "k"}); err != nil || path != "" {
		t.Fatalf("nothing for a seed: %q, %v; want no seed", path, err)
	}
	_, path, err := a.network(hostapi.CreateVM{ID: id, Name: "k", PublicKeys: []string{key}})
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(state, "seeds", id+".iso") {
		t.Errorf("seed at %s", path)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := seed.Build(seed.Config{InstanceID: id, Hostname: "k", PublicKeys: []string{key}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the agent's seed differs from seed.Build's")
	}
	files, _ := seed.Files(seed.Config{InstanceID: id, Hostname: "k", PublicKeys: []string{key}})
	if m, err := seed.ParseMetaData(files[seed.MetaDataFile]); err != nil || len(m.PublicKeys) != 1 || m.PublicKeys[0] != key {
		t.Errorf("meta-data %q: %+v, %v", files[seed.MetaDataFile], m, err)
	}
}
