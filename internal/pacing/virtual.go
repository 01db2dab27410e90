package pacing

import (
	"sync"
	"time"
)

// VirtualClock is a Clock in which time passes only when someone waits:
// After(d) moves the clock to d from now (unless it is there already) and
// fires at once. A test or simulation that must see GitHub's hourly limit
// at work (hours of writes) gets the pacer's and the GitHub fake's
// decisions exactly as over real hours, in the seconds the work takes.
//
// A write granted at one instant must reach GitHub (the fake) at that
// instant too, or the two would count it in different windows: a Pacer
// holds the clock (Hold) from its look at the ledger until the granted
// request is answered, and After waits, in real time, until no one holds
// it before it moves.
type VirtualClock struct {
	mu    sync.Mutex
	now   time.Time
	holds int
	free  *sync.Cond // holds reached 0
}

// NewVirtualClock starts a VirtualClock at start.
func NewVirtualClock(start time.Time) *VirtualClock {
	c := &VirtualClock{now: start}
	c.free = sync.NewCond(&c.mu)
	return c
}

// Hold keeps the clock where it is until release is called (once).
func (c *VirtualClock) Hold() (release func()) {
	c.mu.Lock()
	c.holds++
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.holds--; c.holds == 0 {
				c.free.Broadcast()
			}
			c.mu.Unlock()
		})
	}
}

// Now is the clock's time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After moves the clock to d from now and returns a channel that has fired.
func (c *VirtualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	for c.holds > 0 {
		c.free.Wait()
	}
	at := c.now.Add(max(d, 0))
	if at.After(c.now) {
		c.now = at
	}
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- at
	return ch
}
