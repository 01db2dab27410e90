package chatops

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiterForgetsIdleUsers(t *testing.T) {
	// Thousands of one-off commenters must not hold memory for the life of
	// the process, but a user over the limit must not be forgotten.
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := &Limiter{Now: func() time.Time { return now }}
	for i := range 20000 {
		l.Admit("acme/api", fmt.Sprintf("user%d", i))
		now = now.Add(10 * time.Millisecond) // each one whole again a minute later
	}
	if n := len(l.users); n > 4*minSweep {
		t.Errorf("%d users remembered after 20000 one-off commenters over 200s; want at most %d", n, 4*minSweep)
	}
	for range 6 {
		l.Admit("acme/api", "rita")
	}
	for i := range 3 * minSweep { // sweeps, at the same instant
		l.Admit("acme/web", fmt.Sprintf("user%d", i))
	}
	if got := l.Admit("acme/api", "rita"); got != Dropped {
		t.Errorf("rita's seventh command after sweeps: %s; want dropped (she was told)", got)
	}
}
