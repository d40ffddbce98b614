package service

import (
	"context"
	"errors"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// Stored flavors: named VM sizes (api.NamedFlavor), as Nova keeps them.
// A flavor is found by its ID or its name; both are unique, and no
// flavor's name is another's ID, so either names one flavor only. A VM
// made from a flavor copies its sizes: deleting the flavor changes no VM.

// Flavors lists the stored flavors, by name.
func (c *Service) Flavors(ctx context.Context) ([]api.NamedFlavor, error) {
	return c.store.Flavors(ctx)
}

// Flavor returns a stored flavor by ID or name, or a not-found error
// that says how to list them.
func (c *Service) Flavor(ctx context.Context, nameOrID string) (api.NamedFlavor, error) {
	f, err := c.store.Flavor(ctx, nameOrID)
	if errors.Is(err, errs.ErrNotFound) {
		return f, errs.NotFound("flavor %q not found; list flavors with: godwit flavor list", nameOrID)
	}
	return f, err
}

// CreateFlavor validates and stores a flavor, with a generated ID
// (a UUID) unless the request gives one.
func (c *Service) CreateFlavor(ctx context.Context, req api.CreateFlavorRequest) (api.NamedFlavor, error) {
	if err := req.Validate(); err != nil {
		return api.NamedFlavor{}, errs.Invalid("%v", err)
	}
	f := api.NamedFlavor{ID: req.ID, Name: req.Name, Flavor: req.Sizes(), Description: req.Description, CreatedAt: time.Now().UTC()}
	if f.ID == "" {
		f.ID = NewID()
	}
	c.flavorMu.Lock()
	defer c.flavorMu.Unlock()
	fs, err := c.store.Flavors(ctx)
	if err != nil {
		return api.NamedFlavor{}, err
	}
	for _, o := range fs {
		switch {
		case o.Name == f.Name:
			return api.NamedFlavor{}, errs.Conflict("flavor %q already exists (id %s); choose another name or delete it first", o.Name, o.ID)
		case o.ID == f.ID:
			return api.NamedFlavor{}, errs.Conflict("flavor id %q is taken by flavor %q; choose another id, or leave it out to have one generated", f.ID, o.Name)
		case o.ID == f.Name:
			return api.NamedFlavor{}, errs.Conflict("flavor name %q is the id of flavor %q, and would name two flavors; choose another name", f.Name, o.Name)
		case o.Name == f.ID:
			return api.NamedFlavor{}, errs.Conflict("flavor id %q is the name of flavor %q, and would name two flavors; choose another id, or leave it out to have one generated", f.ID, o.Name)
		}
	}
	// The store has the last word (another controller on the same
	// database): its conflict says which key was taken.
	if err := c.store.CreateFlavor(ctx, f); err != nil {
		return api.NamedFlavor{}, err
	}
	c.log.Info("flavor created", "flavor", f.Name, "id", f.ID, "vcpus", f.VCPUs, "memory_mib", f.MemoryMiB, "disk_mib", f.DiskMiB)
	return f, nil
}

// DeleteFlavor removes a stored flavor, by ID or name. The VMs made from
// it keep their sizes and the name they recorded (as Nova's do).
func (c *Service) DeleteFlavor(ctx context.Context, nameOrID string) error {
	f, err := c.Flavor(ctx, nameOrID)
	if err != nil {
		return err
	}
	if err := c.store.DeleteFlavor(ctx, f.ID); err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return errs.NotFound("flavor %q not found; list flavors with: godwit flavor list", nameOrID)
		}
		return err
	}
	c.log.Info("flavor deleted", "flavor", f.Name, "id", f.ID)
	return nil
}

// flavorSizes gives a create request that names a stored flavor that
// flavor's sizes, and its name as the VM records it (the request may
// name it by ID).
func (c *Service) flavorSizes(ctx context.Context, req *api.CreateVMRequest) error {
	if req.FlavorName == "" {
		return nil
	}
	if req.Flavor != (api.Flavor{}) {
		return errs.Invalid("give either flavor_name or the sizes in flavor (vcpus, memory_mib, disk_mib), not both")
	}
	f, err := c.Flavor(ctx, req.FlavorName)
	if err != nil {
		return err
	}
	req.Flavor, req.FlavorName = f.Flavor, f.Name
	return nil
}
