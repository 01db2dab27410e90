package deploy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/truncate"
)

// Classes of failure, for errors.Is on an *Error.
var (
	// ErrPermanent: the request will not succeed if repeated (4xx other
	// than 408/429, a redirect, a bad certificate, an invalid target or
	// payload). Fail the stage.
	ErrPermanent = errors.New("permanent failure")
	// ErrExhausted: transient failures (connection errors, timeouts, 5xx,
	// 408, 429) outlasted the retry budget. The same attempt may be resent
	// later with the same key and body, or the stage failed.
	ErrExhausted = errors.New("retries exhausted")
)

// Error is a failed trigger or poll. Its text starts with what was being
// done ("trigger stage qa via spinnaker-qa") and never contains a secret:
// URLs are reduced by RedactURL, and the whole text passes through the
// redactor of every secret the target's file knows (see Scrubber), set by
// the Triggerer, which returns the error, so no message built on the way
// (by a driver included) can forget it.
type Error struct {
	Op     string // "trigger stage qa via spinnaker-qa", "poll workflow run for deploy-workflow"
	Target string
	Kind   string
	// StatusCode is the last HTTP status, 0 when no response came.
	StatusCode int
	Attempts   int
	// Permanent selects ErrPermanent; otherwise the error is ErrExhausted,
	// unless the context ended first (then errors.Is finds its error).
	Permanent bool
	// RetryAfter is the wait the next attempt needed when that is why the
	// retries stopped (a Retry-After past the budget); the engine can
	// schedule the resend then.
	RetryAfter time.Duration

	Msg   string // the failure, already safe to show
	Cause error  // sanitized (see Sanitize): never a *url.Error, which quotes the query
	Why   string // why retrying stopped, if it did
	// ContextDone: the caller's context ended, which is neither the
	// target's fault nor a budget running out; Cause is the context's
	// error.
	ContextDone bool

	red *Redactor
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Attempts > 1 || e.Why != "" {
		fmt.Fprintf(&b, " (after %d attempt%s", e.Attempts, plural(e.Attempts))
		if e.Why != "" {
			b.WriteString("; " + e.Why)
		}
		b.WriteString(")")
	}
	return e.red.Redact(b.String())
}

// scrubbed makes err, a driver's, safe to show: an *Error gets the
// redactor its text passes through; any other error (a driver's slip,
// since the Driver contract asks for *Error) becomes an *Error of op whose
// text red has scrubbed, keeping only a context's error as its cause, so
// that no text built on the way can carry a secret out.
func scrubbed(err error, red *Redactor, op string, t config.Target) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		e.red = red
		return err
	}
	e = &Error{Op: op, Target: t.Name, Kind: t.Kind, Msg: err.Error(), red: red}
	for _, c := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, c) {
			e.ContextDone, e.Cause = true, c
		}
	}
	return e
}

// Unwrap exposes the sanitized cause, so errors.Is(err,
// context.DeadlineExceeded) and friends work.
func (e *Error) Unwrap() error { return e.Cause }

// Is makes errors.Is(err, ErrPermanent) and errors.Is(err, ErrExhausted)
// answer by class.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrPermanent:
		return e.Permanent
	case ErrExhausted:
		return !e.Permanent && !e.ContextDone
	}
	return false
}

// IsPermanent reports whether err is a failure that repeating the same
// request will not fix.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Sanitize drops the *url.Error layer, whose text repeats the whole URL
// (query included; net/http only masks the password), keeping the inner
// error for errors.Is.
func Sanitize(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// IsCertError reports TLS failures that no retry can fix.
func IsCertError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify)
}

// Snippet turns a response body into a short single line that is safe to
// quote: scrubbed first (a body may echo our payload, secrets included),
// then cut, so a cut never leaves half a secret unscrubbed.
func Snippet(body []byte, r *Redactor) string {
	s := r.Redact(string(body))
	s = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) || c == unicode.ReplacementChar {
			return ' '
		}
		return c
	}, s)
	return truncate.Bytes(strings.Join(strings.Fields(s), " "), 200, "…")
}
