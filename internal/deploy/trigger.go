package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/config"
)

// maxResponse bounds how much of a target's answer is read: enough for
// Echo's JSON or an error message, not a stall on an endless body.
const maxResponse = 64 << 10

// DispatchClients returns the GitHub client to dispatch a workflow in
// repository ("owner/name"), normally the installation client of the App
// installation that covers it (internal/github.Apps.Installation), or the
// Action's token client.
type DispatchClients func(ctx context.Context, repository string) (*gh.Client, error)

// Triggerer sends triggers. Its fields are read-only after first use; it
// is safe for concurrent use.
type Triggerer struct {
	// HTTP sends spinnaker and webhook triggers; nil means a client over
	// http.DefaultTransport. Its redirect policy is overridden: a redirect
	// is never followed (see the package documentation).
	HTTP  *http.Client
	Retry RetryPolicy
	// Dispatch is required for github-dispatch targets only.
	Dispatch DispatchClients
	// Log receives one line per attempt outcome, naming target, kind and
	// host only; nil means slog.Default().
	Log *slog.Logger
	// Version goes into User-Agent as shipbot/<Version>; empty means "dev".
	Version string
}

// Result is an accepted trigger.
type Result struct {
	// EventID is Echo's eventId for spinnaker targets (keep it on the stage
	// execution for Gate polling); empty for the other kinds.
	EventID string
	// Attempts is how many requests it took, at least 1.
	Attempts int
}

// Trigger sends p to target t, retrying transient failures per the policy
// (github-dispatch: see the package documentation). A nil error means the
// target accepted the trigger, not that anything deployed.
func (tr *Triggerer) Trigger(ctx context.Context, t config.Target, p Payload) (_ Result, err error) {
	red := scrubber(t, p)
	defer func() { err = scrubbed(err, red) }()
	op := fmt.Sprintf("trigger stage %s via %s", p.Stage, t.Name)
	if p.Rollback {
		op = fmt.Sprintf("trigger rollback of stage %s via %s", p.Stage, t.Name)
	}
	fail := func(msg string) (Result, error) {
		return Result{}, &Error{Op: op, Target: t.Name, Kind: t.Kind, Permanent: true, msg: msg}
	}
	if err := t.Err(); err != nil {
		return fail(err.Error())
	}
	if err := p.Validate(); err != nil {
		return fail(err.Error())
	}
	switch t.Kind {
	case config.KindSpinnaker, config.KindWebhook:
		return tr.post(ctx, op, t, p, red)
	case config.KindGitHubDispatch:
		return tr.dispatch(ctx, op, t, p, red)
	default:
		return fail(fmt.Sprintf("unknown target kind %q", t.Kind))
	}
}

func (tr *Triggerer) log() *slog.Logger {
	if tr.Log != nil {
		return tr.Log
	}
	return slog.Default()
}

func (tr *Triggerer) userAgent() string {
	v := tr.Version
	if v == "" {
		v = "dev"
	}
	return "shipbot/" + v
}

// client returns a copy of the configured client that never follows a
// redirect: net/http would replay a 307/308 POST, body and secrets
// included, to whatever host the Location names.
func (tr *Triggerer) client() *http.Client {
	c := http.Client{}
	if tr.HTTP != nil {
		c = *tr.HTTP
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// scrubber knows everything a response or an error about this trigger
// could quote that must not be shown: every secret of the targets file
// (the target's own and any other's, which a shared proxy or a misrouted
// request may echo), and the callback URL, whose token lets its holder
// report the stage's outcome.
func scrubber(t config.Target, p Payload) *Redactor {
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

func (tr *Triggerer) post(ctx context.Context, op string, t config.Target, p Payload, red *Redactor) (Result, error) {
	body, err := Body(t, p)
	if err != nil {
		return Result{}, &Error{Op: op, Target: t.Name, Kind: t.Kind, Permanent: true, msg: err.Error()}
	}
	pol := tr.Retry.withDefaults()
	client := tr.client()
	key := p.IdempotencyKey()
	sig := ""
	if t.SigningSecret != "" {
		sig = Sign(t.SigningSecret, body)
	}
	safeURL := RedactURL(t.URL)
	log := tr.log().With(
		slog.String("target", t.Name), slog.String("kind", t.Kind), slog.String("host", host(t.URL)),
		slog.String("stage", p.Stage), slog.String("run_id", p.RunID), slog.Int("attempt", p.Attempt),
		slog.Bool("rollback", p.Rollback))

	var spent time.Duration // attempts as measured plus waits as requested
	for try := 1; ; try++ {
		timeout := min(pol.AttemptTimeout, pol.Budget-spent)
		start := pol.Now()
		o := tr.attempt(ctx, client, t, safeURL, body, key, sig, timeout, red, pol.Now)
		spent += pol.Now().Sub(start)
		if o.ok {
			log.LogAttrs(ctx, slog.LevelInfo, "trigger accepted",
				slog.Int("tries", try), slog.Int("status", o.status), slog.String("event_id", o.eventID))
			return Result{EventID: o.eventID, Attempts: try}, nil
		}
		e := &Error{Op: op, Target: t.Name, Kind: t.Kind, StatusCode: o.status, Attempts: try, msg: o.msg, cause: o.cause}
		giveUp := func(why string) (Result, error) {
			e.why = why
			attrs := []slog.Attr{slog.Int("tries", try), slog.String("reason", o.reason), slog.Bool("permanent", e.Permanent)}
			if why != "" {
				attrs = append(attrs, slog.String("why", why))
			}
			log.LogAttrs(ctx, slog.LevelWarn, "trigger failed", attrs...)
			return Result{}, e
		}
		if ctx.Err() != nil {
			e.ctxDone, e.cause = true, ctx.Err()
			return giveUp("stopped: " + ctx.Err().Error())
		}
		if !o.retry {
			e.Permanent = true
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
				e.RetryAfter = wait
				return giveUp(fmt.Sprintf("Retry-After %s exceeds the %s left of the retry budget", wait, max(left, 0)))
			}
			return giveUp(fmt.Sprintf("retry budget of %s spent", pol.Budget))
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			e.RetryAfter = wait
			return giveUp(fmt.Sprintf("next retry needs a wait of %s, past the context deadline", wait))
		}
		log.LogAttrs(ctx, slog.LevelInfo, "trigger failed, retrying",
			slog.Int("tries", try), slog.String("reason", o.reason), slog.Duration("wait", wait))
		if err := pol.Sleep(ctx, wait); err != nil {
			e.ctxDone, e.cause = true, err
			return giveUp("stopped while waiting to retry: " + err.Error())
		}
		spent += wait
	}
}

// attempt makes one request. Every retry sends the same body, key and
// signature, which is what lets the downstream deduplicate.
func (tr *Triggerer) attempt(ctx context.Context, client *http.Client, t config.Target, safeURL string,
	body []byte, key, sig string, timeout time.Duration, red *Redactor, now func() time.Time) outcome {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		// Only a malformed URL gets here, and url.Parse errors quote it.
		return outcome{reason: "bad url", msg: "invalid target URL " + safeURL}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", tr.userAgent())
	req.Header.Set(IdempotencyKeyHeader, key)
	if sig != "" {
		req.Header.Set(SignatureHeader, sig)
	}

	resp, err := client.Do(req)
	if err != nil {
		cause := sanitize(err)
		o := outcome{cause: cause}
		switch {
		case ctx.Err() != nil:
			o.reason, o.msg = "stopped", fmt.Sprintf("POST %s: %v", safeURL, ctx.Err())
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			o.retry, o.reason = true, "timeout"
			o.msg = fmt.Sprintf("POST %s: no answer within %s", safeURL, timeout)
		case isCertError(err):
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
		if t.Kind != config.KindSpinnaker {
			o.ok = true
			return o
		}
		return echoAnswer(o, data, readErr, safeURL, red)
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
		(code >= 500 && code != http.StatusNotImplemented):
		o.retry = true
		o.wait, o.mandated = retryAfter(resp.Header, now())
	case code/100 == 3:
		o.msg = fmt.Sprintf("%s from %s: redirects are not followed, since they would carry the payload's secrets to another URL; set the target's url to the final address", resp.Status, safeURL)
		return o
	}
	o.msg = fmt.Sprintf("%s from %s", resp.Status, safeURL)
	if s := snippet(data, red); s != "" {
		o.msg += ": " + s
	}
	return o
}

// echoAnswer checks a 2xx from a spinnaker target. Echo answers
// {"eventProcessed":true,"eventId":"…"}; anything else on a 2xx means
// something other than Echo answered (an auth proxy's login page, a
// wrong path on a catch-all server), and calling that accepted would
// report a deploy that never started.
func echoAnswer(o outcome, data []byte, readErr error, safeURL string, red *Redactor) outcome {
	var ans struct {
		EventProcessed *bool  `json:"eventProcessed"`
		EventID        string `json:"eventId"`
	}
	if readErr != nil {
		// The answer was cut off; the event may or may not be in.
		o.retry, o.reason = true, "read error"
		o.msg = fmt.Sprintf("%d from %s, reading the answer: %v", o.status, safeURL, sanitize(readErr))
		return o
	}
	if err := json.Unmarshal(data, &ans); err != nil || ans.EventProcessed == nil {
		o.reason = "not an Echo answer"
		o.msg = fmt.Sprintf("%d from %s is not Spinnaker Echo's answer (want {\"eventProcessed\":true,\"eventId\":…})", o.status, safeURL)
		if s := snippet(data, red); s != "" {
			o.msg += ": " + s
		}
		return o
	}
	if !*ans.EventProcessed {
		o.reason = "event not processed"
		o.msg = fmt.Sprintf("%d from %s: Echo did not process the event", o.status, safeURL)
		return o
	}
	o.ok, o.eventID = true, ans.EventID
	return o
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
