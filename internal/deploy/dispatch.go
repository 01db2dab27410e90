package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/config"
	ghclient "github.com/shipbot/shipbot/internal/github"
)

// dispatch sends a workflow_dispatch once; see the package documentation
// for why it is not retried here.
func (tr *Triggerer) dispatch(ctx context.Context, op string, t config.Target, p Payload, red *Redactor) (Result, error) {
	repo := t.Repository
	if repo == "" {
		repo = p.Repository
	}
	ref := t.Ref
	if ref == "" {
		ref = p.Tag
	}
	log := tr.log().With(
		slog.String("target", t.Name), slog.String("kind", t.Kind), slog.String("repository", repo),
		slog.String("workflow", t.Workflow), slog.String("stage", p.Stage), slog.String("run_id", p.RunID),
		slog.Int("attempt", p.Attempt), slog.Bool("rollback", p.Rollback))
	permanent := func(msg string) (Result, error) {
		return Result{}, &Error{Op: op, Target: t.Name, Kind: t.Kind, Permanent: true, msg: msg}
	}
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" {
		return permanent(fmt.Sprintf("dispatch repository %q is not owner/name", repo))
	}
	if t.Workflow == "" {
		return permanent("target has no workflow")
	}
	if tr.Dispatch == nil {
		return permanent("no GitHub client configured for github-dispatch targets")
	}
	inputs, err := DispatchInputs(p)
	if err != nil {
		return permanent(err.Error())
	}

	client, e := tr.dispatchClient(ctx, op, t, repo, red)
	if e != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "trigger failed", slog.String("reason", "no client"), slog.Bool("permanent", e.Permanent))
		return Result{}, e
	}
	req := gh.CreateWorkflowDispatchEventRequest{Ref: ref, Inputs: inputs}
	if id, perr := strconv.ParseInt(t.Workflow, 10, 64); perr == nil {
		_, err = client.Actions.CreateWorkflowDispatchEventByID(ctx, owner, name, id, req)
	} else {
		_, err = client.Actions.CreateWorkflowDispatchEventByFileName(ctx, owner, name, t.Workflow, req)
	}
	if err != nil {
		e := githubError(op, t, err, red)
		e.msg = fmt.Sprintf("dispatch %s in %s on %s: %s", t.Workflow, repo, ref, e.msg)
		log.LogAttrs(ctx, slog.LevelWarn, "trigger failed",
			slog.Int("status", e.StatusCode), slog.Bool("permanent", e.Permanent))
		return Result{}, e
	}
	log.LogAttrs(ctx, slog.LevelInfo, "trigger accepted", slog.String("ref", ref))
	return Result{Attempts: 1}, nil
}

// githubError classifies a go-github failure. Its text is rebuilt from
// the status and GitHub's message rather than taken from Error(), which
// repeats the request URL.
// dispatchClient is the GitHub client for repo, or the error saying why
// there is none.
func (tr *Triggerer) dispatchClient(ctx context.Context, op string, t config.Target, repo string, red *Redactor) (*gh.Client, *Error) {
	client, err := tr.Dispatch(ctx, repo)
	if err == nil && client == nil {
		err = errors.New("no client")
	}
	if err != nil {
		e := githubError(op, t, err, red)
		e.msg = fmt.Sprintf("GitHub client for %s: %s", repo, e.msg)
		return nil, e
	}
	return client, nil
}

func githubError(op string, t config.Target, err error, red *Redactor) *Error {
	e := &Error{Op: op, Target: t.Name, Kind: t.Kind, Attempts: 1, cause: sanitize(err)}
	var (
		resp  *gh.ErrorResponse
		rate  *gh.RateLimitError
		abuse *gh.AbuseRateLimitError
		retry *ghclient.RetryError
	)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		e.ctxDone = true
		e.msg = sanitize(err).Error()
	case errors.As(err, &rate):
		e.StatusCode = statusOf(rate.Response)
		e.RetryAfter = max(time.Until(rate.Rate.Reset.Time), 0)
		e.msg = "rate limited: " + red.Redact(rate.Message)
	case errors.As(err, &abuse):
		e.StatusCode = statusOf(abuse.Response)
		if abuse.RetryAfter != nil {
			e.RetryAfter = *abuse.RetryAfter
		}
		e.msg = "secondary rate limit: " + red.Redact(abuse.Message)
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
		e.msg = status
		if resp.Message != "" {
			e.msg += ": " + snippet([]byte(resp.Message), red)
		}
	case errors.As(err, &retry):
		e.Attempts = retry.Attempts
		e.RetryAfter = retry.Wait
		var se *ghclient.StatusError
		if errors.As(retry.Err, &se) {
			e.StatusCode = se.StatusCode
		}
		e.msg = red.Redact(retry.Err.Error())
		e.why = "the GitHub client gave up retrying"
	default:
		e.msg = red.Redact(sanitize(err).Error())
	}
	return e
}

func statusOf(r *http.Response) int {
	if r == nil {
		return 0
	}
	return r.StatusCode
}
