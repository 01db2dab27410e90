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
// it before it moves, or HoldLimit has passed: a request that takes longer
// is stuck (a test killed its process) and must not stop time for the
// others.
type VirtualClock struct {
	mu    sync.Mutex
	now   time.Time
	holds int
	free  chan struct{} // closed when holds drops to 0
}

// HoldLimit is the most real time After waits for holds to be released.
const HoldLimit = 2 * time.Second

// NewVirtualClock starts a VirtualClock at start.
func NewVirtualClock(start time.Time) *VirtualClock {
	return &VirtualClock{now: start}
}

// Hold keeps the clock where it is until release is called (once), or
// HoldLimit.
func (c *VirtualClock) Hold() (release func()) {
	c.mu.Lock()
	if c.holds++; c.holds == 1 {
		c.free = make(chan struct{})
	}
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.holds--; c.holds == 0 {
				close(c.free)
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
	deadline := time.After(HoldLimit)
	c.mu.Lock()
wait:
	for c.holds > 0 {
		free := c.free
		c.mu.Unlock()
		select {
		case <-free:
			c.mu.Lock()
		case <-deadline:
			c.mu.Lock()
			break wait
		}
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
