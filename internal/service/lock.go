package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/auth"
	"github.com/godwit/godwit/internal/errs"
)

// A VM's lock, as a Nova server's: it stops members from changing the
// VM by accident; admins are not stopped. It follows Nova throughout:
//
//   - Locking a locked VM changes nothing and succeeds, as Nova's lock
//     of a locked server does (compute API lock: a no-op for the owner),
//     except that an admin locking a member's lock takes it over: it
//     becomes an admin's lock (Nova records locked_by "admin").
//   - A member's lock is unlocked by any member of the VM's project or
//     an admin; an admin's only by an admin (Nova's is_expected_locked_by
//     and its policy os-lock-server:unlock:unlock_override, admin only by
//     default). Unlocking an unlocked VM succeeds and changes nothing.
//   - While locked, a non-admin's delete, start, stop, reboot, resize,
//     rebuild, and confirm or revert of a held resize is refused with a
//     conflict (Nova's check_instance_lock, InstanceIsLocked, 409), as
//     is a change of the VM's metadata (Nova locks its metadata calls).
//     Its console, and a change of its display name, description or
//     access addresses, are allowed, as in Nova (its server update is
//     not locked). Admin moves (migrate, drain, evacuate) go on.
//
// checkLock is the one check, called by each of those service methods
// and by the intent runner's resize, rebuild, confirm and revert.

// LockedError is the conflict a VM's lock makes of a change a member
// asks; errors.As finds it (the Nova API words it as Nova does).
type LockedError struct {
	VM   string // the VM's name
	ID   string // the VM's ID
	Lock api.VMLock
}

func (e *LockedError) Error() string {
	reason := ""
	if e.Lock.Reason != "" {
		reason = " (" + e.Lock.Reason + ")"
	}
	who := "member"
	unlock := "godwit vm unlock " + e.VM
	if e.Lock.ByAdmin {
		who, unlock = "admin", unlock+" (as an admin)"
	}
	return fmt.Sprintf("vm %q is locked by %s %s (token %s) since %s%s; unlock it with: %s",
		e.VM, who, e.Lock.ByName, e.Lock.By, e.Lock.At.Format(time.RFC3339), reason, unlock)
}

// Unwrap makes a LockedError a conflict.
func (e *LockedError) Unwrap() error { return errs.ErrConflict }

// IsLocked reports whether err is a VM's lock refusing a change.
func IsLocked(err error) bool {
	var le *LockedError
	return errors.As(err, &le)
}

// checkLock refuses a change the caller of ctx asks of vm while vm is
// locked, unless the caller is an admin.
func checkLock(ctx context.Context, vm api.VM) error {
	if vm.Lock == nil || isAdmin(auth.From(ctx)) {
		return nil
	}
	return &LockedError{VM: vm.Name, ID: vm.ID, Lock: *vm.Lock}
}

// CheckLock is checkLock for the intent runner: a resize, rebuild,
// confirm or revert a member asks of a locked VM is refused up front.
func (c *Service) CheckLock(ctx context.Context, vm api.VM) error { return checkLock(ctx, vm) }

// isAdmin: an admin's token, or any caller on a cluster without
// authentication (every caller is an admin there), or the controller
// itself (no principal: recovery and intents it resumes).
func isAdmin(p api.Principal) bool {
	return p.Role == api.RoleAdmin || p.AuthDisabled || p.Role == ""
}

// LockVM locks a VM, recording the caller of ctx and reason.
func (c *Service) LockVM(ctx context.Context, name, reason string) (api.VM, error) {
	if err := api.ValidateDisplayText("reason", reason); err != nil {
		return api.VM{}, errs.Invalid("%v", err)
	}
	p := auth.From(ctx)
	vm, err := c.store.UpdateVM(ctx, name, func(v *api.VM) error {
		if v.Lock != nil && (v.Lock.ByAdmin || !isAdmin(p)) {
			return nil // locked already: nothing changes, as in Nova
		}
		name := p.Name
		if name == "" {
			name = p.String() // no token: "anyone (no authentication)"
		}
		v.Lock = &api.VMLock{By: p.TokenID, ByName: name, ByAdmin: isAdmin(p), Reason: reason, At: time.Now().UTC()}
		return nil
	})
	if err != nil {
		return api.VM{}, err
	}
	c.log.Info("vm locked", "vm", name, "by", p.String())
	return vm, nil
}

// UnlockVM unlocks a VM: a member's lock for a member of the VM's
// project or an admin, an admin's lock only for an admin.
func (c *Service) UnlockVM(ctx context.Context, name string) (api.VM, error) {
	p := auth.From(ctx)
	vm, err := c.store.UpdateVM(ctx, name, func(v *api.VM) error {
		if v.Lock == nil {
			return nil
		}
		if v.Lock.ByAdmin && !isAdmin(p) {
			return errs.Forbidden("vm %q was locked by admin %s (token %s): only an admin unlocks it", v.Name, v.Lock.ByName, v.Lock.By)
		}
		v.Lock = nil
		return nil
	})
	if err != nil {
		return api.VM{}, err
	}
	c.log.Info("vm unlocked", "vm", name, "by", p.String())
	return vm, nil
}
