package github

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/shipbot/shipbot/internal/metrics"
)

// CallCounter counts GitHub API calls by endpoint class (see Classify).
// Every attempt is a call: retries, installation token fetches and 304s
// all count, because they all spend rate limit and the "API calls per
// merge" bar is measured with this counter.
//
// The zero value is ready to use and it is safe for concurrent use. A nil
// *CallCounter still feeds the Prometheus metric, so the transport need
// not special-case it.
type CallCounter struct {
	mu     sync.Mutex
	counts map[string]int
	total  int
}

// Record counts one call of class that ended with status: the HTTP status
// code as a string, or "error" when no response arrived. It also
// increments metrics.GitHubCalls.
func (c *CallCounter) Record(class, status string) {
	metrics.GitHubCalls.WithLabelValues(class, status).Inc()
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = make(map[string]int)
	}
	c.counts[class]++
	c.total++
}

// Count returns the number of calls recorded for one class.
func (c *CallCounter) Count(class string) int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[class]
}

// Total returns the number of calls recorded for all classes.
func (c *CallCounter) Total() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Snapshot returns a copy of the per-class counts.
func (c *CallCounter) Snapshot() map[string]int {
	out := make(map[string]int)
	if c == nil {
		return out
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Reset forgets all counts, e.g. between merges in a benchmark. It does
// not touch the Prometheus metric, which is cumulative by design.
func (c *CallCounter) Reset() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = nil
	c.total = 0
}

// Tally counts the calls made on behalf of one piece of work (one merge's
// evaluation, one report write) when its context carries it: the calls a
// merge costs are then known per merge, not only in total.
type Tally struct{ n, writes atomic.Int64 }

// N is the number of calls counted.
func (t *Tally) N() int { return int(t.n.Load()) }

// Writes is how many of them were content-generating (POST, PATCH, PUT,
// DELETE): what GitHub's secondary limits count.
func (t *Tally) Writes() int { return int(t.writes.Load()) }

type tallyKey struct{}

// WithTally returns a context whose GitHub calls, token fetches and
// retries included, t counts.
func WithTally(ctx context.Context, t *Tally) context.Context {
	return context.WithValue(ctx, tallyKey{}, t)
}

func tallyFrom(ctx context.Context) *Tally {
	t, _ := ctx.Value(tallyKey{}).(*Tally)
	return t
}
