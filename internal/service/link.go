package service

import (
	"context"
	"sync"
)

// linkGate serializes the memory transfers out of each source host. A
// drain's moves share the source's one migration link: two transfers at
// once each get half of it, so a guest that dirties memory re-sends more
// and both take longer than one after the other. What a move does around
// its transfer — start the destination's QEMU, switch over, release the
// source — uses no link, so the next move prepares while the current one
// transfers and waits here, prepared, for the link (state
// waiting-for-link); it starts sending the moment the current transfer
// ends, not after its cleanup.
//
// The gate lives in the process only: a controller restart rolls back a
// migration waiting here (recovery finds the source running, not
// sending), and the intent tries it again.
type linkGate struct {
	mu      sync.Mutex
	sending map[string]int             // source host → transfers under way
	queue   map[string][]chan struct{} // source host → waiters, first come first served
}

// acquire waits until fewer than limit transfers leave source and no
// earlier waiter is ahead, then counts this one. The caller must release
// once its transfer ends. A limit of 0 or less does not wait.
func (g *linkGate) acquire(ctx context.Context, source string, limit int) error {
	if limit <= 0 {
		return nil
	}
	g.mu.Lock()
	if g.sending == nil {
		g.sending, g.queue = map[string]int{}, map[string][]chan struct{}{}
	}
	if g.sending[source] < limit && len(g.queue[source]) == 0 {
		g.sending[source]++
		g.mu.Unlock()
		return nil
	}
	turn := make(chan struct{})
	g.queue[source] = append(g.queue[source], turn)
	g.mu.Unlock()
	for {
		select {
		case <-turn:
			return nil
		case <-ctx.Done():
			g.mu.Lock()
			select {
			case <-turn: // handed the link just now: pass it on
				g.mu.Unlock()
				g.release(source)
				return ctx.Err()
			default:
			}
			q := g.queue[source]
			for i, ch := range q {
				if ch == turn {
					g.queue[source] = append(q[:i:i], q[i+1:]...)
					break
				}
			}
			g.mu.Unlock()
			return ctx.Err()
		}
	}
}

// release ends a transfer out of source and hands the link to the first
// waiter, if any.
func (g *linkGate) release(source string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if q := g.queue[source]; len(q) > 0 {
		g.queue[source] = q[1:]
		close(q[0]) // the count passes to the waiter unchanged
		return
	}
	if g.sending[source] > 0 {
		g.sending[source]--
	}
}

// busy reports whether a transfer out of source would have to wait now.
func (g *linkGate) busy(source string, limit int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return limit > 0 && (g.sending[source] >= limit || len(g.queue[source]) > 0)
}

// waiting reports whether a move waits for source's link: the transfer
// under way is then watched more closely, so the next starts sooner.
func (g *linkGate) waiting(source string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue[source]) > 0
}
