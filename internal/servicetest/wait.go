package servicetest

import (
	"cmp"
	"context"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/store"
)

// The defaults of a Wait.
const (
	DefaultLimit    = 20 * time.Second
	DefaultInterval = 5 * time.Millisecond
)

// Wait is how a test waits for something: it looks every Interval, for at
// most Limit. Zero fields take DefaultLimit and DefaultInterval.
type Wait struct {
	Limit    time.Duration
	Interval time.Duration
}

// Eventually polls cond until it holds; if Limit passes first, it fails
// tb with what it was waiting until.
func (w Wait) Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	limit, interval := cmp.Or(w.Limit, DefaultLimit), cmp.Or(w.Interval, DefaultInterval)
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting until %s", limit, what)
		}
		time.Sleep(interval)
	}
}

// Inbox is where the service keeps the deliveries it took (a store.Store).
type Inbox interface {
	GetDelivery(ctx context.Context, id string) (store.Delivery, error)
}

// Processed waits, in turn, until each delivery of ids is processed: done
// or ignored.
func (w Wait) Processed(tb testing.TB, st Inbox, ids ...string) {
	tb.Helper()
	for _, id := range ids {
		w.Eventually(tb, "delivery "+id+" is processed", func() bool {
			d, err := st.GetDelivery(context.Background(), id)
			return err == nil && (d.Status == store.StatusDone || d.Status == store.StatusIgnored)
		})
	}
}

// Eventually is Wait{}.Eventually: it polls cond every 5ms for up to 20s.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	Wait{}.Eventually(tb, what, cond)
}

// WaitProcessed is Wait{}.Processed.
func WaitProcessed(tb testing.TB, st Inbox, ids ...string) {
	tb.Helper()
	Wait{}.Processed(tb, st, ids...)
}
