package service

import (
	"context"
	"time"

	"github.com/godwit/godwit/api"
)

// waitSafety is how often WaitMigration reads the record even without a
// notification: a migration ended by another writer of the store (none
// today) is still seen.
const waitSafety = 2 * time.Second

// updateMigration is the store's UpdateMigration that also tells the
// migration's waiters (WaitMigration) when it ends.
func (c *Service) updateMigration(ctx context.Context, id string, fn func(*api.Migration) error) (api.Migration, error) {
	m, err := c.store.UpdateMigration(ctx, id, fn)
	if err == nil && m.State.Final() {
		c.endedMu.Lock()
		close(c.ended)
		c.ended = make(chan struct{})
		c.endedMu.Unlock()
	}
	return m, err
}

// WaitMigration returns a migration's record once it has ended: every
// migration's end wakes its waiters, who read their own record again.
func (c *Service) WaitMigration(ctx context.Context, id string) (api.Migration, error) {
	safety := time.NewTicker(waitSafety)
	defer safety.Stop()
	for {
		c.endedMu.Lock()
		ended := c.ended // taken before the read: an end after it closes this one
		c.endedMu.Unlock()
		m, err := c.store.Migration(ctx, id)
		if err != nil || m.State.Final() {
			return m, err
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-ended:
		case <-safety.C:
		}
	}
}
