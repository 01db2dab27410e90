package deploy

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
)

// State is what Gate says about the executions a trigger started.
type State string

const (
	// StatePending: Gate knows no execution for the event yet. Echo
	// starts pipelines asynchronously, and an event that matched no
	// pipeline (wrong constraint secret, say) stays pending forever, so
	// the stage's timeout is what ends it.
	StatePending   State = "pending"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
)

// DefaultPollTimeout bounds one Gate request.
const DefaultPollTimeout = 10 * time.Second

// maxGateResponse bounds a search answer; executions carry their stages,
// so a few can be large.
const maxGateResponse = 8 << 20

// Execution is the outcome of one poll.
type Execution struct {
	State State
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

// Poller asks Spinnaker Gate about executions started by an Echo event.
// It makes one request per Poll and does not retry: the engine polls on
// its own schedule (e.g. RetryPolicy.Backoff capped at a minute) until
// the state is final or the stage times out, and treats an error like
// StatePending unless IsPermanent. Safe for concurrent use.
type Poller struct {
	HTTP    *http.Client  // nil means a client over http.DefaultTransport
	Timeout time.Duration // per request; 0 means DefaultPollTimeout
	Log     *slog.Logger  // nil means slog.Default()
	Version string        // for User-Agent
}

// Poll reports the state of the executions that Echo event eventID
// started in the target's application. The target must be a spinnaker
// target with gate_url and application.
func (pl *Poller) Poll(ctx context.Context, t config.Target, eventID string) (_ Execution, err error) {
	red := scrubber(t, Payload{})
	defer func() { err = scrubbed(err, red) }()
	op := "poll gate for " + t.Name
	fail := func(permanent bool, status int, msg string, cause error) (Execution, error) {
		return Execution{}, &Error{Op: op, Target: t.Name, Kind: t.Kind, StatusCode: status, Attempts: 1,
			Permanent: permanent, msg: msg, cause: cause}
	}
	switch {
	case t.Kind != config.KindSpinnaker:
		return fail(true, 0, fmt.Sprintf("target kind %q has no Gate", t.Kind), nil)
	case t.GateURL == "" || t.Application == "":
		return fail(true, 0, "target has no gate_url and application", nil)
	case eventID == "":
		return fail(true, 0, "no Echo event id to search for", nil)
	}
	if err := t.Err(); err != nil {
		return fail(true, 0, err.Error(), nil)
	}
	u, err := url.Parse(t.GateURL)
	if err != nil {
		return fail(true, 0, "invalid gate_url "+RedactURL(t.GateURL), nil)
	}
	u = u.JoinPath("applications", t.Application, "executions", "search")
	q := u.Query()
	q.Set("eventId", eventID)
	q.Set("triggerTypes", "webhook")
	u.RawQuery = q.Encode()
	safeURL := RedactURL(u.String())

	timeout := pl.Timeout
	if timeout <= 0 {
		timeout = DefaultPollTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail(true, 0, "invalid gate_url "+RedactURL(t.GateURL), nil)
	}
	req.Header.Set("Accept", "application/json")
	v := pl.Version
	if v == "" {
		v = "dev"
	}
	req.Header.Set("User-Agent", "shipbot/"+v)
	client := pl.HTTP
	if client == nil {
		client = &http.Client{}
	}
	log := pl.log().With(slog.String("target", t.Name), slog.String("host", u.Host),
		slog.String("application", t.Application), slog.String("event_id", eventID))

	resp, err := client.Do(req)
	if err != nil {
		cause := sanitize(err)
		msg := fmt.Sprintf("GET %s: %s", safeURL, red.Redact(cause.Error()))
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)) {
			msg = fmt.Sprintf("GET %s: no answer within %s", safeURL, timeout)
		}
		log.LogAttrs(ctx, slog.LevelWarn, "gate poll failed", slog.String("reason", "connection error"))
		if ctx.Err() != nil {
			e := &Error{Op: op, Target: t.Name, Kind: t.Kind, Attempts: 1, msg: msg, cause: ctx.Err(), ctxDone: true}
			return Execution{}, e
		}
		return fail(isCertError(err), 0, msg, cause)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxGateResponse+1))
	if err != nil {
		return fail(false, resp.StatusCode, fmt.Sprintf("GET %s: reading the answer: %v", safeURL, sanitize(err)), sanitize(err))
	}
	if code := resp.StatusCode; code/100 != 2 {
		msg := fmt.Sprintf("%s from %s", resp.Status, safeURL)
		if s := snippet(data, red); s != "" {
			msg += ": " + s
		}
		log.LogAttrs(ctx, slog.LevelWarn, "gate poll failed", slog.Int("status", code))
		permanent := code/100 == 4 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
		return fail(permanent, code, msg, nil)
	}
	if len(data) > maxGateResponse {
		return fail(false, resp.StatusCode, fmt.Sprintf("GET %s: answer larger than %d bytes", safeURL, maxGateResponse), nil)
	}
	var execs []struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(data, &execs); err != nil {
		return fail(false, resp.StatusCode, fmt.Sprintf("GET %s: not a list of executions: %v", safeURL, err), nil)
	}
	ex := Execution{State: StatePending, Executions: len(execs)}
	rank := map[State]int{StatePending: 0, StateSucceeded: 1, StateRunning: 2, StateFailed: 3}
	for i, e := range execs {
		st := MapStatus(e.Status)
		// One failed pipeline fails the stage even while others run; one
		// still running keeps it open even when others succeeded.
		if i == 0 || rank[st] > rank[ex.State] {
			ex.State, ex.Status, ex.ID, ex.Name = st, e.Status, e.ID, e.Name
		}
	}
	if ex.ID != "" {
		ex.URL = RedactURL(t.GateURL)
		ex.URL = strings.TrimSuffix(ex.URL, "/") + "/pipelines/" + url.PathEscape(ex.ID)
	}
	log.LogAttrs(ctx, slog.LevelDebug, "gate poll", slog.String("state", string(ex.State)),
		slog.String("status", ex.Status), slog.Int("executions", ex.Executions))
	return ex, nil
}

func (pl *Poller) log() *slog.Logger {
	if pl.Log != nil {
		return pl.Log
	}
	return slog.Default()
}

// MapStatus maps a Spinnaker ExecutionStatus to a State. A status this
// code does not know counts as running, so an unfamiliar Spinnaker
// version cannot end a stage early either way; the stage timeout bounds
// the wait.
func MapStatus(status string) State {
	switch strings.ToUpper(strings.TrimSpace(status)) {
	case "SUCCEEDED":
		return StateSucceeded
	case "TERMINAL", "CANCELED", "STOPPED", "FAILED_CONTINUE", "SKIPPED":
		return StateFailed
	case "":
		return StatePending
	default: // NOT_STARTED, RUNNING, PAUSED, SUSPENDED, BUFFERED, REDIRECT, …
		return StateRunning
	}
}
