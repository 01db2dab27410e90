package lease_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/lease"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
)

func openStore(t *testing.T) *store.SQLite {
	t.Helper()
	st := servicetest.OpenStore(t, servicetest.DBPath(t))
	t.Cleanup(func() { st.Close() })
	return st
}

// Goroutines of one process take turns; another owner is kept out while
// the name is held, and gets it once it is given up.
func TestHoldExcludesGoroutinesAndOtherOwners(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	a := &lease.Keeper{Store: st, Owner: "a", TTL: time.Minute}
	b := &lease.Keeper{Store: st, Owner: "b", TTL: time.Minute}

	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, held, err := a.Hold(ctx, "pipeline:x")
			if err != nil || !held {
				t.Errorf("hold: %v %v", held, err)
				return
			}
			n := inside.Add(1)
			if n > most.Load() {
				most.Store(n)
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			release()
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Errorf("%d goroutines held the name at once", most.Load())
	}

	release, held, err := a.Hold(ctx, "pipeline:x")
	if err != nil || !held {
		t.Fatal(held, err)
	}
	if _, held, err := b.Hold(ctx, "pipeline:x"); err != nil || held {
		t.Fatalf("another owner held a held name: %v %v", held, err)
	}
	release()
	rb, held, err := b.Hold(ctx, "pipeline:x")
	if err != nil || !held {
		t.Fatalf("another owner could not take a released name: %v %v", held, err)
	}
	rb()
}

// A keeper that keeps its leases holds them between holds, so another
// owner stays out until ReleaseAll.
func TestKeptLeasesOutliveEachHold(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	a := &lease.Keeper{Store: st, Owner: "a", TTL: time.Minute}
	b := &lease.Keeper{Store: st, Owner: "b", TTL: time.Minute}
	a.Keep()
	release, held, err := a.Hold(ctx, "pipeline:x")
	if err != nil || !held {
		t.Fatal(held, err)
	}
	release()
	if _, held, _ := b.Hold(ctx, "pipeline:x"); held {
		t.Fatal("a kept lease was taken by another owner")
	}
	// The keeper itself holds it again without asking the database.
	if release, held, err := a.Hold(ctx, "pipeline:x"); err != nil || !held {
		t.Fatal(held, err)
	} else {
		release()
	}
	a.ReleaseAll(ctx)
	rb, held, err := b.Hold(ctx, "pipeline:x")
	if err != nil || !held {
		t.Fatalf("after ReleaseAll another owner could not take it: %v %v", held, err)
	}
	rb()
}

// A lease whose holder stops renewing it expires and is taken over; a
// holder renewing it keeps it.
func TestRenewKeepsALongHold(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ttl := 150 * time.Millisecond
	a := &lease.Keeper{Store: st, Owner: "a", TTL: ttl}
	b := &lease.Keeper{Store: st, Owner: "b", TTL: ttl}
	release, held, err := a.Hold(ctx, "release:acme/api")
	if err != nil || !held {
		t.Fatal(held, err)
	}
	defer release()
	since := time.Now()
	deadline := since.Add(3 * ttl)
	for time.Now().Before(deadline) {
		var ok bool
		if since, ok, err = a.Renew(ctx, "release:acme/api", since); err != nil || !ok {
			t.Fatalf("renew: %v %v", ok, err)
		}
		if _, held, _ := b.Hold(ctx, "release:acme/api"); held {
			t.Fatal("another owner took a lease its holder renews")
		}
		time.Sleep(ttl / 10)
	}
	// Not renewed past its TTL: the other owner takes it over.
	time.Sleep(ttl + ttl/2)
	rb, held, err := b.Hold(ctx, "release:acme/api")
	if err != nil || !held {
		t.Fatalf("an expired lease was not taken over: %v %v", held, err)
	}
	defer rb()
	if _, ok, err := a.Renew(ctx, "release:acme/api", time.Time{}); err != nil || ok {
		t.Errorf("renewing a lease taken over: %v %v; want lost", ok, err)
	}
}
