package pacing

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Ledger keeps the write slots taken in each installation's windows, where
// every replica sees them (the store's database).
type Ledger interface {
	// TakeWrite records one write of installation at now and returns 0
	// when lim admits it (see Wait); otherwise it records nothing and
	// returns how long until lim would.
	TakeWrite(ctx context.Context, installation int64, now time.Time, lim Limits) (time.Duration, error)
}

// Clock is the time the pacer reads and waits on; tests drive it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// holder is a Clock that must not move while a write is on its way
// (VirtualClock).
type holder interface {
	Hold() (release func())
}

// hold holds the pacer's clock, if it is a holder.
func (p *Pacer) hold() (release func()) {
	if h, ok := p.clock().(holder); ok {
		return h.Hold()
	}
	return func() {}
}

// WallClock is the real clock.
type WallClock struct{}

// Now is time.Now.
func (WallClock) Now() time.Time { return time.Now() }

// After is time.After.
func (WallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DefaultInFlight is how many requests of one installation a Pacer lets be
// in flight at once. GitHub allows 100; 20 leaves room for several
// replicas, and a client that needs more at once is not pacing itself.
const DefaultInFlight = 20

// Pacer hands out write slots and in-flight places per installation.
// Writers of one installation wait in one queue per process, rollout
// writes ahead of report writes, first come first served within a class,
// and only the queue's head asks the Ledger: a burst of waiting writes
// costs one database round trip per slot, not one per waiter.
// Its zero value is not usable: set Ledger; the rest have defaults.
type Pacer struct {
	Ledger Ledger
	// Limits default to GitHubLimits.
	Limits Limits
	// Clock defaults to WallClock.
	Clock Clock
	// InFlight defaults to DefaultInFlight.
	InFlight int

	mu    sync.Mutex
	insts map[int64]*installation
}

// installation is one installation's queue; p.mu guards it.
type installation struct {
	places  chan struct{} // in-flight requests
	waiting [2][]*waiter  // by Class
	serving bool          // a serve goroutine runs
	arrived chan struct{} // wakes the serve goroutine for a new waiter
	// reportFreeAt is when the last answer for a report write said
	// reporting would fit again (zero: it fitted).
	reportFreeAt time.Time
}

type waiter struct {
	class Class
	done  chan grant // buffered: the grant or the failure
}

type grant struct {
	err     error
	release func() // the clock's hold, until the write is answered
}

func (p *Pacer) clock() Clock {
	if p.Clock == nil {
		return WallClock{}
	}
	return p.Clock
}

func (p *Pacer) limits() Limits {
	if p.Limits == (Limits{}) {
		return GitHubLimits
	}
	return p.Limits
}

// get returns installation id's queue, creating it; p.mu is held. A
// service serves a bounded set of installations, so queues are kept.
func (p *Pacer) get(id int64) *installation {
	if p.insts == nil {
		p.insts = map[int64]*installation{}
	}
	in := p.insts[id]
	if in == nil {
		n := p.InFlight
		if n <= 0 {
			n = DefaultInFlight
		}
		in = &installation{places: make(chan struct{}, n), arrived: make(chan struct{}, 1)}
		p.insts[id] = in
	}
	return in
}

// Enter waits for a place among installation id's requests in flight and
// returns the function that leaves it.
func (p *Pacer) Enter(ctx context.Context, id int64) (leave func(), err error) {
	p.mu.Lock()
	places := p.get(id).places
	p.mu.Unlock()
	select {
	case places <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-places }) }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a request slot of installation %d: %w", id, ctx.Err())
	}
}

// Take waits until one write of class c fits installation id's windows and
// records it. Call done when GitHub has answered the write.
func (p *Pacer) Take(ctx context.Context, id int64, c Class) (done func(), err error) {
	w := &waiter{class: c, done: make(chan grant, 1)}
	p.mu.Lock()
	in := p.get(id)
	in.waiting[c] = append(in.waiting[c], w)
	if !in.serving {
		in.serving = true
		go p.serve(id, in)
	} else {
		select {
		case in.arrived <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
	select {
	case g := <-w.done:
		return g.release, g.err
	case <-ctx.Done():
		p.mu.Lock()
		gone := remove(&in.waiting[c], w)
		p.mu.Unlock()
		if !gone {
			(<-w.done).release() // granted meanwhile: the slot is spent either way
		}
		return nil, fmt.Errorf("wait for a write slot of installation %d: %w", id, ctx.Err())
	}
}

// Pressed reports whether installation id's report writes are waiting, or
// would wait now: reporting then writes only what the pull request must
// show (see the report package).
func (p *Pacer) Pressed(id int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := p.insts[id]
	return in != nil && (len(in.waiting[Report]) > 0 || in.reportFreeAt.After(p.clock().Now()))
}

// ledgerTimeout bounds one look at the ledger, so a stuck database fails
// the waiting write instead of hanging it.
const ledgerTimeout = 30 * time.Second

// serve grants installation id's waiting writes their slots, one at a
// time, and returns when none waits.
func (p *Pacer) serve(id int64, in *installation) {
	for {
		p.mu.Lock()
		w := in.head()
		if w == nil {
			in.serving = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		// Held from the look at the ledger until the write is answered:
		// a virtual clock must not move in between.
		release := p.hold()
		now := p.clock().Now()
		ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout)
		wait, err := p.Ledger.TakeWrite(ctx, id, now, p.limits().For(w.class))
		cancel()
		p.mu.Lock()
		if w.class == Report {
			in.reportFreeAt = time.Time{}
			if err == nil && wait > 0 {
				in.reportFreeAt = now.Add(wait)
			}
		}
		if err != nil || wait == 0 {
			// Fail closed: a write the ledger cannot account for could be
			// the one past GitHub's limit. The caller sees the error.
			remove(&in.waiting[w.class], w)
			if err != nil {
				release()
				release = func() {}
				err = fmt.Errorf("take a write slot of installation %d: %w", id, err)
			}
			w.done <- grant{err: err, release: release}
			p.mu.Unlock()
			continue
		}
		p.mu.Unlock()
		release()
		// Until a slot frees, or a new waiter comes (a rollout write may
		// fit where a report write does not).
		select {
		case <-p.clock().After(wait):
		case <-in.arrived:
		}
	}
}

// head is the next write to serve: the oldest rollout write, else the
// oldest report write.
func (in *installation) head() *waiter {
	for _, q := range in.waiting {
		if len(q) > 0 {
			return q[0]
		}
	}
	return nil
}

// remove takes w out of q, reporting whether it was there.
func remove(q *[]*waiter, w *waiter) bool {
	for i, x := range *q {
		if x == w {
			*q = append((*q)[:i], (*q)[i+1:]...)
			return true
		}
	}
	return false
}
