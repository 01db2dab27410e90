package storetest

import (
	"sync"
	"time"

	"github.com/shipbot/shipbot/internal/pacing"
)

var writesCases = []testCase{
	{"TakeWrite_admits_within_both_windows_per_installation", func(e *env) {
		lim := pacing.Limits{PerMinute: 3, PerHour: 4}
		t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
		take := func(inst int64, at time.Duration) time.Duration {
			e.Helper()
			wait, err := e.s.TakeWrite(e.ctx, inst, t0.Add(at), lim)
			e.must(err)
			return wait
		}
		for i := range 3 {
			if w := take(1, time.Duration(i)*time.Second); w != 0 {
				e.Fatalf("write %d waits %v; want none", i+1, w)
			}
		}
		// The minute is full until its first write leaves it, with
		// pacing's margin.
		if w := take(1, 10*time.Second); w != 50*time.Second+pacing.Margin {
			e.Fatalf("fourth write in a minute waits %v; want 50s and the margin", w)
		}
		// Another installation has windows of its own.
		if w := take(2, 10*time.Second); w != 0 {
			e.Fatalf("another installation waits %v", w)
		}
		// A refused write was not recorded: a minute later one fits, and
		// then the hour (4) is full until its first write (12:00:00) is
		// an hour old.
		if w := take(1, 63*time.Second); w != 0 {
			e.Fatalf("write after the minute waits %v", w)
		}
		if w := take(1, 64*time.Second); w != time.Hour+pacing.Margin-64*time.Second {
			e.Fatalf("write past the hour's limit waits %v; want until the oldest write is an hour old", w)
		}
		// An hour on, everything older has gone.
		if w := take(1, time.Hour+70*time.Second); w != 0 {
			e.Fatalf("write an hour later waits %v", w)
		}
	}},
	{"TakeWrite_concurrent_takers_never_exceed_the_limit", func(e *env) {
		// Replicas (or goroutines) taking at the same instant: exactly the
		// limit is admitted.
		lim := pacing.Limits{PerMinute: 5, PerHour: 100}
		now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
		var mu sync.Mutex
		admitted := 0
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wait, err := e.s.TakeWrite(e.ctx, 9, now, lim)
				if err != nil {
					e.Error(err)
					return
				}
				if wait == 0 {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if admitted != 5 {
			e.Fatalf("%d of 20 simultaneous writes admitted; want exactly the limit, 5", admitted)
		}
	}},
}
