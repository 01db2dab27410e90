package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults for a zero TokenBackoff.
const (
	DefaultTokenBackoffInitial = time.Second
	DefaultTokenBackoffMax     = 2 * time.Minute
)

// TokenBackoff says how an installation's token fetches back off after a
// failure. Every API call of an installation needs its token, and
// ghinstallation fetches one on each call for as long as it has none: with
// GitHub unreachable, one delivery's five attempts made 68 token requests,
// each itself retried by the transport. After a failed fetch the next one
// waits Initial, doubling per consecutive failure up to Max; calls in
// between fail at once with a *TokenBackoffError. A successful fetch resets
// it. Zero fields take the defaults.
type TokenBackoff struct {
	Initial time.Duration
	Max     time.Duration
	// Now is the clock; tests inject a fake.
	Now func() time.Time
}

func (b TokenBackoff) withDefaults() TokenBackoff {
	if b.Initial <= 0 {
		b.Initial = DefaultTokenBackoffInitial
	}
	if b.Max <= 0 {
		b.Max = DefaultTokenBackoffMax
	}
	b.Max = max(b.Max, b.Initial)
	if b.Now == nil {
		b.Now = time.Now
	}
	return b
}

// wait is the backoff after the given number of consecutive failures.
func (b TokenBackoff) wait(failures int) time.Duration {
	if shift := failures - 1; shift < 30 {
		return min(b.Initial<<shift, b.Max)
	}
	return b.Max
}

// TokenBackoffError is a call refused without a request because its
// installation's token fetches are backing off. Callers going through
// go-github receive it wrapped; errors.As finds it.
type TokenBackoffError struct {
	Installation int64
	Failures     int       // consecutive failed fetches
	NextTry      time.Time // when a fetch will be tried again
	Wait         time.Duration
	Err          error // the last fetch's failure
}

func (e *TokenBackoffError) Error() string {
	plural := "s"
	if e.Failures == 1 {
		plural = ""
	}
	return fmt.Sprintf("github installation %d: no installation token: %d failed fetch%s, next try at %s (in %s); last error: %v",
		e.Installation, e.Failures, plural, e.NextTry.UTC().Format(time.RFC3339), e.Wait.Round(time.Millisecond), e.Err)
}

func (e *TokenBackoffError) Unwrap() error { return e.Err }

// tokenGate sits under one installation's ghinstallation.Transport, which
// sends its token requests and its API calls through it; it passes API
// calls through and holds back token requests during a backoff. It sits
// above the retrying transport, so one fetch still gets that transport's
// retries, and the backoff starts only once those are spent.
type tokenGate struct {
	next         http.RoundTripper
	installation int64
	policy       TokenBackoff
	log          *slog.Logger

	mu       sync.Mutex
	failures int
	nextTry  time.Time
	last     error
}

func newTokenGate(next http.RoundTripper, installation int64, p TokenBackoff, log *slog.Logger) *tokenGate {
	if log == nil {
		log = slog.Default()
	}
	return &tokenGate{next: next, installation: installation, policy: p.withDefaults(), log: log}
}

func (g *tokenGate) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/access_tokens") ||
		Classify(req.Method, req.URL.EscapedPath()) != tokenClass {
		return g.next.RoundTrip(req)
	}
	g.mu.Lock()
	if g.failures > 0 {
		if now := g.policy.Now(); now.Before(g.nextTry) {
			err := &TokenBackoffError{Installation: g.installation, Failures: g.failures,
				NextTry: g.nextTry, Wait: g.nextTry.Sub(now), Err: g.last}
			g.mu.Unlock()
			if req.Body != nil {
				req.Body.Close() // a RoundTripper closes the body, even on error
			}
			return nil, err
		}
	}
	g.mu.Unlock()

	resp, err := g.next.RoundTrip(req)
	cause := err
	if err == nil && resp.StatusCode/100 != 2 {
		cause = &StatusError{StatusCode: resp.StatusCode, Status: resp.Status}
	}
	if cause != nil && req.Context().Err() != nil &&
		(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// The caller gave up; that says nothing about GitHub.
		return resp, err
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if cause == nil {
		if g.failures > 0 {
			g.log.LogAttrs(req.Context(), slog.LevelInfo, "installation token fetched again",
				slog.Int64("installation", g.installation), slog.Int("failed_fetches", g.failures))
		}
		g.failures, g.last = 0, nil
		return resp, nil
	}
	g.failures++
	wait := g.policy.wait(g.failures)
	g.nextTry, g.last = g.policy.Now().Add(wait), cause
	g.log.LogAttrs(req.Context(), slog.LevelWarn, "installation token fetch failed; backing off",
		slog.Int64("installation", g.installation), slog.Int("failed_fetches", g.failures),
		slog.Duration("wait", wait), slog.String("error", cause.Error()))
	return resp, err
}
