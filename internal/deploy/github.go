package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/config"
	ghclient "github.com/shipbot/shipbot/internal/github"
)

// GitHubClient is the GitHub client for repo, from e.GitHub, or the error
// saying why there is none, for a driver's op on t.
func (e *Env) GitHubClient(ctx context.Context, op string, t config.Target, repo string, red *Redactor) (*gh.Client, *Error) {
	if e.GitHub == nil {
		return nil, &Error{Op: op, Target: t.Name, Kind: t.Kind, Permanent: true,
			Msg: fmt.Sprintf("no GitHub client configured for %s targets", t.Kind)}
	}
	client, err := e.GitHub(ctx, repo)
	if err == nil && client == nil {
		err = errors.New("no client")
	}
	if err != nil {
		fail := GitHubError(op, t, err, red)
		fail.Msg = fmt.Sprintf("GitHub client for %s: %s", repo, fail.Msg)
		return nil, fail
	}
	return client, nil
}

// GitHubError classifies a go-github failure of a driver's op on t. Its
// text is rebuilt from the status and GitHub's message rather than taken
// from Error(), which repeats the request URL; red scrubs what GitHub's
// message quotes.
func GitHubError(op string, t config.Target, err error, red *Redactor) *Error {
	e := &Error{Op: op, Target: t.Name, Kind: t.Kind, Attempts: 1, Cause: Sanitize(err)}
	var (
		resp  *gh.ErrorResponse
		rate  *gh.RateLimitError
		abuse *gh.AbuseRateLimitError
		retry *ghclient.RetryError
	)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		e.ContextDone = true
		e.Msg = Sanitize(err).Error()
	case errors.As(err, &rate):
		e.StatusCode = statusOf(rate.Response)
		e.RetryAfter = max(time.Until(rate.Rate.Reset.Time), 0)
		e.Msg = "rate limited: " + red.Redact(rate.Message)
	case errors.As(err, &abuse):
		e.StatusCode = statusOf(abuse.Response)
		if abuse.RetryAfter != nil {
			e.RetryAfter = *abuse.RetryAfter
		}
		e.Msg = "secondary rate limit: " + red.Redact(abuse.Message)
	case errors.As(err, &resp):
		code := statusOf(resp.Response)
		e.StatusCode = code
		e.Permanent = code/100 == 4 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
		if !e.Permanent && resp.Response != nil {
			e.RetryAfter, _ = retryAfter(resp.Response.Header, time.Now())
		}
		status := strconv.Itoa(code)
		if resp.Response != nil && resp.Response.Status != "" {
			status = resp.Response.Status
		}
		e.Msg = status
		if resp.Message != "" {
			e.Msg += ": " + Snippet([]byte(resp.Message), red)
		}
	case errors.As(err, &retry):
		e.Attempts = retry.Attempts
		e.RetryAfter = retry.Wait
		var se *ghclient.StatusError
		if errors.As(retry.Err, &se) {
			e.StatusCode = se.StatusCode
		}
		e.Msg = red.Redact(retry.Err.Error())
		e.Why = "the GitHub client gave up retrying"
	default:
		e.Msg = red.Redact(Sanitize(err).Error())
	}
	return e
}

func statusOf(r *http.Response) int {
	if r == nil {
		return 0
	}
	return r.StatusCode
}
