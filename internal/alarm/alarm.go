// Package alarm answers one question for the rollout engine: is this
// alarm firing right now? A firing alarm blocks a stage from starting and,
// during bake, rolls it back.
//
// Kinds: alertmanager (any active, unsilenced alert matching the filter),
// http (an endpoint answering {"firing": bool}) and prometheus (an instant
// query that returns series; see prometheus.go).
//
// The answer is fail-safe: an alarm that cannot be read (unreachable, a
// timeout, a non-2xx answer, malformed JSON, a Prometheus error or an
// answer it cannot judge, an unset environment variable, an unknown kind)
// counts as firing, with Status.Unknown set and a reason that says so. A
// deploy held back by a broken alarm is a delay; a deploy let through by
// one is an outage nobody was watching.
//
// Checker makes one request per call and does not retry: the engine
// re-checks a blocked stage on its own schedule, and a retry here would
// only delay a verdict that is already safe.
package alarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/shipbot/shipbot/internal/config"
)

// DefaultTimeout bounds one check.
const DefaultTimeout = 5 * time.Second

// maxResponse bounds an answer. An Alertmanager with more matching alerts
// than fit, or a Prometheus vector with more series, is firing anyway, and
// a cut-off answer counts as firing.
const maxResponse = 4 << 20

// Status is one check's verdict.
type Status struct {
	Firing bool
	// Unknown means the alarm could not be read, or answered what it
	// cannot judge (a Prometheus NaN scalar or range vector), so Firing is
	// true by the fail-safe rule rather than because an alert is active.
	Unknown bool
	// Reason is one line for the PR comment and logs, naming the alarm
	// and, when an Alertmanager alert fires, its alertname, or for a
	// Prometheus alarm the PromQL query and the first series it returned.
	// It is bounded in length and never contains the alarm URL's
	// credentials or URL query.
	Reason string
}

// Checker checks alarms. The zero value is ready to use; it is safe for
// concurrent use.
type Checker struct {
	HTTP    *http.Client  // nil means a client over http.DefaultTransport
	Timeout time.Duration // per check; 0 means DefaultTimeout
	Log     *slog.Logger  // nil means slog.Default()
	Version string        // for User-Agent: shipbot/<Version>
}

// Firing checks alarm a. It never fails: when the alarm cannot be read
// the answer is firing (see the package documentation).
func (c *Checker) Firing(ctx context.Context, a config.Alarm) Status {
	st := c.check(ctx, a)
	st.Reason = scrub(st.Reason, a.Secrets())
	level := slog.LevelDebug
	if st.Unknown {
		level = slog.LevelWarn
	}
	c.log().LogAttrs(ctx, level, "alarm checked",
		slog.String("alarm", a.Name), slog.String("kind", a.Kind), slog.String("host", hostOf(a.URL)),
		slog.Bool("firing", st.Firing), slog.Bool("unknown", st.Unknown), slog.String("reason", st.Reason))
	return st
}

func (c *Checker) check(ctx context.Context, a config.Alarm) Status {
	if len(a.Unresolved) > 0 {
		return unknown(a, fmt.Sprintf("environment variable %s not set on the server", strings.Join(a.Unresolved, ", ")))
	}
	switch a.Kind {
	case config.AlarmAlertmanager:
		return c.alertmanager(ctx, a)
	case config.AlarmHTTP:
		return c.http(ctx, a)
	case config.AlarmPrometheus:
		return c.prometheus(ctx, a)
	default:
		return unknown(a, fmt.Sprintf("unknown alarm kind %q", a.Kind))
	}
}

func unknown(a config.Alarm, why string) Status {
	return Status{Firing: true, Unknown: true, Reason: fmt.Sprintf("alarm %s counts as firing: %s", a.Name, why)}
}

func (c *Checker) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// alertmanager asks Alertmanager's API v2 for the active, unsilenced,
// uninhibited alerts matching every matcher of the filter.
func (c *Checker) alertmanager(ctx context.Context, a config.Alarm) Status {
	u, err := url.Parse(a.URL)
	if err != nil || u.Host == "" {
		return unknown(a, "invalid url")
	}
	// JoinPath keeps a route prefix (Alertmanager behind /alertmanager/).
	u = u.JoinPath("api", "v2", "alerts")
	q := u.Query()
	q.Set("active", "true")
	q.Set("silenced", "false")
	q.Set("inhibited", "false")
	for _, m := range a.Filter {
		q.Add("filter", m)
	}
	u.RawQuery = q.Encode()

	data, st, ok := c.get(ctx, a, u.String())
	if !ok {
		return st
	}
	var alerts []struct {
		Labels map[string]string `json:"labels"`
	}
	if err := json.Unmarshal(data, &alerts); err != nil {
		return unknown(a, fmt.Sprintf("malformed answer from %s (want a JSON list of alerts): %s", redactURL(u.String()), jsonProblem(err)))
	}
	filter := "any alert"
	if len(a.Filter) > 0 {
		filter = strings.Join(a.Filter, ", ")
	}
	if len(alerts) == 0 {
		return Status{Reason: fmt.Sprintf("alarm %s is not firing: no active alert matches %s", a.Name, filter)}
	}
	name := clean(alerts[0].Labels["alertname"])
	if name == "" {
		name = "an alert without alertname"
	}
	more := ""
	if n := len(alerts); n > 1 {
		more = fmt.Sprintf(" and %d more", n-1)
	}
	return Status{Firing: true, Reason: fmt.Sprintf("alarm %s is firing: %s%s (matching %s)", a.Name, name, more, filter)}
}

// http reads an endpoint answering {"firing": bool}. The field must be
// there and be a boolean: {} or {"firing": "false"} is malformed, not
// quiet.
func (c *Checker) http(ctx context.Context, a config.Alarm) Status {
	data, st, ok := c.get(ctx, a, a.URL)
	if !ok {
		return st
	}
	var ans struct {
		Firing *bool `json:"firing"`
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		return unknown(a, fmt.Sprintf(`malformed answer from %s (want {"firing": true|false}): %s`, redactURL(a.URL), jsonProblem(err)))
	}
	if ans.Firing == nil {
		return unknown(a, fmt.Sprintf(`malformed answer from %s: no boolean "firing" field`, redactURL(a.URL)))
	}
	if *ans.Firing {
		return Status{Firing: true, Reason: fmt.Sprintf("alarm %s is firing", a.Name)}
	}
	return Status{Reason: fmt.Sprintf("alarm %s is not firing", a.Name)}
}

// get fetches raw with the check's timeout and wants a 2xx answer. ok
// false means st is the fail-safe verdict.
func (c *Checker) get(ctx context.Context, a config.Alarm, raw string) (data []byte, st Status, ok bool) {
	ans, st, ok := c.fetch(ctx, a, raw)
	if !ok {
		return nil, st, false
	}
	if !ans.ok() {
		return nil, unknown(a, fmt.Sprintf("%s answered %s", redactURL(raw), ans.status)), false
	}
	return ans.body, Status{}, true
}

// answer is an HTTP answer as fetch read it.
type answer struct {
	code   int
	status string // "404 Not Found"
	body   []byte // a non-2xx answer's, cut at maxErrorBody
}

func (ans answer) ok() bool { return ans.code/100 == 2 }

// maxErrorBody bounds what is read of a non-2xx answer: an API's error
// object (Prometheus's) is small, and anything else is only an error page.
const maxErrorBody = 64 << 10

// fetch GETs raw with the check's timeout and reads the answer, whatever
// its status. ok false means the request failed or a 2xx answer could not
// be read whole, and st is the fail-safe verdict.
func (c *Checker) fetch(ctx context.Context, a config.Alarm, raw string) (ans answer, st Status, ok bool) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	safe := redactURL(raw)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return answer{}, unknown(a, "invalid url "+safe), false
	}
	req.Header.Set("Accept", "application/json")
	v := c.Version
	if v == "" {
		v = "dev"
	}
	req.Header.Set("User-Agent", "shipbot/"+v)
	client := c.HTTP
	if client == nil {
		client = &http.Client{}
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return answer{}, unknown(a, fmt.Sprintf("no answer from %s within %s", safe, timeout)), false
		}
		return answer{}, unknown(a, fmt.Sprintf("cannot reach %s: %s", safe, innerError(err))), false
	}
	defer resp.Body.Close()
	ans = answer{code: resp.StatusCode, status: resp.Status}
	if !ans.ok() {
		// The status decides; the body may only explain it, so a cut or
		// broken one is no reason to say less.
		ans.body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return ans, Status{}, true
	}
	ans.body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	switch {
	case err != nil:
		return answer{}, unknown(a, fmt.Sprintf("reading the answer from %s: %s", safe, innerError(err))), false
	case len(ans.body) > maxResponse:
		return answer{}, unknown(a, fmt.Sprintf("answer from %s is larger than %d bytes", safe, maxResponse)), false
	}
	return ans, Status{}, true
}

// innerError drops the *url.Error layer, whose text repeats the URL with
// its query (net/http masks only the password).
func innerError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return clean(err.Error())
}

// jsonProblem describes a decoding error without quoting the body.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("JSON %s where %s was expected", te.Value, te.Type)
	}
	return "invalid JSON"
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// redactURL reduces a URL to scheme, host and path: user info and the
// query often carry credentials, and reasons end up on the PR.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}

// scrub replaces the alarm's secrets (config.Alarm.Secrets: its URL's
// credentials) in a reason. Reasons are built without them, but a remote
// system's words are quoted (an alert name, a Prometheus error), and a
// proxy or a misconfigured server may echo what it was sent.
func scrub(s string, secrets []string) string {
	secrets = slices.Clone(secrets)
	// Longest first, so that no tail of a longer secret survives a shorter
	// one's replacement.
	slices.SortFunc(secrets, func(x, y string) int { return len(y) - len(x) })
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// clean keeps text from a remote system to one short line: an alert name
// goes into a PR comment, and a newline or a megabyte there would break
// the stage table.
func clean(s string) string { return clip(s, 100) }

// clip is clean with a bound of n runes.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return s
}
