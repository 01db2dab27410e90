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
type VirtualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewVirtualClock starts a VirtualClock at start.
func NewVirtualClock(start time.Time) *VirtualClock { return &VirtualClock{now: start} }

// Now is the clock's time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After moves the clock to d from now and returns a channel that has fired.
func (c *VirtualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	at := c.now.Add(max(d, 0))
	if at.After(c.now) {
		c.now = at
	}
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- at
	return ch
}
