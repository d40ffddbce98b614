package driver

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// fencingFactory is a Factory with the Fencer capability.
type fencingFactory struct{ FactoryFunc }

func (fencingFactory) SharedDiskProcesses(string) ([]Process, error) {
	return []Process{{VMID: "v", PID: 1}}, nil
}

func TestRegistry(t *testing.T) {
	errOpened := errors.New("opened")
	var got Options
	plain := FactoryFunc(func(_ context.Context, o Options) (Driver, error) { got = o; return nil, errOpened })
	Register("test-plain", plain)
	Register("test-fencing", fencingFactory{plain})
	t.Cleanup(func() {
		registryMu.Lock()
		delete(factories, "test-plain")
		delete(factories, "test-fencing")
		registryMu.Unlock()
	})

	names := Names()
	if !slices.IsSorted(names) || !slices.Contains(names, "test-plain") || !slices.Contains(names, "test-fencing") {
		t.Errorf("Names() = %v", names)
	}
	if _, err := Open(context.Background(), "test-plain", Options{StateDir: "/s", Extra: 7}); !errors.Is(err, errOpened) || got.StateDir != "/s" || got.Extra != 7 {
		t.Errorf("Open: %v, options %+v", err, got)
	}
	if _, err := Open(context.Background(), "xen", Options{}); err == nil || !strings.Contains(err.Error(), `unknown driver "xen"`) || !strings.Contains(err.Error(), "test-plain") {
		t.Errorf("Open of an unknown driver: %v", err)
	}
	if _, ok := Fencing("test-plain"); ok {
		t.Error("a factory without the capability fences")
	}
	if _, ok := Fencing("xen"); ok {
		t.Error("an unknown driver fences")
	}
	f, ok := Fencing("test-fencing")
	if !ok {
		t.Fatal("the fencing factory does not fence")
	}
	if ps, err := f.SharedDiskProcesses("/s"); err != nil || len(ps) != 1 {
		t.Errorf("SharedDiskProcesses = %v, %v", ps, err)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	f := FactoryFunc(func(context.Context, Options) (Driver, error) { return nil, nil })
	Register("test-twice", f)
	t.Cleanup(func() {
		registryMu.Lock()
		delete(factories, "test-twice")
		registryMu.Unlock()
	})
	for name, reg := range map[string]func(){
		"taken name": func() { Register("test-twice", f) },
		"no name":    func() { Register("", f) },
		"no factory": func() { Register("test-nil", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Register did not panic", name)
				}
			}()
			reg()
		}()
	}
}
