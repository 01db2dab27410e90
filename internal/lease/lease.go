// Package lease holds named leases (store.Leases) together with an
// in-process lock per name: the lease keeps other processes (replicas, or a
// process not yet known dead) out of the work it names, the lock keeps the
// goroutines of this one out. Everything that changes a pipeline's rollout,
// or a repository's releases, holds the name through a Keeper, so the two
// locks are taken the same way everywhere.
//
// Leases are short (DefaultTTL) so that a dead replica's work is carried
// on within seconds; while a name is held its lease is renewed in the
// background, however long the work under it takes.
package lease

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/shipbot/shipbot/internal/keyed"
)

// DefaultTTL is how long a lease lasts unless its holder renews it: how
// long a dead replica's pipelines and releases wait before another replica
// carries them on.
const DefaultTTL = 10 * time.Second

// yieldFor is how long a keeper that handed a name over on request leaves
// it alone, so the replica that asked gets it before this one's next step
// takes it back.
const yieldFor = 2 * time.Second

// Store is what a Keeper needs of the database.
type Store interface {
	// AcquireLease takes or renews name for owner until now+ttl; it
	// reports false when another owner holds an unexpired lease.
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	// ReleaseLease gives name up if owner holds it.
	ReleaseLease(ctx context.Context, name, owner string) error
}

// Keeper holds leases for one owner.
type Keeper struct {
	Store Store
	Owner string
	TTL   time.Duration // zero means DefaultTTL
	Log   *slog.Logger

	mu sync.Mutex
	// keep is set between Keep and ReleaseAll: leases are then kept
	// between holds (renewed as they age) instead of taken and given up
	// for every hold, two writes each, which a busy pipeline paid for
	// every callback.
	keep bool
	// leases are the names whose lease this keeper has (held now, or kept
	// between holds).
	leases map[string]*held
	// yielded maps names handed over on request to when this keeper may
	// take them again.
	yielded map[string]time.Time
	locks   keyed.Mutex
}

// held is the state of one lease the keeper has.
type held struct {
	renewed time.Time // when last taken or renewed
	holds   int       // holds in progress
	lost    bool      // a renewal found another owner holding it
	yield   bool      // hand it over when the current hold ends
}

func (k *Keeper) ttl() time.Duration {
	if k.TTL > 0 {
		return k.TTL
	}
	return DefaultTTL
}

// Keep makes the keeper keep the leases it takes until ReleaseAll.
func (k *Keeper) Keep() {
	k.mu.Lock()
	k.keep = true
	k.mu.Unlock()
}

// Hold takes name's in-process lock, then its lease. When another owner
// holds the lease, held is false and nothing is held. Otherwise the caller
// must call release when done: it unlocks, and gives the lease up unless
// the keeper keeps its leases. While held, the lease is renewed every third
// of its TTL.
func (k *Keeper) Hold(ctx context.Context, name string) (release func(), ok bool, err error) {
	unlock := k.locks.Lock(name)
	k.mu.Lock()
	if until, y := k.yielded[name]; y && time.Now().Before(until) {
		k.mu.Unlock()
		unlock()
		return nil, false, nil
	}
	h := k.leases[name]
	// A kept lease is renewed once a third of its TTL has passed, so it
	// never comes within two thirds of a TTL of expiring while held.
	// Counting the hold in the same critical section as the check keeps
	// Yield from handing over a lease a hold is about to rely on.
	fresh := h != nil && !h.lost && time.Since(h.renewed) <= k.ttl()/3
	if fresh {
		h.holds++
	}
	k.mu.Unlock()
	if !fresh {
		taken := time.Now()
		got, err := k.Store.AcquireLease(ctx, name, k.Owner, k.ttl())
		if err != nil || !got {
			k.mu.Lock()
			if h := k.leases[name]; h != nil && h.holds == 0 {
				delete(k.leases, name)
			}
			k.mu.Unlock()
			unlock()
			return nil, false, err
		}
		k.mu.Lock()
		if k.leases == nil {
			k.leases = map[string]*held{}
		}
		if h = k.leases[name]; h == nil {
			h = &held{}
			k.leases[name] = h
		}
		h.renewed, h.lost, h.yield = taken, false, false
		h.holds++
		k.mu.Unlock()
	}
	stop := k.heartbeat(ctx, name)
	return func() {
		defer unlock()
		stop()
		k.mu.Lock()
		h.holds--
		giveUp := !k.keep || h.yield || h.lost
		if giveUp && h.holds == 0 {
			delete(k.leases, name)
		}
		lost := h.lost
		k.mu.Unlock()
		if giveUp && !lost {
			k.release(context.WithoutCancel(ctx), name)
		}
	}, true, nil
}

// heartbeat renews name's lease every third of its TTL until stop is
// called. A renewal that finds another owner holding the lease marks it
// lost: Held then says so, and the next Hold asks the database again.
func (k *Keeper) heartbeat(ctx context.Context, name string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(k.ttl() / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			at := time.Now()
			got, err := k.Store.AcquireLease(context.WithoutCancel(ctx), name, k.Owner, k.ttl())
			if err != nil {
				k.log().Warn("renew lease", "lease", name, "err", err)
				continue
			}
			k.mu.Lock()
			if h := k.leases[name]; h != nil {
				if got {
					h.renewed = at
				} else {
					h.lost = true
				}
			}
			k.mu.Unlock()
			if !got {
				k.log().Warn("lease lost while held: another replica took it after it expired", "lease", name)
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// Held reports whether the keeper still has name's lease: false once a
// renewal found another owner holding it. Long work under one hold asks
// before each step it must not take without the lease.
func (k *Keeper) Held(name string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	h := k.leases[name]
	return h != nil && !h.lost
}

// Yield hands name over to another replica that asked for it: at once if
// no hold of this process is under way, else when the current hold ends.
// For a short while after, this keeper does not take it back, so the one
// that asked gets it.
func (k *Keeper) Yield(ctx context.Context, name string) {
	k.mu.Lock()
	if k.yielded == nil {
		k.yielded = map[string]time.Time{}
	}
	k.yielded[name] = time.Now().Add(yieldFor)
	h := k.leases[name]
	if h == nil {
		k.mu.Unlock()
		return
	}
	if h.holds > 0 {
		h.yield = true
		k.mu.Unlock()
		return
	}
	delete(k.leases, name)
	k.mu.Unlock()
	// No hold is under way: give it up now, under the in-process lock so
	// that no hold starts meanwhile on the strength of the kept lease.
	unlock := k.locks.Lock(name)
	defer unlock()
	k.release(ctx, name)
}

// ReleaseAll gives up every lease kept and stops keeping them, and
// reports how many it gave up.
func (k *Keeper) ReleaseAll(ctx context.Context) int {
	k.mu.Lock()
	var names []string
	for name, h := range k.leases {
		if h.holds == 0 {
			names = append(names, name)
			delete(k.leases, name)
		}
	}
	k.keep = false
	k.mu.Unlock()
	for _, name := range names {
		k.release(ctx, name)
	}
	return len(names)
}

func (k *Keeper) release(ctx context.Context, name string) {
	if err := k.Store.ReleaseLease(ctx, name, k.Owner); err != nil {
		k.log().Warn("release lease", "lease", name, "err", err)
	}
}

func (k *Keeper) log() *slog.Logger {
	if k.Log != nil {
		return k.Log
	}
	return slog.Default()
}
