package chatops

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The default command allowance: five commands at once per user and
// repository, then one every 12 seconds (five a minute). Enough for any
// person at a keyboard; a script posting 150 `/shipbot status` comments gets
// five answers and one refusal.
const (
	DefaultCommandBurst = 5
	DefaultCommandEvery = 12 * time.Second
)

// Verdict is the Limiter's decision on one command.
type Verdict int

const (
	// Allowed commands run as usual.
	Allowed Verdict = iota
	// Refused commands do not run; the user gets one reply saying so.
	Refused
	// Dropped commands do not run and get no answer: the user has been
	// told, and answering each would cost what the limit saves.
	Dropped
)

func (v Verdict) String() string {
	switch v {
	case Allowed:
		return "allowed"
	case Refused:
		return "refused"
	}
	return "dropped"
}

// Limiter rations commands per user and repository (a token bucket each,
// golang.org/x/time/rate), so that one person's flood of comments costs
// neither GitHub API calls nor other people's commands their turn. Over the
// limit a user is told once; further commands are dropped without an
// answer until the user has paused long enough for the whole allowance to
// come back, so a flood gets one refusal, not one per comment.
//
// It decides from the comment alone (repository and login), before any API
// call. The count is per process: replicas sharing a database each allow
// the full rate. The zero value is ready to use with the defaults.
type Limiter struct {
	// Burst is how many commands a user may give at once; zero means
	// DefaultCommandBurst.
	Burst int
	// Every is how often the allowance grows by one command; zero means
	// DefaultCommandEvery.
	Every time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	users   map[limitKey]*allowance
	sweepAt int
}

type limitKey struct{ repo, login string }

type allowance struct {
	bucket *rate.Limiter
	told   bool // refused once since the bucket was last full
}

// minSweep is the number of users remembered before idle ones are
// forgotten.
const minSweep = 1024

// Admit decides on one command by login on repo (owner/name; both compared
// without case, as GitHub does).
func (l *Limiter) Admit(repo, login string) Verdict {
	now := l.now()
	burst := l.burst()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := limitKey{strings.ToLower(repo), strings.ToLower(login)}
	a := l.users[k]
	if a == nil {
		if len(l.users) >= max(l.sweepAt, minSweep) {
			l.sweep(now)
		}
		if l.users == nil {
			l.users = map[limitKey]*allowance{}
		}
		a = &allowance{bucket: rate.NewLimiter(rate.Every(l.every()), burst)}
		l.users[k] = a
	}
	if a.told && a.bucket.TokensAt(now) >= float64(burst) {
		a.told = false // paused long enough: a new burst, a new refusal
	}
	switch {
	case a.bucket.AllowN(now, 1):
		return Allowed
	case a.told:
		return Dropped
	}
	a.told = true
	return Refused
}

// sweep forgets users whose allowance is whole again: they are as good as
// new, and without it a crowd of one-off commenters would grow the map for
// the life of the process.
func (l *Limiter) sweep(now time.Time) {
	burst := float64(l.burst())
	for k, a := range l.users {
		if a.bucket.TokensAt(now) >= burst {
			delete(l.users, k)
		}
	}
	l.sweepAt = 2 * len(l.users)
}

// RefusalText is the one answer to a user over the limit.
func (l *Limiter) RefusalText() string {
	return fmt.Sprintf("Sorry, that is more commands than shipbot takes from one person on a repository: "+
		"%d at once, then one every %s. It did not run this one, and it ignores your further commands here, "+
		"without answering, until you pause for %s.",
		l.burst(), duration(l.every()), duration(time.Duration(l.burst())*l.every()))
}

func (l *Limiter) burst() int {
	if l.Burst <= 0 {
		return DefaultCommandBurst
	}
	return l.Burst
}

func (l *Limiter) every() time.Duration {
	if l.Every <= 0 {
		return DefaultCommandEvery
	}
	return l.Every
}

func (l *Limiter) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// duration says d in words: "12 seconds", "a minute", "2 minutes".
func duration(d time.Duration) string {
	switch {
	case d == time.Minute:
		return "a minute"
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	case d == time.Second:
		return "a second"
	case d%time.Second == 0:
		return fmt.Sprintf("%d seconds", d/time.Second)
	}
	return d.String()
}
