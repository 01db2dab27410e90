package deploy

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults for a zero RetryPolicy field.
const (
	DefaultMaxAttempts    = 5
	DefaultBudget         = 2 * time.Minute
	DefaultAttemptTimeout = 30 * time.Second
	DefaultBaseDelay      = 500 * time.Millisecond
	DefaultMaxDelay       = 15 * time.Second
)

// RetryPolicy bounds how hard Env.Post tries one HTTP target. Zero fields
// take the defaults above.
type RetryPolicy struct {
	// MaxAttempts counts the first attempt.
	MaxAttempts int
	// Budget bounds one Post call: the time spent in attempts plus the
	// waits between them. Waits are counted as requested rather than
	// measured, so an injected Sleep keeps the accounting right.
	Budget time.Duration
	// AttemptTimeout bounds one request, so a target that accepts the
	// connection and never answers costs one attempt, not the stage.
	AttemptTimeout time.Duration
	// BaseDelay and MaxDelay shape the backoff: attempt n waits a uniform
	// random time in [0, min(MaxDelay, BaseDelay·2^(n-1))] ("full
	// jitter"), which spreads out many runs retrying one downstream.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Sleep waits d or until ctx ends; tests inject a recorder.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for attempt durations and Retry-After dates.
	Now func() time.Time
	// Rand returns a uniform duration in [0, n]; tests make it
	// deterministic.
	Rand func(n time.Duration) time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.Budget <= 0 {
		p.Budget = DefaultBudget
	}
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = DefaultAttemptTimeout
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.Sleep == nil {
		p.Sleep = sleep
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Rand == nil {
		p.Rand = func(n time.Duration) time.Duration { return rand.N(n + 1) }
	}
	return p
}

// Backoff is the full-jitter wait after failed attempt n (from 1). Gate
// polling and alarm re-checks in the engine can use it too.
func (p RetryPolicy) Backoff(n int) time.Duration {
	p = p.withDefaults()
	ceiling := p.MaxDelay
	if shift := n - 1; shift >= 0 && shift < 30 {
		ceiling = min(p.BaseDelay<<shift, p.MaxDelay)
	}
	if ceiling <= 0 {
		return 0
	}
	return p.Rand(ceiling)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// maxRetryAfter (seconds) is far beyond any budget; larger values mean the
// same thing.
const maxRetryAfter = 24 * 60 * 60

// retryAfter reads Retry-After as seconds or an HTTP date (RFC 9110).
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
		// Clamp before multiplying: a huge value must not overflow into a
		// negative, i.e. immediate, retry.
		return time.Duration(min(max(sec, 0), maxRetryAfter)) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}
