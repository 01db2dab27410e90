package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shipbot/shipbot/internal/truncate"
)

// Defaults for a zero RetryPolicy.
const (
	DefaultMaxAttempts = 4
	DefaultMaxWait     = 30 * time.Second
	DefaultBaseDelay   = 500 * time.Millisecond
	DefaultMaxDelay    = 10 * time.Second
)

// secondaryLimitWait is how long to back off from a secondary rate limit
// that does not say how long: GitHub's documentation asks for "at least one
// minute", and integrations that keep hammering can be banned.
const secondaryLimitWait = time.Minute

// bodyPeekLimit bounds how much of an error response is read to look for
// GitHub's message, so a huge or endless body cannot stall the transport.
const bodyPeekLimit = 64 << 10

// tokenClass is the class of the installation token request.
const tokenClass = "POST /app/installations/{installation_id}/access_tokens"

// RetryPolicy says how hard the transport tries. Zero fields take the
// defaults above.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts including the first.
	MaxAttempts int
	// MaxWait is the total time one call may spend sleeping between
	// attempts. A negative value allows no sleeping, so only retries that
	// need no wait happen.
	MaxWait time.Duration
	// BaseDelay and MaxDelay shape the exponential backoff (with full
	// jitter) used when the server does not say how long to wait.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Sleep waits for d or until ctx ends; tests inject a fake.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock used to turn X-RateLimit-Reset into a wait; tests
	// inject a fake.
	Now func() time.Time
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	switch {
	case p.MaxWait == 0:
		p.MaxWait = DefaultMaxWait
	case p.MaxWait < 0:
		p.MaxWait = 0
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.Sleep == nil {
		p.Sleep = sleepContext
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return p
}

func sleepContext(ctx context.Context, d time.Duration) error {
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

// StatusError is an HTTP error response the transport consumed instead of
// passing on: the last response of a call it gave up retrying, or a failed
// installation token request.
type StatusError struct {
	StatusCode int
	Status     string // e.g. "502 Bad Gateway"
	Message    string // GitHub's "message" field, when the body had one
}

func (e *StatusError) Error() string {
	s := e.Status
	if s == "" {
		s = strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// RetryError is returned when the transport stops retrying a call that
// failed in a retryable way (connection error, 5xx, rate limit). Callers
// going through go-github receive it wrapped in a *url.Error; errors.As
// finds it.
//
// Giving up returns an error rather than the last response so the caller
// sees the whole story in one line (which endpoint, how many attempts,
// why it stopped) instead of a bare go-github ErrorResponse that looks
// like a first failure; and so that ghinstallation, which neither closes
// nor reports the body of a failed token response, gets a wrapped cause.
// Responses that are not retryable (404, 422, a 502 to a POST, ...) are
// passed through untouched, so go-github's ErrorResponse and status checks
// keep working for them.
type RetryError struct {
	Op       string // endpoint class, see Classify
	Attempts int
	// Wait is the wait the next attempt needed when that is why the
	// transport stopped (over the budget or past the context deadline),
	// e.g. the time until a rate limit resets; 0 when attempts ran out.
	// A scheduler can use it to try again later.
	Wait time.Duration
	Err  error // the last failure: a transport error or *StatusError

	why string
}

func (e *RetryError) Error() string {
	plural := "s"
	if e.Attempts == 1 {
		plural = ""
	}
	s := fmt.Sprintf("github %s: giving up after %d attempt%s: %v", e.Op, e.Attempts, plural, e.Err)
	if e.why != "" {
		s += " (" + e.why + ")"
	}
	return s
}

func (e *RetryError) Unwrap() error { return e.Err }

// NewTransport returns the retrying, counting round tripper that sits under
// ghinstallation (see the package documentation). base nil means
// http.DefaultTransport; calls and log may be nil.
func NewTransport(base http.RoundTripper, p RetryPolicy, calls *CallCounter, log *slog.Logger) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if log == nil {
		log = slog.Default()
	}
	return &transport{base: base, policy: p.withDefaults(), calls: calls, log: log}
}

type transport struct {
	base   http.RoundTripper
	policy RetryPolicy
	calls  *CallCounter
	log    *slog.Logger
}

// verdict is what one attempt's outcome means for the next.
type verdict struct {
	retry    bool
	wait     time.Duration // the server's demand when mandated
	mandated bool          // wait comes from the server, not from backoff
	reason   string        // for logs
	cause    error         // the failure to report if we give up
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	op := Classify(req.Method, req.URL.EscapedPath())
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	var slept time.Duration

	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 {
			r = req.Clone(ctx)
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, fmt.Errorf("github %s: replay request body for attempt %d: %w", op, attempt, err)
				}
				r.Body = body
			}
		}

		resp, err := t.base.RoundTrip(r)
		status := "error"
		if err == nil {
			status = strconv.Itoa(resp.StatusCode)
		}
		t.calls.Record(op, status)
		if tl := tallyFrom(ctx); tl != nil {
			tl.n.Add(1)
			if isWrite(r.Method) && op != tokenClass {
				tl.writes.Add(1)
			}
		}

		v := t.judge(req.Method, op, resp, err)
		if !v.retry {
			if err != nil {
				if attempt > 1 {
					return nil, fmt.Errorf("github %s: attempt %d: %w", op, attempt, err)
				}
				return nil, fmt.Errorf("github %s: %w", op, err)
			}
			if op == tokenClass && resp.StatusCode/100 != 2 {
				// ghinstallation never closes a failed token response and
				// reports only its status line; an error carrying GitHub's
				// message ("A JSON web token could not be decoded", ...)
				// tells the operator what is wrong with the App set-up.
				se := statusError(resp)
				drainClose(resp.Body)
				return nil, fmt.Errorf("github %s: %w", op, se)
			}
			return resp, nil
		}

		giveUp := func(wait time.Duration, why string) (*http.Response, error) {
			if resp != nil {
				drainClose(resp.Body)
			}
			e := &RetryError{Op: op, Attempts: attempt, Wait: wait, Err: v.cause, why: why}
			t.log.LogAttrs(ctx, slog.LevelWarn, "github call failed, giving up",
				slog.String("op", op), slog.Int("attempts", attempt),
				slog.String("reason", v.reason), slog.String("error", v.cause.Error()))
			return nil, e
		}

		if ctx.Err() != nil {
			// The caller is gone; a retry could not be delivered anyway.
			if resp != nil {
				drainClose(resp.Body)
			}
			return nil, fmt.Errorf("github %s: after %d attempts, last %v: %w", op, attempt, v.cause, ctx.Err())
		}
		if !replayable {
			return giveUp(0, "request body cannot be replayed")
		}
		if attempt >= t.policy.MaxAttempts {
			return giveUp(0, "")
		}

		wait := v.wait
		left := t.policy.MaxWait - slept
		if !v.mandated {
			wait = t.backoff(attempt)
			if left <= 0 {
				return giveUp(0, fmt.Sprintf("retry wait budget of %s spent", t.policy.MaxWait))
			}
			// Our own backoff is only advice, so shorten it to fit the
			// budget; a server-mandated wait cannot be shortened.
			wait = min(wait, left)
		}
		if wait > left {
			return giveUp(wait, fmt.Sprintf("next retry needs a wait of %s, more than the %s left of the retry budget", wait, max(left, 0)))
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return giveUp(wait, fmt.Sprintf("next retry needs a wait of %s, past the context deadline", wait))
		}

		t.log.LogAttrs(ctx, slog.LevelInfo, "github call failed, retrying",
			slog.String("op", op), slog.Int("attempt", attempt),
			slog.String("reason", v.reason), slog.String("error", v.cause.Error()),
			slog.Duration("wait", wait))
		if resp != nil {
			drainClose(resp.Body)
		}
		if err := t.policy.Sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("github %s: waiting to retry after %d attempts, last %v: %w", op, attempt, v.cause, err)
		}
		slept += wait
	}
}

// judge decides whether an attempt may be retried and how long to wait.
//
// Idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) are retried on any
// connection error and on 5xx, because repeating them cannot do anything
// twice. POST and PATCH are retried only when GitHub certainly did not
// act on the request: a rate limit rejection (GitHub refuses before doing
// any work) or a dial error (nothing was sent). A 5xx or a dropped
// connection after sending says nothing about whether GitHub created the
// tag, release, comment or deployment, and creating one twice (two
// releases, two sticky comments) is worse than surfacing the failure to
// the caller, whose own idempotency checks can decide what to do.
//
// The installation token request is a POST that is safe to repeat: a
// second token is just another short-lived credential, and every API call
// of the installation waits on it, so it is retried like a GET.
func (t *transport) judge(method, op string, resp *http.Response, err error) verdict {
	idempotent := isIdempotent(method) || op == tokenClass
	if err != nil {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return verdict{}
		case idempotent:
			return verdict{retry: true, reason: "connection error", cause: err}
		case isDialError(err):
			return verdict{retry: true, reason: "connection error before sending", cause: err}
		}
		return verdict{}
	}

	code := resp.StatusCode
	if code == http.StatusForbidden || code == http.StatusTooManyRequests {
		retryAfter, hasRetryAfter := parseRetryAfter(resp.Header.Get("Retry-After"), t.policy.Now())
		if resp.Header.Get("X-RateLimit-Remaining") == "0" {
			wait := retryAfter
			if !hasRetryAfter {
				wait = t.untilReset(resp.Header.Get("X-RateLimit-Reset"))
			}
			return verdict{retry: true, mandated: true, wait: wait, reason: "primary rate limit", cause: statusError(resp)}
		}
		if hasRetryAfter {
			return verdict{retry: true, mandated: true, wait: retryAfter, reason: "secondary rate limit", cause: statusError(resp)}
		}
		msg, docURL := peekMessage(resp)
		if strings.Contains(strings.ToLower(msg), "secondary rate limit") ||
			strings.Contains(docURL, "secondary-rate-limits") || strings.Contains(docURL, "abuse-rate-limits") ||
			code == http.StatusTooManyRequests {
			return verdict{retry: true, mandated: true, wait: secondaryLimitWait, reason: "secondary rate limit", cause: statusError(resp)}
		}
		return verdict{}
	}

	// 501 means the server will never do it; the rest of 5xx are transient.
	if code >= 500 && code != http.StatusNotImplemented && idempotent {
		retryAfter, ok := parseRetryAfter(resp.Header.Get("Retry-After"), t.policy.Now())
		return verdict{retry: true, mandated: ok, wait: retryAfter, reason: "server error", cause: statusError(resp)}
	}
	return verdict{}
}

func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// isDialError reports whether err happened while connecting, before any
// byte of the request was written.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// untilReset turns X-RateLimit-Reset (unix seconds) into a wait. The reset
// has one-second granularity and clocks drift, so the wait is at least a
// second; without a usable header, GitHub's one-minute advice applies.
func (t *transport) untilReset(h string) time.Duration {
	sec, err := strconv.ParseInt(strings.TrimSpace(h), 10, 64)
	if err != nil {
		return secondaryLimitWait
	}
	return max(time.Unix(sec, 0).Sub(t.policy.Now()), time.Second)
}

// parseRetryAfter reads Retry-After as seconds or, per RFC 9110, an HTTP
// date.
func parseRetryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if sec, err := strconv.ParseInt(h, 10, 64); err == nil {
		return max(time.Duration(sec)*time.Second, 0), true
	}
	if at, err := http.ParseTime(h); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

func (t *transport) backoff(attempt int) time.Duration {
	ceiling := t.policy.MaxDelay
	if shift := attempt - 1; shift < 30 {
		ceiling = min(t.policy.BaseDelay<<shift, t.policy.MaxDelay)
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// peekMessage reads the start of an error response for GitHub's message
// and documentation_url, then puts the bytes back so the response can still
// be passed on intact.
func peekMessage(resp *http.Response) (msg, docURL string) {
	if resp.Body == nil {
		return "", ""
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, bodyPeekLimit))
	rest := io.Reader(resp.Body)
	if err != nil {
		rest = errReader{err}
	}
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(head), rest), resp.Body}
	var body struct {
		Message          string `json:"message"`
		DocumentationURL string `json:"documentation_url"`
	}
	if json.Unmarshal(head, &body) != nil {
		return "", ""
	}
	return body.Message, body.DocumentationURL
}

// statusError summarises a response for an error message. It peeks, so the
// body stays readable for whoever closes or passes on the response.
func statusError(resp *http.Response) *StatusError {
	msg, _ := peekMessage(resp)
	// A proxy or a misbehaving server can put anything in the message;
	// keep error lines short.
	msg = truncate.Bytes(msg, 300, "…")
	return &StatusError{StatusCode: resp.StatusCode, Status: resp.Status, Message: msg}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// errReader replays, after the peeked bytes, the read error the peek hit,
// so the eventual reader sees the body fail where it really failed.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// drainClose empties a discarded body (up to a limit) so the connection
// can be reused, then closes it.
func drainClose(body io.ReadCloser) {
	if body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(body, bodyPeekLimit))
	_ = body.Close()
}
