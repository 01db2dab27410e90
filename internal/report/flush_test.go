package report

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/store"
)

// gatedStore is a RolloutStore whose reads of a rollout wait for the
// test: a write in flight, for as long as the test wants.
type gatedStore struct {
	RolloutStore // nil: only what a write touches first is here
	gate         chan struct{}
	reads        atomic.Int32
}

func (s *gatedStore) GetRollout(ctx context.Context, id string) (store.RolloutRun, error) {
	s.reads.Add(1)
	<-s.gate
	return store.RolloutRun{}, errors.New("no such rollout")
}

func (s *gatedStore) AddAPICalls(context.Context, string, int) error { return nil }

// A stopping service flushes the reports it had scheduled (they go at
// once, not at the end of their delay), but only for as long as its
// grace period: a write that hangs does not hold the shutdown.
func TestFlushSendsScheduledWritesWithinItsBound(t *testing.T) {
	st := &gatedStore{gate: make(chan struct{})}
	r := &Rollouts{Store: st, Log: slog.New(slog.DiscardHandler), Delay: time.Hour}
	r.RolloutChanged(context.Background(), "run-1")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if r.Flush(ctx) {
		t.Fatal("Flush reported every write done while one was still in flight")
	}
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("%d writes started by the flush; want the scheduled one, at once (its delay is an hour)", n)
	}

	close(st.gate) // the write can end now
	if !r.Flush(context.Background()) {
		t.Fatal("Flush without a bound did not wait for the write")
	}
	r.RolloutChanged(context.Background(), "run-2")
	if !r.Flush(context.Background()) || st.reads.Load() != 2 {
		t.Fatalf("%d writes after a second flush; want 2", st.reads.Load())
	}
}
