package githubtest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// GitHub's secondary rate limits for an App installation, from "About
// secondary rate limits" in GitHub's REST API documentation: no more than
// 80 content-generating requests per minute, 500 per hour, and 100
// concurrent requests.
const (
	githubWritesPerMinute = 80
	githubWritesPerHour   = 500
	githubConcurrent      = 100
)

// secondaryDocsURL is the documentation_url of GitHub's secondary rate
// limit 403. go-github turns a 403 whose documentation_url ends in
// "secondary-rate-limits" into *github.AbuseRateLimitError.
const secondaryDocsURL = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"

// secondaryMessage is GitHub's message for the 403, word for word; %s is
// the request id, also sent as X-GitHub-Request-Id.
const secondaryMessage = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID %s."

// SecondaryLimits are the secondary rate limits the fake enforces for each
// App installation (see WithSecondaryLimits). A zero field means GitHub's
// value; a negative field turns that limit off.
type SecondaryLimits struct {
	// PerMinute bounds content-generating requests (POST, PATCH, PUT and
	// DELETE) accepted in any rolling 60 seconds; GitHub's is 80.
	PerMinute int
	// PerHour bounds content-generating requests accepted in any rolling
	// hour; GitHub's is 500.
	PerHour int
	// Concurrent bounds requests of any method in flight at once; GitHub's
	// is 100.
	Concurrent int
	// Now, when set, is the clock the windows roll by, instead of the
	// fake's (WithClock): a test can compress hours of writes into
	// seconds (pacing.VirtualClock) without expiring the installation
	// tokens that the fake's clock dates.
	Now func() time.Time
}

// GitHubSecondaryLimits are GitHub's real secondary rate limits for an
// installation: 80 writes a minute, 500 an hour, 100 concurrent requests.
// WithSecondaryLimits(SecondaryLimits{}) means the same.
func GitHubSecondaryLimits() SecondaryLimits {
	return SecondaryLimits{PerMinute: githubWritesPerMinute, PerHour: githubWritesPerHour, Concurrent: githubConcurrent}
}

// withDefaults fills zero fields with GitHub's values.
func (l SecondaryLimits) withDefaults() SecondaryLimits {
	gh := GitHubSecondaryLimits()
	if l.PerMinute == 0 {
		l.PerMinute = gh.PerMinute
	}
	if l.PerHour == 0 {
		l.PerHour = gh.PerHour
	}
	if l.Concurrent == 0 {
		l.Concurrent = gh.Concurrent
	}
	return l
}

// WithSecondaryLimits makes the fake enforce secondary rate limits per App
// installation, as GitHub does. Only requests made with an installation
// token count: a content-generating request (POST, PATCH, PUT, DELETE)
// over PerMinute or PerHour, or any request over Concurrent, is refused
// with GitHub's 403 (Retry-After in whole seconds, at least 1) and has no
// effect. Refused requests do not count toward the limits. The windows
// roll by the fake's clock (WithClock), so tests advance time instead of
// sleeping. Without this option nothing is refused, but the counters
// behind MaxWritesInAnyMinute and friends still run.
func WithSecondaryLimits(l SecondaryLimits) Option {
	return func(s *Server) {
		l = l.withDefaults()
		s.secondaryLimits = &l
	}
}

// installationLoad is what the secondary limits track for one installation.
type installationLoad struct {
	// writes are the times of accepted content-generating requests in the
	// last hour of the fake's clock, in the order they were accepted.
	writes   []time.Time
	inFlight int
	// The most ever seen, for the Max* accessors.
	maxMinute, maxHour, maxInFlight int
}

// loadLocked returns the tracking for installation inst, creating it.
func (s *Server) loadLocked(inst int64) *installationLoad {
	l := s.loads[inst]
	if l == nil {
		l = &installationLoad{}
		s.loads[inst] = l
	}
	return l
}

// isWrite reports whether method is content-generating in GitHub's sense.
func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// enterLocked starts tracking a request in flight. It returns the
// installation whose in-flight count it raised (0 when the credential is
// not a valid installation token, or when the request is refused), and
// busy when the concurrency limit refuses it. Pair with leave.
func (s *Server) enterLocked(authorization string) (inst int64, busy bool) {
	_, _, id, ok := s.tokenActor(authorization)
	if !ok || id == 0 {
		return 0, false
	}
	l := s.loadLocked(id)
	if lim := s.secondaryLimits; lim != nil && lim.Concurrent > 0 && l.inFlight >= lim.Concurrent {
		return 0, true
	}
	l.inFlight++
	l.maxInFlight = max(l.maxInFlight, l.inFlight)
	return id, false
}

// leave ends what enterLocked started; inst 0 is a no-op.
func (s *Server) leave(inst int64) {
	if inst == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads[inst].inFlight--
}

// admitWriteLocked applies the per-minute and per-hour limits to a
// content-generating request of installation inst. It records an admitted
// write and returns 0, or returns how long until both windows admit one
// more, leaving the windows untouched.
func (s *Server) admitWriteLocked(inst int64) time.Duration {
	now := s.now()
	if lim := s.secondaryLimits; lim != nil && lim.Now != nil {
		now = lim.Now()
	}
	l := s.loadLocked(inst)
	// Forget what has left the longest window.
	l.writes = slices.DeleteFunc(l.writes, func(t time.Time) bool { return !t.After(now.Add(-time.Hour)) })
	if lim := s.secondaryLimits; lim != nil {
		wait := max(windowWait(l.writes, now, time.Minute, lim.PerMinute), windowWait(l.writes, now, time.Hour, lim.PerHour))
		if wait > 0 {
			return wait
		}
	}
	l.writes = append(l.writes, now)
	// A window ending at an accepted write holds the most writes of any
	// window around it, so the maximum over windows ending now is the
	// maximum over all windows.
	l.maxMinute = max(l.maxMinute, len(inWindow(l.writes, now, time.Minute)))
	l.maxHour = max(l.maxHour, len(inWindow(l.writes, now, time.Hour)))
	return 0
}

// inWindow returns the times in writes inside the rolling window that ends
// at now, (now-window, now], sorted.
func inWindow(writes []time.Time, now time.Time, window time.Duration) []time.Time {
	var in []time.Time
	for _, t := range writes {
		if t.After(now.Add(-window)) && !t.After(now) {
			in = append(in, t)
		}
	}
	slices.SortFunc(in, time.Time.Compare)
	return in
}

// windowWait is how long until the rolling window admits one more write
// under limit: 0 when it does now, else until enough of the oldest writes
// in it have left. limit < 0 is no limit.
func windowWait(writes []time.Time, now time.Time, window time.Duration, limit int) time.Duration {
	if limit < 0 {
		return 0
	}
	in := inWindow(writes, now, window)
	if len(in) < limit {
		return 0
	}
	// One more fits once all but limit-1 of them have left; the write at
	// index len-limit is the last of those to go.
	return in[len(in)-limit].Add(window).Sub(now)
}

// refuseSecondary answers GitHub's secondary rate limit 403 into the
// response header h, with Retry-After of wait rounded up to whole seconds
// (at least 1), and counts the refusal.
func (s *Server) refuseSecondary(h http.Header, wait time.Duration) (int, any) {
	s.secondaryRefusals++
	secs := max(int64((wait+time.Second-1)/time.Second), 1)
	id := s.requestIDLocked()
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("X-GitHub-Request-Id", id)
	return http.StatusForbidden, errorBody{
		Message:          fmt.Sprintf(secondaryMessage, id),
		DocumentationURL: secondaryDocsURL,
		Status:           "403",
	}
}

// SecondaryLimitRefusals is how many requests the secondary rate limits
// have refused since New; always 0 without WithSecondaryLimits.
func (s *Server) SecondaryLimitRefusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secondaryRefusals
}

// MaxWritesInAnyMinute is the most content-generating requests (POST,
// PATCH, PUT, DELETE with an installation token) the fake accepted from
// installation in any rolling 60 seconds of its clock, so a test can
// assert a client stays under GitHub's 80. It is measured with or without
// WithSecondaryLimits; refused requests are not counted.
func (s *Server) MaxWritesInAnyMinute(installation int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.loads[installation]; l != nil {
		return l.maxMinute
	}
	return 0
}

// MaxWritesInAnyHour is MaxWritesInAnyMinute over a rolling hour, to
// compare with GitHub's 500.
func (s *Server) MaxWritesInAnyHour(installation int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.loads[installation]; l != nil {
		return l.maxHour
	}
	return 0
}

// MaxConcurrentRequests is the most requests of installation the fake has
// had in flight at once, to compare with GitHub's 100. It is measured with
// or without WithSecondaryLimits; refused requests are not counted.
func (s *Server) MaxConcurrentRequests(installation int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.loads[installation]; l != nil {
		return l.maxInFlight
	}
	return 0
}
