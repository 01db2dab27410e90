package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
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
		ev.Triggered = constraintsMatch(e.constraints, ev.Payload)
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

// constraintsMatch is Echo's payloadConstraints check: every key is
// required, and its value (toString of the field, or of any element of a
// list) must contain a match of the regex: an unanchored, case-sensitive
// find, not a full match.
func constraintsMatch(constraints map[string]string, payload map[string]any) bool {
	for key, pattern := range constraints {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return false
		}
		v, ok := lookupPath(payload, key)
		if !ok || v == nil {
			return false
		}
		if !valueMatches(re, v) {
			return false
		}
	}
	return true
}

func lookupPath(payload map[string]any, key string) (any, bool) {
	if v, ok := payload[key]; ok {
		return v, true
	}
	var cur any = payload
	for _, part := range strings.Split(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func valueMatches(re *regexp.Regexp, v any) bool {
	switch v := v.(type) {
	case []any:
		for _, el := range v {
			if valueMatches(re, el) {
				return true
			}
		}
		return false
	case string:
		return re.MatchString(v)
	case float64:
		// Jackson's toString of an integer node has no ".0".
		if v == float64(int64(v)) {
			return re.MatchString(fmt.Sprint(int64(v)))
		}
		return re.MatchString(fmt.Sprint(v))
	default:
		b, _ := json.Marshal(v)
		return re.Match(b)
	}
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
		if got := constraintsMatch(tc.c, payload); got != tc.want {
			t.Errorf("%s: match = %v, want %v", tc.name, got, tc.want)
		}
	}
}
