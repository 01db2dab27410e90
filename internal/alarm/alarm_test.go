package alarm

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/config"
)

// fakeAlertmanager serves GET /api/v2/alerts like Alertmanager: it
// requires the active/silenced/inhibited flags shipbot relies on and
// applies each `filter` equality matcher to the alerts it holds.
type fakeAlertmanager struct {
	srv *httptest.Server

	mu      sync.Mutex
	alerts  []map[string]string // label sets
	queries []string
}

var eqMatcher = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"(.*)"\s*$`)

func newFakeAlertmanager(t *testing.T, prefix string) *fakeAlertmanager {
	am := &fakeAlertmanager{}
	am.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		am.mu.Lock()
		defer am.mu.Unlock()
		am.queries = append(am.queries, r.URL.RawQuery)
		q := r.URL.Query()
		if r.URL.Path != prefix+"/api/v2/alerts" || q.Get("active") != "true" ||
			q.Get("silenced") != "false" || q.Get("inhibited") != "false" {
			http.Error(w, "unexpected request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		out := []map[string]any{}
		for _, labels := range am.alerts {
			match := true
			for _, f := range q["filter"] {
				m := eqMatcher.FindStringSubmatch(f)
				if m == nil {
					http.Error(w, `{"message":"bad matcher"}`, http.StatusBadRequest)
					return
				}
				match = match && labels[m[1]] == m[2]
			}
			if match {
				out = append(out, map[string]any{"labels": labels, "status": map[string]any{"state": "active"}})
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(am.srv.Close)
	return am
}

func (am *fakeAlertmanager) fire(labels map[string]string) {
	am.mu.Lock()
	defer am.mu.Unlock()
	am.alerts = append(am.alerts, labels)
}

func amAlarm(url string) config.Alarm {
	return config.Alarm{
		Name: "prod-high-severity", Kind: config.AlarmAlertmanager, URL: url,
		Filter: []string{`severity="high"`, `service="api"`},
	}
}

func TestAlertmanagerFake(t *testing.T) {
	am := newFakeAlertmanager(t, "/am")
	c := &Checker{}
	a := amAlarm(am.srv.URL + "/am/")

	st := c.Firing(context.Background(), a)
	if st.Firing || st.Unknown {
		t.Fatalf("no alerts: %+v", st)
	}
	if want := `alarm prod-high-severity is not firing: no active alert matches severity="high", service="api"`; st.Reason != want {
		t.Errorf("reason %q, want %q", st.Reason, want)
	}

	am.fire(map[string]string{"alertname": "HighLatency", "severity": "high", "service": "web"})
	if st := c.Firing(context.Background(), a); st.Firing {
		t.Errorf("alert for another service fired the alarm: %+v", st)
	}
	am.fire(map[string]string{"alertname": "HighErrorRate", "severity": "high", "service": "api"})
	am.fire(map[string]string{"alertname": "PodCrash\nLoop", "severity": "high", "service": "api"})
	st = c.Firing(context.Background(), a)
	if !st.Firing || st.Unknown {
		t.Fatalf("matching alert: %+v", st)
	}
	if want := `alarm prod-high-severity is firing: HighErrorRate and 1 more (matching severity="high", service="api")`; st.Reason != want {
		t.Errorf("reason %q, want %q", st.Reason, want)
	}

	am.mu.Lock()
	q := am.queries[len(am.queries)-1]
	am.mu.Unlock()
	if filters := mustQuery(t, q)["filter"]; !slices.Equal(filters, a.Filter) {
		t.Errorf("filter params %q, want one per matcher %q", filters, a.Filter)
	}
}

func mustQuery(t *testing.T, raw string) map[string][]string {
	t.Helper()
	req, err := http.NewRequest("GET", "http://x/?"+raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req.URL.Query()
}

func TestHTTPAlarm(t *testing.T) {
	var body string
	var status int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c := &Checker{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a := config.Alarm{Name: "canary", Kind: config.AlarmHTTP, URL: srv.URL + "/firing"}
	tests := []struct {
		status        int
		body          string
		firing, unkwn bool
		reason        string
	}{
		{200, `{"firing": true}`, true, false, "alarm canary is firing"},
		{200, `{"firing": false, "extra": 1}`, false, false, "alarm canary is not firing"},
		{200, `{}`, true, true, `alarm canary counts as firing: malformed answer from ` + srv.URL + `/firing: no boolean "firing" field`},
		{200, `{"firing": "false"}`, true, true, "JSON string where bool was expected"},
		{200, `<html>`, true, true, "invalid JSON at byte 1"},
		{500, `{"firing": false}`, true, true, "alarm canary counts as firing: " + srv.URL + "/firing answered 500 Internal Server Error"},
		{404, ``, true, true, "answered 404 Not Found"},
	}
	for _, tc := range tests {
		mu.Lock()
		status, body = tc.status, tc.body
		mu.Unlock()
		st := c.Firing(context.Background(), a)
		if st.Firing != tc.firing || st.Unknown != tc.unkwn || !strings.Contains(st.Reason, tc.reason) {
			t.Errorf("%d %s: got %+v, want firing %v unknown %v reason containing %q", tc.status, tc.body, st, tc.firing, tc.unkwn, tc.reason)
		}
	}
}

func TestUnreadableAlarmsFire(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) })
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	logs := &bytes.Buffer{}
	c := &Checker{Timeout: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(logs, nil))}
	const pw = "alarm-pw-31337"
	creds := func(u string) string {
		return strings.Replace(u, "http://", "http://bot:"+pw+"@", 1) + "/x?token=" + pw
	}
	tests := []struct {
		name   string
		a      config.Alarm
		reason string
	}{
		{"unreachable", config.Alarm{Name: "a1", Kind: config.AlarmHTTP, URL: creds(closedURL)}, "alarm a1 counts as firing: cannot reach " + closedURL + "/x: "},
		{"timeout", config.Alarm{Name: "a2", Kind: config.AlarmAlertmanager, URL: creds(slow.URL)}, "alarm a2 counts as firing: no answer from " + slow.URL + "/x/api/v2/alerts within 50ms"},
		{"unset variable", config.Alarm{Name: "a3", Kind: config.AlarmHTTP, Unresolved: []string{"AM_PW"}}, "alarm a3 counts as firing: environment variable AM_PW not set"},
		{"unknown kind", config.Alarm{Name: "a4", Kind: "nagios", URL: slow.URL}, `unknown alarm kind "nagios"`},
	}
	for _, tc := range tests {
		start := time.Now()
		st := c.Firing(context.Background(), tc.a)
		if !st.Firing || !st.Unknown || !strings.HasPrefix(st.Reason, tc.reason) && !strings.Contains(st.Reason, tc.reason) {
			t.Errorf("%s: %+v, want firing+unknown with reason %q", tc.name, st, tc.reason)
		}
		if strings.Contains(st.Reason, pw) {
			t.Errorf("%s: reason leaks the URL's credentials: %s", tc.name, st.Reason)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %s", tc.name, d)
		}
	}
	if strings.Contains(logs.String(), pw) {
		t.Errorf("logs leak the URL's credentials: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("an unreadable alarm should log a warning: %s", logs.String())
	}

	// A canceled context is no reason to let a deploy through either.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if st := c.Firing(ctx, amAlarm(slow.URL)); !st.Firing || !st.Unknown {
		t.Errorf("canceled check: %+v", st)
	}
}
