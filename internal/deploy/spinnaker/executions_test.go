package spinnaker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/syncbuf"
)

// fakeGate serves /applications/{app}/executions/search as Gate does: a
// JSON list of the executions whose trigger carries eventId.
type fakeGate struct {
	srv  *httptest.Server
	app  string
	user string
	pass string

	mu     sync.Mutex
	execs  map[string][]map[string]any // eventId → executions
	status int                         // non-zero: answer this instead
}

func newFakeGate(t *testing.T, app string) *fakeGate {
	g := &fakeGate{app: app, user: "shipbot", pass: "gate-pw-7781", execs: map[string][]map[string]any{}}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGate) set(eventID string, execs ...map[string]any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.execs[eventID] = execs
}

func (g *fakeGate) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if u, p, ok := r.BasicAuth(); !ok || u != g.user || p != g.pass {
		http.Error(w, `{"error":"Unauthorized"}`, http.StatusUnauthorized)
		return
	}
	if g.status != 0 {
		http.Error(w, `{"error":"nope"}`, g.status)
		return
	}
	if r.Method != http.MethodGet || r.URL.Path != "/gate/applications/"+g.app+"/executions/search" {
		http.Error(w, `{"error":"Not Found","message":"Application not found"}`, http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	if q.Get("triggerTypes") != "webhook" {
		http.Error(w, `{"error":"want triggerTypes=webhook"}`, http.StatusBadRequest)
		return
	}
	out := g.execs[q.Get("eventId")]
	if out == nil {
		out = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func exec(id, name, status string) map[string]any {
	return map[string]any{
		"type": "PIPELINE", "id": id, "application": "api", "name": name, "status": status,
		"trigger": map[string]any{"type": "webhook", "eventId": "ev-1"}, "stages": []any{},
	}
}

func gateTarget(g *fakeGate) config.Target {
	return config.Target{
		Name: "spinnaker-qa", Kind: Kind, URL: "https://echo.invalid/webhooks/webhook/api",
		Settings: Settings{
			GateURL:     strings.Replace(g.srv.URL, "http://", "http://"+g.user+":"+g.pass+"@", 1) + "/gate/",
			Application: g.app,
		},
	}
}

// poller searches executions as the spinnaker driver's Poll does.
type poller struct{ env *deploy.Env }

func (p poller) Poll(ctx context.Context, t config.Target, eventID string) (Execution, error) {
	return Driver{}.executions(ctx, p.env, t, eventID)
}

func TestPollerStates(t *testing.T) {
	g := newFakeGate(t, "api")
	logs := &syncbuf.Buffer{}
	pl := poller{&deploy.Env{Log: newTestLogger(logs)}}
	tgt := gateTarget(g)
	tests := []struct {
		name  string
		execs []map[string]any
		state deploy.State
		id    string
	}{
		{"none yet", nil, deploy.StatePending, ""},
		{"not started", []map[string]any{exec("01A", "deploy", "NOT_STARTED")}, deploy.StateRunning, "01A"},
		{"running", []map[string]any{exec("01A", "deploy", "RUNNING")}, deploy.StateRunning, "01A"},
		{"paused", []map[string]any{exec("01A", "deploy", "PAUSED")}, deploy.StateRunning, "01A"},
		{"suspended", []map[string]any{exec("01A", "deploy", "SUSPENDED")}, deploy.StateRunning, "01A"},
		{"succeeded", []map[string]any{exec("01A", "deploy", "SUCCEEDED")}, deploy.StateSucceeded, "01A"},
		{"terminal", []map[string]any{exec("01A", "deploy", "TERMINAL")}, deploy.StateFailed, "01A"},
		{"canceled", []map[string]any{exec("01A", "deploy", "CANCELED")}, deploy.StateFailed, "01A"},
		{"stopped", []map[string]any{exec("01A", "deploy", "STOPPED")}, deploy.StateFailed, "01A"},
		{"failed continue", []map[string]any{exec("01A", "deploy", "FAILED_CONTINUE")}, deploy.StateFailed, "01A"},
		{"one of two still running", []map[string]any{exec("01A", "a", "SUCCEEDED"), exec("01B", "b", "RUNNING")}, deploy.StateRunning, "01B"},
		{"one of two failed", []map[string]any{exec("01A", "a", "RUNNING"), exec("01B", "b", "TERMINAL")}, deploy.StateFailed, "01B"},
		{"both succeeded", []map[string]any{exec("01A", "a", "SUCCEEDED"), exec("01B", "b", "SUCCEEDED")}, deploy.StateSucceeded, "01A"},
	}
	for _, tc := range tests {
		g.set("ev-1", tc.execs...)
		got, err := pl.Poll(context.Background(), tgt, "ev-1")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got.State != tc.state || got.ID != tc.id || got.Executions != len(tc.execs) {
			t.Errorf("%s: got %+v, want state %s id %q", tc.name, got, tc.state, tc.id)
		}
		if tc.id != "" {
			want := g.srv.URL + "/gate/pipelines/" + tc.id
			if got.URL != want {
				t.Errorf("%s: URL = %q, want %q (no credentials)", tc.name, got.URL, want)
			}
		} else if got.URL != "" {
			t.Errorf("%s: URL = %q for a pending event", tc.name, got.URL)
		}
	}
	if strings.Contains(logs.String(), g.pass) {
		t.Errorf("gate password in logs: %s", logs.String())
	}
}

func TestPollerErrors(t *testing.T) {
	g := newFakeGate(t, "api")
	pl := poller{&deploy.Env{Log: newTestLogger(&syncbuf.Buffer{})}}
	tgt := gateTarget(g)

	wrongApp := tgt
	wrongApp.Settings = Settings{GateURL: settings(tgt).GateURL, Application: "nope"}
	_, err := pl.Poll(context.Background(), wrongApp, "ev-1")
	var e *deploy.Error
	if !errors.As(err, &e) || !deploy.IsPermanent(err) || e.StatusCode != 404 {
		t.Errorf("unknown application: err = %v, want permanent 404", err)
	}

	g.mu.Lock()
	g.status = http.StatusServiceUnavailable
	g.mu.Unlock()
	_, err = pl.Poll(context.Background(), tgt, "ev-1")
	if err == nil || deploy.IsPermanent(err) {
		t.Errorf("503: err = %v, want a transient error", err)
	}
	if err != nil && (strings.Contains(err.Error(), g.pass) || !strings.HasPrefix(err.Error(), "poll Spinnaker executions for spinnaker-qa: 503")) {
		t.Errorf("error text: %v", err)
	}

	noGate := tgt
	noGate.Settings = Settings{}
	if _, err := pl.Poll(context.Background(), noGate, "ev-1"); !deploy.IsPermanent(err) {
		t.Errorf("no gate: err = %v", err)
	}
	if _, err := pl.Poll(context.Background(), tgt, ""); !deploy.IsPermanent(err) {
		t.Errorf("no event id: err = %v", err)
	}
}

func TestMapStatusUnknownKeepsWaiting(t *testing.T) {
	if got := MapStatus("SOMETHING_NEW"); got != deploy.StateRunning {
		t.Errorf("MapStatus(unknown) = %s, want running", got)
	}
	if got := MapStatus("succeeded"); got != deploy.StateSucceeded {
		t.Errorf("MapStatus is case-insensitive: got %s", got)
	}
}

// The driver polls only where Gate is configured, and links the execution
// with the outcome.
func TestDriverPollsExecutions(t *testing.T) {
	g := newFakeGate(t, "api")
	env := &deploy.Env{Log: newTestLogger(&syncbuf.Buffer{})}
	tgt := gateTarget(g)
	if got := (Driver{}).Learns(env, tgt); got != deploy.ByPolling {
		t.Errorf("with Gate: Learns = %s", got)
	}
	if got := (Driver{}).Learns(env, config.Target{Kind: Kind, URL: tgt.URL}); got != deploy.ByCallback {
		t.Errorf("without Gate: Learns = %s", got)
	}
	for _, tc := range []struct {
		status string
		want   deploy.Status
	}{
		{"RUNNING", deploy.Status{State: deploy.StateRunning}},
		{"SUCCEEDED", deploy.Status{State: deploy.StateSucceeded, URL: g.srv.URL + "/gate/pipelines/01A"}},
		{"TERMINAL", deploy.Status{State: deploy.StateFailed, URL: g.srv.URL + "/gate/pipelines/01A", Reason: "Spinnaker execution TERMINAL"}},
	} {
		g.set("ev-1", exec("01A", "deploy", tc.status))
		got, err := Driver{}.Poll(context.Background(), env, tgt, deploy.Check{Ref: "ev-1"})
		if err != nil || got != tc.want {
			t.Errorf("%s: Poll = %+v, %v; want %+v", tc.status, got, err, tc.want)
		}
	}
}
