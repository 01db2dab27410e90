package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/config"
)

// maxResponse bounds how much of a target's answer is read: enough for
// Echo's JSON or an error message, not a stall on an endless body.
const maxResponse = 64 << 10

// GitHubClients returns the GitHub client to call repository ("owner/
// name") with, normally the installation client of the App installation
// that covers it (internal/github.Apps.Installation), or the Action's token
// client: for kinds that call GitHub, such as github-dispatch.
type GitHubClients func(ctx context.Context, repository string) (*gh.Client, error)

// Env is what every driver is given: the ways out all kinds share. Its
// fields are read-only after first use.
type Env struct {
	// HTTP sends requests to targets; nil means a client over
	// http.DefaultTransport. Post overrides its redirect policy: a
	// redirect is never followed (see the package documentation).
	HTTP  *http.Client
	Retry RetryPolicy
	// GitHub is required by the kinds that call GitHub only.
	GitHub GitHubClients
	// Log receives one line per attempt outcome, naming target, kind and
	// host only; nil means slog.Default().
	Log *slog.Logger
	// Version goes into User-Agent as shipbot/<Version>; empty means "dev".
	Version string
}

// Triggerer is the rollout engine's way out to its targets: it finds each
// target's driver and gives it the Env. It is safe for concurrent use.
type Triggerer struct {
	Env
	// Drivers are the kinds of target it can reach; nil reaches none.
	Drivers *Registry
}

// Result is an accepted trigger.
type Result struct {
	// EventID is what the deploy is found by later (Check.Ref): Echo's
	// eventId for spinnaker targets, kept on the stage execution for
	// polling; empty for kinds that need none.
	EventID string
	// Attempts is how many requests it took, at least 1.
	Attempts int
}

// Trigger sends p to target t through its kind's driver. A nil error
// means the target accepted the trigger, not that anything deployed.
func (tr *Triggerer) Trigger(ctx context.Context, t config.Target, p Payload) (_ Result, err error) {
	op, red := TriggerOp(t, p), Scrubber(t, p)
	defer func() { err = scrubbed(err, red, op, t) }()
	fail := func(msg string) (Result, error) {
		return Result{}, &Error{Op: op, Target: t.Name, Kind: t.Kind, Permanent: true, Msg: msg}
	}
	if err := t.Err(); err != nil {
		return fail(err.Error())
	}
	if err := p.Validate(); err != nil {
		return fail(err.Error())
	}
	d, ok := tr.Drivers.Driver(t.Kind)
	if !ok {
		return fail(fmt.Sprintf("unknown target kind %q", t.Kind))
	}
	return d.Trigger(ctx, &tr.Env, t, p)
}

// Learns says how the outcome of a deploy to t reaches shipbot; a target
// of no known kind is waited for by callback.
func (tr *Triggerer) Learns(t config.Target) Learning {
	d, ok := tr.Drivers.Driver(t.Kind)
	if !ok {
		return ByCallback
	}
	l := d.Learns(&tr.Env, t)
	if _, polls := d.(Poller); l == ByPolling && !polls {
		return ByCallback // a driver that cannot poll after all
	}
	return l
}

// Poll asks t's driver once how the deploy of c is going; Learns(t) must
// be ByPolling. A permanent error says that polling stopped and why, which
// the execution keeps (Overdue quotes it).
func (tr *Triggerer) Poll(ctx context.Context, t config.Target, c Check) (Status, error) {
	op, red := "poll "+t.Name, Scrubber(t, c.Payload)
	p, ok := tr.poller(t)
	if !ok {
		return Status{}, scrubbed(&Error{Op: op, Target: t.Name, Kind: t.Kind, Permanent: true,
			Msg: fmt.Sprintf("target kind %q is not polled", t.Kind)}, red, op, t)
	}
	st, err := p.Poll(ctx, &tr.Env, t, c)
	// Scrubbed before anything quotes its text.
	err = scrubbed(err, red, op, t)
	if err != nil && IsPermanent(err) {
		return st, fmt.Errorf("%s%w", stoppedPrefix(p), err)
	}
	return st, err
}

// Overdue explains, for the reason of a stage whose timeout ran out,
// what polling t found out; reason is the execution's reason so far,
// which says why polling stopped if it did. "" adds nothing.
func (tr *Triggerer) Overdue(t config.Target, c Check, reason string) string {
	p, ok := tr.poller(t)
	if !ok {
		return ""
	}
	if strings.HasPrefix(reason, stoppedPrefix(p)) {
		return reason
	}
	return p.Overdue(t, c)
}

func (tr *Triggerer) poller(t config.Target) (Poller, bool) {
	if tr.Learns(t) != ByPolling {
		return nil, false
	}
	d, _ := tr.Drivers.Driver(t.Kind)
	p, ok := d.(Poller)
	return p, ok
}

// stoppedPrefix begins the error of a poll that stopped polling.
func stoppedPrefix(p Poller) string { return p.Polls() + " polling stopped: " }

// TriggerOp says what a trigger of p to t is doing, for its errors:
// "trigger stage qa via spinnaker-qa".
func TriggerOp(t config.Target, p Payload) string {
	if p.Rollback {
		return fmt.Sprintf("trigger rollback of stage %s via %s", p.Stage, t.Name)
	}
	return fmt.Sprintf("trigger stage %s via %s", p.Stage, t.Name)
}

// Logger is where drivers log: Log, or slog.Default().
func (e *Env) Logger() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
}

// UserAgent is shipbot/<Version>.
func (e *Env) UserAgent() string {
	v := e.Version
	if v == "" {
		v = "dev"
	}
	return "shipbot/" + v
}

// client returns a copy of the configured client that never follows a
// redirect: net/http would replay a 307/308 POST, body and secrets
// included, to whatever host the Location names.
func (e *Env) client() *http.Client {
	c := http.Client{}
	if e.HTTP != nil {
		c = *e.HTTP
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Scrubber knows everything a response or an error about a trigger of p
// to t could quote that must not be shown: every secret of the targets
// file (the target's own and any other's, which a shared proxy or a
// misrouted request may echo), and the callback URL, whose token lets its
// holder report the stage's outcome.
func Scrubber(t config.Target, p Payload) *Redactor {
	secrets := t.KnownSecrets()
	if p.CallbackURL != "" {
		secrets = append(secrets, p.CallbackURL)
		if u, err := url.Parse(p.CallbackURL); err == nil {
			if tok := path.Base(u.Path); len(tok) >= 16 {
				secrets = append(secrets, tok)
			}
		}
	}
	return NewRedactor(secrets...)
}

// Answer is a target's 2xx answer to a Post, for the driver's Accept to
// judge.
type Answer struct {
	Status int
	// Body is the answer, at most 64 KiB of it; ReadErr says why the rest
	// could not be read (the answer was cut off).
	Body    []byte
	ReadErr error
	// URL is the target's URL reduced by RedactURL: safe to quote.
	URL string
	red *Redactor
}

// Snippet is the body as a short single line, scrubbed of every secret:
// safe to quote.
func (a Answer) Snippet() string { return Snippet(a.Body, a.red) }

// Refusal is a 2xx answer that does not accept the trigger (a login page
// where Echo's answer was due, say).
type Refusal struct {
	// Retry: the same request may yet be accepted (the answer was cut off).
	Retry  bool
	Reason string // short, for logs
	Msg    string // for the error, safe to show
}

// Accept judges a target's 2xx answer: what the deploy is found by later
// (Result.EventID), or why the answer does not accept the trigger.
type Accept func(Answer) (eventID string, refused *Refusal)

// outcome is what one attempt's answer means.
type outcome struct {
	eventID  string
	status   int
	ok       bool
	retry    bool          // transient; otherwise a failure is permanent
	wait     time.Duration // Retry-After, when the target set one
	mandated bool
	reason   string // short, for logs: "503 Service Unavailable", "timeout"
	msg      string // for the error, safe to show
	cause    error  // sanitized
}

// Post sends p to t's URL as JSON (Body), signed when t has a signing
// secret, retrying transient failures per e.Retry with the same body and
// Idempotency-Key (see the package documentation). accept judges a 2xx
// answer; nil takes any 2xx for an acceptance.
func (e *Env) Post(ctx context.Context, t config.Target, p Payload, accept Accept) (Result, error) {
	op, red := TriggerOp(t, p), Scrubber(t, p)
	body, err := Body(t, p)
	if err != nil {
		return Result{}, &Error{Op: op, Target: t.Name, Kind: t.Kind, Permanent: true, Msg: err.Error()}
	}
	pol := e.Retry.withDefaults()
	client := e.client()
	key := p.IdempotencyKey()
	sig := ""
	if t.SigningSecret != "" {
		sig = Sign(t.SigningSecret, body)
	}
	safeURL := RedactURL(t.URL)
	log := e.Logger().With(
		slog.String("target", t.Name), slog.String("kind", t.Kind), slog.String("host", host(t.URL)),
		slog.String("stage", p.Stage), slog.String("run_id", p.RunID), slog.Int("attempt", p.Attempt),
		slog.Bool("rollback", p.Rollback))

	var spent time.Duration // attempts as measured plus waits as requested
	for try := 1; ; try++ {
		timeout := min(pol.AttemptTimeout, pol.Budget-spent)
		start := pol.Now()
		o := e.attempt(ctx, client, t, safeURL, body, key, sig, timeout, red, accept, pol.Now)
		spent += pol.Now().Sub(start)
		if o.ok {
			log.LogAttrs(ctx, slog.LevelInfo, "trigger accepted",
				slog.Int("tries", try), slog.Int("status", o.status), slog.String("event_id", o.eventID))
			return Result{EventID: o.eventID, Attempts: try}, nil
		}
		fail := &Error{Op: op, Target: t.Name, Kind: t.Kind, StatusCode: o.status, Attempts: try, Msg: o.msg, Cause: o.cause}
		giveUp := func(why string) (Result, error) {
			fail.Why = why
			attrs := []slog.Attr{slog.Int("tries", try), slog.String("reason", o.reason), slog.Bool("permanent", fail.Permanent)}
			if why != "" {
				attrs = append(attrs, slog.String("why", why))
			}
			log.LogAttrs(ctx, slog.LevelWarn, "trigger failed", attrs...)
			return Result{}, fail
		}
		if ctx.Err() != nil {
			fail.ContextDone, fail.Cause = true, ctx.Err()
			return giveUp("stopped: " + ctx.Err().Error())
		}
		if !o.retry {
			fail.Permanent = true
			return giveUp("")
		}
		if try >= pol.MaxAttempts {
			return giveUp("retry attempts exhausted")
		}
		left := pol.Budget - spent
		wait := o.wait
		if !o.mandated {
			// Our own backoff is advice: shorten it so that an attempt
			// still fits in what is left.
			wait = min(pol.Backoff(try), left/2)
		}
		if left <= 0 || wait >= left {
			if o.mandated {
				fail.RetryAfter = wait
				return giveUp(fmt.Sprintf("Retry-After %s exceeds the %s left of the retry budget", wait, max(left, 0)))
			}
			return giveUp(fmt.Sprintf("retry budget of %s spent", pol.Budget))
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			fail.RetryAfter = wait
			return giveUp(fmt.Sprintf("next retry needs a wait of %s, past the context deadline", wait))
		}
		log.LogAttrs(ctx, slog.LevelInfo, "trigger failed, retrying",
			slog.Int("tries", try), slog.String("reason", o.reason), slog.Duration("wait", wait))
		if err := pol.Sleep(ctx, wait); err != nil {
			fail.ContextDone, fail.Cause = true, err
			return giveUp("stopped while waiting to retry: " + err.Error())
		}
		spent += wait
	}
}

// attempt makes one request. Every retry sends the same body, key and
// signature, which is what lets the downstream deduplicate.
func (e *Env) attempt(ctx context.Context, client *http.Client, t config.Target, safeURL string,
	body []byte, key, sig string, timeout time.Duration, red *Redactor, accept Accept, now func() time.Time) outcome {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		// Only a malformed URL gets here, and url.Parse errors quote it.
		return outcome{reason: "bad url", msg: "invalid target URL " + safeURL}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", e.UserAgent())
	req.Header.Set(IdempotencyKeyHeader, key)
	if sig != "" {
		req.Header.Set(SignatureHeader, sig)
	}

	resp, err := client.Do(req)
	if err != nil {
		cause := Sanitize(err)
		o := outcome{cause: cause}
		switch {
		case ctx.Err() != nil:
			o.reason, o.msg = "stopped", fmt.Sprintf("POST %s: %v", safeURL, ctx.Err())
		case errors.Is(err, context.DeadlineExceeded) || IsTimeout(err):
			o.retry, o.reason = true, "timeout"
			o.msg = fmt.Sprintf("POST %s: no answer within %s", safeURL, timeout)
		case IsCertError(err):
			o.reason = "tls"
			o.msg = fmt.Sprintf("POST %s: %s", safeURL, red.Redact(cause.Error()))
		default:
			o.retry, o.reason = true, "connection error"
			o.msg = fmt.Sprintf("POST %s: %s", safeURL, red.Redact(cause.Error()))
		}
		return o
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	o := outcome{status: resp.StatusCode, reason: resp.Status}
	code := resp.StatusCode
	switch {
	case code/100 == 2:
		if accept == nil {
			o.ok = true
			return o
		}
		id, refused := accept(Answer{Status: code, Body: data, ReadErr: readErr, URL: safeURL, red: red})
		if refused == nil {
			o.ok, o.eventID = true, id
			return o
		}
		o.retry, o.reason, o.msg = refused.Retry, refused.Reason, refused.Msg
		return o
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
		(code >= 500 && code != http.StatusNotImplemented):
		o.retry = true
		o.wait, o.mandated = retryAfter(resp.Header, now())
	case code/100 == 3:
		o.msg = fmt.Sprintf("%s from %s: redirects are not followed, since they would carry the payload's secrets to another URL; set the target's url to the final address", resp.Status, safeURL)
		return o
	}
	o.msg = fmt.Sprintf("%s from %s", resp.Status, safeURL)
	if s := Snippet(data, red); s != "" {
		o.msg += ": " + s
	}
	return o
}

// IsTimeout reports whether err is a request's timeout.
func IsTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
