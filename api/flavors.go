package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"
	"unicode"
	"unicode/utf8"
)

// NamedFlavor is a stored flavor: a VM size with a name, as Nova keeps
// them. A VM made from it (CreateVMRequest.FlavorName) copies its sizes
// and records its name; deleting the flavor leaves such VMs as they are.
type NamedFlavor struct {
	// ID is the flavor's stable identifier: given at create or, when
	// not, a generated UUID. Nova's clients show it.
	ID   string `json:"id"`
	Name string `json:"name"`
	Flavor
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// CreateFlavorRequest is the body of POST /v1/flavors.
type CreateFlavorRequest struct {
	Name string `json:"name"`
	// ID is the flavor's identifier: letters, digits, '.', '_' and '-',
	// starting with a letter or digit, at most 255 (MaxFlavorIDLen);
	// empty: a UUID is generated.
	ID        string `json:"id,omitempty"`
	VCPUs     int    `json:"vcpus"`
	MemoryMiB int    `json:"memory_mib"`
	DiskMiB   int    `json:"disk_mib"` // 0: VMs of the flavor have no disk
	// Description is free text for people: at most 65535 bytes
	// (MaxFlavorDescriptionLen), no control characters.
	Description string `json:"description,omitempty"`
}

// Bounds of a flavor's ID and description (Nova's own).
const (
	MaxFlavorIDLen          = 255
	MaxFlavorDescriptionLen = 65535
)

var flavorIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Sizes is the flavor's sizes as a Flavor.
func (r CreateFlavorRequest) Sizes() Flavor {
	return Flavor{VCPUs: r.VCPUs, MemoryMiB: r.MemoryMiB, DiskMiB: r.DiskMiB}
}

// Validate checks a flavor request's fields; its sizes have the limits
// of a VM's.
func (r CreateFlavorRequest) Validate() error {
	if err := ValidateFlavorName(r.Name); err != nil {
		return err
	}
	if r.ID != "" {
		if err := ValidateFlavorID(r.ID); err != nil {
			return err
		}
	}
	if err := r.Sizes().Validate(); err != nil {
		return err
	}
	switch {
	case len(r.Description) > MaxFlavorDescriptionLen:
		return fmt.Errorf("description is %d bytes; use at most %d", len(r.Description), MaxFlavorDescriptionLen)
	case !utf8.ValidString(r.Description):
		return fmt.Errorf("description is not valid UTF-8")
	}
	for _, c := range r.Description {
		if unicode.IsControl(c) {
			return fmt.Errorf("description holds control character %U; use plain text on one line", c)
		}
	}
	return nil
}

// ValidateFlavorName checks a flavor's name. Names are freer than VM
// names, as Nova's are ("m1.small", "GPU_large"): letters, digits, '.',
// '_' and '-', starting with a letter or digit, at most MaxNameLen.
func ValidateFlavorName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("flavor name is empty; give one, e.g. m1.small")
	case len(name) > MaxNameLen:
		return fmt.Errorf("flavor name is %d characters; use at most %d", len(name), MaxNameLen)
	case !flavorIDRE.MatchString(name):
		return fmt.Errorf("flavor name %q is invalid: use letters, digits, '.', '_' and '-', starting with a letter or digit, e.g. m1.small", name)
	}
	return nil
}

// ValidateFlavorID checks a flavor ID and says what a good one looks
// like.
func ValidateFlavorID(id string) error {
	switch {
	case len(id) > MaxFlavorIDLen:
		return fmt.Errorf("flavor id is %d characters; use at most %d", len(id), MaxFlavorIDLen)
	case !flavorIDRE.MatchString(id):
		return fmt.Errorf("flavor id %q is invalid: use letters, digits, '.', '_' and '-', starting with a letter or digit (or leave it out to have one generated)", id)
	}
	return nil
}

// Flavors lists the stored flavors, by name.
func (c *Client) Flavors(ctx context.Context) ([]NamedFlavor, error) {
	var fs []NamedFlavor
	err := c.Do(ctx, http.MethodGet, "/v1/flavors", nil, &fs)
	return fs, err
}

// Flavor returns one stored flavor, by name or ID.
func (c *Client) Flavor(ctx context.Context, nameOrID string) (NamedFlavor, error) {
	var f NamedFlavor
	err := c.Do(ctx, http.MethodGet, "/v1/flavors/"+url.PathEscape(nameOrID), nil, &f)
	return f, err
}

// CreateFlavor stores a flavor (an admin's).
func (c *Client) CreateFlavor(ctx context.Context, req CreateFlavorRequest) (NamedFlavor, error) {
	var f NamedFlavor
	err := c.Do(ctx, http.MethodPost, "/v1/flavors", req, &f)
	return f, err
}

// DeleteFlavor removes a stored flavor, by name or ID; VMs made from it
// keep their sizes.
func (c *Client) DeleteFlavor(ctx context.Context, nameOrID string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/flavors/"+url.PathEscape(nameOrID), nil, nil)
}
