package spinnaker

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/shipbot/shipbot/internal/deploy/deploytest"
)

// fakeEcho is a Spinnaker-Echo-like webhook endpoint
// (/webhooks/webhook/{source}). Like Echo it answers 200
// {"eventProcessed":true,"eventId":…} to every well-formed event, whether
// or not a pipeline's payloadConstraints matched, and records for the test
// whether one would have been triggered.
type fakeEcho struct {
	srv *httptest.Server
	// constraints are one pipeline's payloadConstraints: key (top-level
	// field or JSON path "a.b") → regex.
	constraints map[string]string

	mu       sync.Mutex
	events   []echoEvent
	failures []echoFailure // answered first, in order
}

type echoEvent struct {
	Header    http.Header
	Body      []byte
	Payload   map[string]any
	EventID   string
	Triggered bool // a pipeline would have started
}

type echoFailure struct {
	status int
	header map[string]string
	body   string
}

func newFakeEcho(t *testing.T, constraints map[string]string) *fakeEcho {
	t.Helper()
	e := &fakeEcho{constraints: constraints}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

// url is the webhook URL for source, as an operator would configure it.
func (e *fakeEcho) url(source string) string { return e.srv.URL + "/webhooks/webhook/" + source }

// failNext makes the next request answer status (then the next queued
// failure, then normal service).
func (e *fakeEcho) failNext(status int, body string, header ...string) {
	h := map[string]string{}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failures = append(e.failures, echoFailure{status: status, header: h, body: body})
}

func (e *fakeEcho) received() []echoEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]echoEvent(nil), e.events...)
}

func (e *fakeEcho) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ev := echoEvent{Header: r.Header.Clone(), Body: body}
	e.mu.Lock()
	var f *echoFailure
	if len(e.failures) > 0 {
		f = &e.failures[0]
		e.failures = e.failures[1:]
	}
	e.mu.Unlock()

	if f == nil && (r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/webhooks/webhook/")) {
		f = &echoFailure{status: http.StatusNotFound, body: `{"error":"Not Found"}`}
	}
	if f == nil {
		if err := json.Unmarshal(body, &ev.Payload); err != nil {
			f = &echoFailure{status: http.StatusBadRequest, body: `{"error":"Bad Request","message":"malformed JSON"}`}
		}
	}
	if f == nil {
		ev.EventID = newEventID()
		ev.Triggered = deploytest.ConstraintsMatch(e.constraints, ev.Payload)
	}
	e.mu.Lock()
	e.events = append(e.events, ev)
	e.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	if f != nil {
		for k, v := range f.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, f.body)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"eventProcessed": true, "eventId": ev.EventID})
}

func newEventID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func TestFakeEchoConstraintSemantics(t *testing.T) {
	payload := map[string]any{
		"deploy_key": "xs3cr3tx", "attempt": float64(2),
		"meta": map[string]any{"env": "Prod"}, "tags": []any{"a", "qa"},
	}
	tests := []struct {
		name string
		c    map[string]string
		want bool
	}{
		{"unanchored find matches a substring", map[string]string{"deploy_key": "s3cr3t"}, true},
		{"anchored does not", map[string]string{"deploy_key": "^s3cr3t$"}, false},
		{"case-sensitive", map[string]string{"meta.env": "prod"}, false},
		{"json path", map[string]string{"meta.env": "^Prod$"}, true},
		{"integer field", map[string]string{"attempt": "^2$"}, true},
		{"any list element", map[string]string{"tags": "^qa$"}, true},
		{"every key required", map[string]string{"deploy_key": "s3", "missing": ".*"}, false},
	}
	for _, tc := range tests {
		if got := deploytest.ConstraintsMatch(tc.c, payload); got != tc.want {
			t.Errorf("%s: match = %v, want %v", tc.name, got, tc.want)
		}
	}
}
