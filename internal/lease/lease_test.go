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

	release := mustHold(t, a, "pipeline:x", "")
	if _, held, err := b.Hold(ctx, "pipeline:x"); err != nil || held {
		t.Fatalf("another owner held a held name: %v %v", held, err)
	}
	release()
	rb := mustHold(t, b, "pipeline:x", "another owner could not take a released name")
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
	release := mustHold(t, a, "pipeline:x", "")
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
	rb := mustHold(t, b, "pipeline:x", "after ReleaseAll another owner could not take it")
	rb()
}

// A lease held for longer than its TTL stays its holder's (the keeper
// renews it in the background); once given up another owner takes it.
// A lease whose holder died (nobody renews it) is taken over once its TTL
// has passed.
func TestHeldLeaseIsRenewedDeadOneExpires(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ttl := 300 * time.Millisecond
	a := &lease.Keeper{Store: st, Owner: "a", TTL: ttl}
	b := &lease.Keeper{Store: st, Owner: "b", TTL: ttl}
	release := mustHold(t, a, "release:acme/api", "")
	deadline := time.Now().Add(4 * ttl)
	for time.Now().Before(deadline) {
		if _, held, _ := b.Hold(ctx, "release:acme/api"); held {
			t.Fatal("another owner took a lease while its holder held it")
		}
		if !a.Held("release:acme/api") {
			t.Fatal("the holder's lease was reported lost")
		}
		time.Sleep(ttl / 10)
	}
	release()
	rb := mustHold(t, b, "release:acme/api", "a released lease was not taken")
	rb()

	// A dead holder: its lease is in the database, nobody renews it.
	if ok, err := st.AcquireLease(ctx, "pipeline:x", "dead", ttl); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, held, _ := b.Hold(ctx, "pipeline:x"); held {
		t.Fatal("a dead owner's lease was taken before it expired")
	}
	time.Sleep(ttl + ttl/3)
	rb = mustHold(t, b, "pipeline:x", "an expired lease was not taken over")
	rb()
}

// stealing is a lease store that, once told to, answers every renewal as
// if another owner had taken the lease.
type stealing struct {
	lease.Store
	stolen atomic.Bool
}

func (s *stealing) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if s.stolen.Load() {
		return false, nil
	}
	return s.Store.AcquireLease(ctx, name, owner, ttl)
}

// A holder whose renewal finds the lease taken is told so by Held, and
// its next Hold asks the database rather than trusting the kept lease.
func TestLostLeaseIsReported(t *testing.T) {
	ctx := context.Background()
	st := &stealing{Store: openStore(t)}
	ttl := 150 * time.Millisecond
	a := &lease.Keeper{Store: st, Owner: "a", TTL: ttl}
	a.Keep()
	release := mustHold(t, a, "pipeline:x", "")
	st.stolen.Store(true)
	deadline := time.Now().Add(10 * ttl)
	for a.Held("pipeline:x") {
		if time.Now().After(deadline) {
			t.Fatal("a lost lease was still reported held after 10 TTLs")
		}
		time.Sleep(ttl / 10)
	}
	release()
	if _, held, _ := a.Hold(ctx, "pipeline:x"); held {
		t.Error("after losing its lease the keeper held the name on the strength of its kept lease")
	}
}

// A keeper asked to yield a kept lease gives it up at once when no hold
// is under way, or when the current hold ends, and leaves it to the
// replica that asked long enough for that one to take it.
func TestYieldHandsAKeptLeaseOver(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	a := &lease.Keeper{Store: st, Owner: "a", TTL: time.Minute}
	b := &lease.Keeper{Store: st, Owner: "b", TTL: time.Minute}
	a.Keep()
	release := mustHold(t, a, "pipeline:x", "")
	release()
	a.Yield(ctx, "pipeline:x") // idle: given up now
	if _, held, _ := a.Hold(ctx, "pipeline:x"); held {
		t.Fatal("the keeper took back at once a lease it yielded")
	}
	rb := mustHold(t, b, "pipeline:x", "the replica that asked could not take a yielded lease")
	rb()

	// Under way: given up when the hold ends.
	release = mustHold(t, a, "pipeline:y", "")
	a.Yield(ctx, "pipeline:y")
	if _, held, _ := b.Hold(ctx, "pipeline:y"); held {
		t.Fatal("a lease was handed over in the middle of a hold")
	}
	release()
	rb = mustHold(t, b, "pipeline:y", "a lease yielded during a hold was not free once it ended")
	rb()
}

// mustHold holds name with k, failing the test (saying why, if given)
// when it cannot.
func mustHold(t *testing.T, k *lease.Keeper, name, why string) (release func()) {
	t.Helper()
	release, held, err := k.Hold(context.Background(), name)
	if err != nil || !held {
		if why == "" {
			why = "could not hold " + name
		}
		t.Fatalf("%s: held %v, err %v", why, held, err)
	}
	return release
}
