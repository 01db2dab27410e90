// Package lease holds named leases (store.Leases) together with an
// in-process lock per name: the lease keeps other processes (replicas, or a
// process not yet known dead) out of the work it names, the lock keeps the
// goroutines of this one out. Everything that changes a pipeline's rollout,
// or a repository's releases, holds the name through a Keeper, so the two
// locks are taken the same way everywhere.
package lease

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/shipbot/shipbot/internal/keyed"
)

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
	TTL   time.Duration
	Log   *slog.Logger

	mu sync.Mutex
	// keep is set between Keep and ReleaseAll: leases are then kept
	// between holds (renewed as they age) instead of taken and given up
	// for every hold, two writes each, which a busy pipeline paid for
	// every callback.
	keep bool
	// renewed maps each lease kept to when it was last taken or renewed.
	renewed map[string]time.Time
	locks   keyed.Mutex
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
// the keeper keeps its leases.
func (k *Keeper) Hold(ctx context.Context, name string) (release func(), held bool, err error) {
	unlock := k.locks.Lock(name)
	k.mu.Lock()
	keep := k.keep
	renewed, kept := k.renewed[name]
	k.mu.Unlock()
	// A kept lease is renewed once a third of its TTL has passed, so it
	// never comes within two thirds of a TTL of expiring while held.
	if !kept || time.Since(renewed) > k.TTL/3 {
		taken := time.Now()
		ok, err := k.Store.AcquireLease(ctx, name, k.Owner, k.TTL)
		if err != nil || !ok {
			k.forget(name)
			unlock()
			return nil, false, err
		}
		if keep {
			k.mu.Lock()
			if k.renewed == nil {
				k.renewed = map[string]time.Time{}
			}
			k.renewed[name] = taken
			k.mu.Unlock()
		}
	}
	if keep {
		return unlock, true, nil
	}
	return func() {
		defer unlock()
		if err := k.Store.ReleaseLease(context.WithoutCancel(ctx), name, k.Owner); err != nil {
			k.log().Warn("release lease", "lease", name, "err", err)
		}
	}, true, nil
}

// Renew extends a lease held for a long while (within one Hold) once a
// third of its TTL has passed since since; it returns when it renewed, or
// since, and false when the lease was lost.
func (k *Keeper) Renew(ctx context.Context, name string, since time.Time) (time.Time, bool, error) {
	if time.Since(since) <= k.TTL/3 {
		return since, true, nil
	}
	now := time.Now()
	ok, err := k.Store.AcquireLease(ctx, name, k.Owner, k.TTL)
	if err != nil || !ok {
		return since, false, err
	}
	return now, true, nil
}

// ReleaseAll gives up every lease kept and stops keeping them.
func (k *Keeper) ReleaseAll(ctx context.Context) {
	k.mu.Lock()
	names := make([]string, 0, len(k.renewed))
	for name := range k.renewed {
		names = append(names, name)
	}
	clear(k.renewed)
	k.keep = false
	k.mu.Unlock()
	for _, name := range names {
		if err := k.Store.ReleaseLease(ctx, name, k.Owner); err != nil {
			k.log().Warn("release lease", "lease", name, "err", err)
		}
	}
}

func (k *Keeper) forget(name string) {
	k.mu.Lock()
	delete(k.renewed, name)
	k.mu.Unlock()
}

func (k *Keeper) log() *slog.Logger {
	if k.Log != nil {
		return k.Log
	}
	return slog.Default()
}
