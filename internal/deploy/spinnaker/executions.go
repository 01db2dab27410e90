package spinnaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
)

// DefaultPollTimeout bounds one request to Gate.
const DefaultPollTimeout = 10 * time.Second

// maxSearchAnswer bounds a search answer; executions carry their stages,
// so a few can be large.
const maxSearchAnswer = 8 << 20

// Execution is what one search of the executions an Echo event started
// found.
type Execution struct {
	State deploy.State
	// Status is Spinnaker's status of the execution that decided State
	// (e.g. TERMINAL), empty when pending.
	Status string
	ID     string // execution id
	Name   string // pipeline name
	// URL is Gate's address of the execution, {gate_url}/pipelines/{id},
	// without credentials; empty when pending.
	URL string
	// Executions is how many executions the event started; one webhook
	// can trigger several pipelines of the application.
	Executions int
}

// Polls implements deploy.Poller.
func (Driver) Polls() string { return "Spinnaker executions" }

// Poll implements deploy.Poller: it searches the executions that the
// trigger's Echo event (c.Ref) started in the target's application.
func (d Driver) Poll(ctx context.Context, env *deploy.Env, t config.Target, c deploy.Check) (deploy.Status, error) {
	ex, err := d.executions(ctx, env, t, c.Ref)
	if err != nil {
		return deploy.Status{}, err
	}
	st := deploy.Status{State: ex.State}
	// The pull request links the execution once it has ended: while the
	// event's pipelines run, which of them decides may still change.
	switch ex.State {
	case deploy.StateSucceeded:
		st.URL = ex.URL
	case deploy.StateFailed:
		st.URL, st.Reason = ex.URL, "Spinnaker execution "+ex.Status
	}
	return st, nil
}

// Overdue implements deploy.Poller: an execution that never ended, or
// never started, says nothing the timeout does not.
func (Driver) Overdue(config.Target, deploy.Check) string { return "" }

// executions reports the state of the executions that Echo event eventID
// started in the target's application, with one request to Gate.
func (d Driver) executions(ctx context.Context, env *deploy.Env, t config.Target, eventID string) (Execution, error) {
	set := settings(t)
	red := deploy.Scrubber(t, deploy.Payload{})
	op := "poll Spinnaker executions for " + t.Name
	fail := func(permanent bool, status int, msg string, cause error) (Execution, error) {
		return Execution{}, &deploy.Error{Op: op, Target: t.Name, Kind: t.Kind, StatusCode: status, Attempts: 1,
			Permanent: permanent, Msg: msg, Cause: cause}
	}
	switch {
	case set.GateURL == "" || set.Application == "":
		return fail(true, 0, "target has no gate_url and application", nil)
	case eventID == "":
		return fail(true, 0, "no Echo event id to search for", nil)
	}
	if err := t.Err(); err != nil {
		return fail(true, 0, err.Error(), nil)
	}
	u, err := url.Parse(set.GateURL)
	if err != nil {
		return fail(true, 0, "invalid gate_url "+deploy.RedactURL(set.GateURL), nil)
	}
	u = u.JoinPath("applications", set.Application, "executions", "search")
	q := u.Query()
	q.Set("eventId", eventID)
	q.Set("triggerTypes", "webhook")
	u.RawQuery = q.Encode()
	safeURL := deploy.RedactURL(u.String())

	timeout := d.PollTimeout
	if timeout <= 0 {
		timeout = DefaultPollTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail(true, 0, "invalid gate_url "+deploy.RedactURL(set.GateURL), nil)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", env.UserAgent())
	client := env.HTTP
	if client == nil {
		client = &http.Client{}
	}
	log := env.Logger().With(slog.String("target", t.Name), slog.String("kind", t.Kind), slog.String("host", u.Host),
		slog.String("application", set.Application), slog.String("event_id", eventID))

	resp, err := client.Do(req)
	if err != nil {
		cause := deploy.Sanitize(err)
		msg := fmt.Sprintf("GET %s: %s", safeURL, red.Redact(cause.Error()))
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || deploy.IsTimeout(err)) {
			msg = fmt.Sprintf("GET %s: no answer within %s", safeURL, timeout)
		}
		log.LogAttrs(ctx, slog.LevelWarn, "executions poll failed", slog.String("reason", "connection error"))
		if ctx.Err() != nil {
			return Execution{}, &deploy.Error{Op: op, Target: t.Name, Kind: t.Kind, Attempts: 1, Msg: msg,
				Cause: ctx.Err(), ContextDone: true}
		}
		return fail(deploy.IsCertError(err), 0, msg, cause)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxSearchAnswer+1))
	if err != nil {
		cause := deploy.Sanitize(err)
		return fail(false, resp.StatusCode, fmt.Sprintf("GET %s: reading the answer: %v", safeURL, cause), cause)
	}
	if code := resp.StatusCode; code/100 != 2 {
		msg := fmt.Sprintf("%s from %s", resp.Status, safeURL)
		if s := deploy.Snippet(data, red); s != "" {
			msg += ": " + s
		}
		log.LogAttrs(ctx, slog.LevelWarn, "executions poll failed", slog.Int("status", code))
		permanent := code/100 == 4 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
		return fail(permanent, code, msg, nil)
	}
	if len(data) > maxSearchAnswer {
		return fail(false, resp.StatusCode, fmt.Sprintf("GET %s: answer larger than %d bytes", safeURL, maxSearchAnswer), nil)
	}
	var execs []struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(data, &execs); err != nil {
		return fail(false, resp.StatusCode, fmt.Sprintf("GET %s: not a list of executions: %v", safeURL, err), nil)
	}
	ex := Execution{State: deploy.StatePending, Executions: len(execs)}
	rank := map[deploy.State]int{deploy.StatePending: 0, deploy.StateSucceeded: 1, deploy.StateRunning: 2, deploy.StateFailed: 3}
	for i, e := range execs {
		st := MapStatus(e.Status)
		// One failed pipeline fails the stage even while others run; one
		// still running keeps it open even when others succeeded.
		if i == 0 || rank[st] > rank[ex.State] {
			ex.State, ex.Status, ex.ID, ex.Name = st, e.Status, e.ID, e.Name
		}
	}
	if ex.ID != "" {
		ex.URL = deploy.RedactURL(set.GateURL)
		ex.URL = strings.TrimSuffix(ex.URL, "/") + "/pipelines/" + url.PathEscape(ex.ID)
	}
	log.LogAttrs(ctx, slog.LevelDebug, "executions poll", slog.String("state", string(ex.State)),
		slog.String("status", ex.Status), slog.Int("executions", ex.Executions))
	return ex, nil
}

// MapStatus maps a Spinnaker ExecutionStatus to a State. A status this
// code does not know counts as running, so an unfamiliar Spinnaker
// version cannot end a stage early either way; the stage timeout bounds
// the wait.
func MapStatus(status string) deploy.State {
	switch strings.ToUpper(strings.TrimSpace(status)) {
	case "SUCCEEDED":
		return deploy.StateSucceeded
	case "TERMINAL", "CANCELED", "STOPPED", "FAILED_CONTINUE", "SKIPPED":
		return deploy.StateFailed
	case "":
		return deploy.StatePending
	default: // NOT_STARTED, RUNNING, PAUSED, SUSPENDED, BUFFERED, REDIRECT, …
		return deploy.StateRunning
	}
}
