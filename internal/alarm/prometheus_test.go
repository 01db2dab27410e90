package alarm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shipbot/shipbot/internal/alarm/alarmtest"
	"github.com/shipbot/shipbot/internal/config"
)

// TestPromVerdict judges answers in the shapes Prometheus's HTTP API
// documents (https://prometheus.io/docs/prometheus/latest/querying/api/):
// the envelope {"status", "data", "errorType", "error", "warnings",
// "infos"} and data {"resultType", "result"}; the last cases are what
// Prometheus 2.42 answered to the queries they name.
func TestPromVerdict(t *testing.T) {
	a := config.Alarm{Name: "prod-5xx", Kind: config.AlarmPrometheus, URL: "http://prom:9090",
		Query: `sum by (job) (rate(http_errors_total[5m])) > 0.05`}
	const where = "http://prom:9090/api/v1/query"
	const q = `query sum by (job) (rate(http_errors_total[5m])) > 0.05`
	ok := func(body string) answer { return answer{code: 200, status: "200 OK", body: []byte(body)} }
	long := strings.Repeat("x", 500)
	tests := []struct {
		name            string
		ans             answer
		firing, unknown bool
		reason          string // exact
	}{
		{"empty vector", ok(`{"status":"success","data":{"resultType":"vector","result":[]}}`), false, false,
			"alarm prod-5xx is not firing: " + q + " returned no series"},
		{"the docs' vector", ok(`{
		   "status" : "success",
		   "data" : {
		      "resultType" : "vector",
		      "result" : [
		         {
		            "metric" : { "__name__" : "up", "job" : "prometheus", "instance" : "localhost:9090" },
		            "value": [ 1435781451.781, "1" ]
		         },
		         {
		            "metric" : { "__name__" : "up", "job" : "node", "instance" : "localhost:9100" },
		            "value" : [ 1435781451.781, "0" ]
		         }
		      ]
		   }
		}`), true, false,
			`alarm prod-5xx is firing: ` + q + ` returned 2 series (up{instance="localhost:9090", job="prometheus"}: 1, …)`},
		{"one series without a name, as a comparison leaves it",
			ok(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"api"},"value":[1435781451.781,"0.07"]}]}}`), true, false,
			`alarm prod-5xx is firing: ` + q + ` returned 1 series ({job="api"}: 0.07)`},
		// A series is there, whatever its value: an alerting rule fires on
		// a NaN sample too.
		{"vector with a NaN sample", ok(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1796201107.554,"NaN"]}]}}`), true, false,
			`alarm prod-5xx is firing: ` + q + ` returned 1 series ({}: NaN)`},
		{"native histogram", ok(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"rpc_seconds"},"histogram":[1435781451.781,{"count":"3","sum":"0.5","buckets":[]}]}]}}`), true, false,
			`alarm prod-5xx is firing: ` + q + ` returned 1 series (rpc_seconds: a native histogram)`},
		{"warnings and infos are ignored", ok(`{"status":"success","data":{"resultType":"vector","result":[]},
			"warnings":["partial response: store eu-1 unreachable"],"infos":["PromQL info: metric might not be a counter"]}`), false, false,
			"alarm prod-5xx is not firing: " + q + " returned no series"},
		{"scalar zero", ok(`{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"0"]}}`), false, false,
			"alarm prod-5xx is not firing: " + q + " returned scalar 0"},
		{"scalar negative zero", ok(`{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"-0"]}}`), false, false,
			"alarm prod-5xx is not firing: " + q + " returned scalar -0"},
		{"scalar non-zero", ok(`{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"0.07"]}}`), true, false,
			"alarm prod-5xx is firing: " + q + " returned scalar 0.07"},
		{"scalar +Inf", ok(`{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"+Inf"]}}`), true, false,
			"alarm prod-5xx is firing: " + q + " returned scalar +Inf"},
		// NaN is no verdict: it fires as Unknown, the fail-safe side.
		{"scalar NaN", ok(`{"status":"success","data":{"resultType":"scalar","result":[1796201107.514,"NaN"]}}`), true, true,
			"alarm prod-5xx counts as firing: " + q + " returned scalar NaN, which is no verdict (scalar() of no or several series, or 0/0)"},
		{"scalar as a number", ok(`{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,0]}}`), true, true,
			`alarm prod-5xx counts as firing: malformed answer from ` + where + ` (want Prometheus's query API JSON): scalar: want [<time>, "<number>"]`},
		{"scalar not a number", ok(`{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"zero"]}}`), true, true,
			`alarm prod-5xx counts as firing: malformed answer from ` + where + ` (want Prometheus's query API JSON): scalar: want [<time>, "<number>"]`},
		{"the docs' matrix", ok(`{"status":"success","data":{"resultType":"matrix","result":[
			{"metric":{"__name__":"up","job":"prometheus","instance":"localhost:9090"},"values":[[1435781430.781,"1"],[1435781445.781,"1"]]}]}}`), true, true,
			"alarm prod-5xx counts as firing: " + q + " returned a range vector (matrix), which an alarm cannot judge: it needs an instant vector or a scalar, such as rate(x[5m]) > 0 rather than x[5m]"},
		{"an empty matrix is no quieter", ok(`{"status":"success","data":{"resultType":"matrix","result":[]}}`), true, true,
			"alarm prod-5xx counts as firing: " + q + " returned a range vector (matrix), which an alarm cannot judge: it needs an instant vector or a scalar, such as rate(x[5m]) > 0 rather than x[5m]"},
		{"string", ok(`{"status":"success","data":{"resultType":"string","result":[1796201107.535,"text"]}}`), true, true,
			"alarm prod-5xx counts as firing: " + q + " returned a string, which an alarm cannot judge: it needs an instant vector or a scalar"},
		{"unknown result type", ok(`{"status":"success","data":{"resultType":"exemplars","result":[]}}`), true, true,
			`alarm prod-5xx counts as firing: ` + q + ` returned resultType "exemplars", which an alarm cannot judge: it needs an instant vector or a scalar`},
		{"parse error (Prometheus 2.42, query up{)", answer{code: 400, status: "400 Bad Request",
			body: []byte(`{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:4: parse error: unexpected end of input inside braces"}`)}, true, true,
			`alarm prod-5xx counts as firing: ` + where + ` answered an error: bad_data: invalid parameter "query": 1:4: parse error: unexpected end of input inside braces`},
		{"timeout", answer{code: 503, status: "503 Service Unavailable",
			body: []byte(`{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`)}, true, true,
			`alarm prod-5xx counts as firing: ` + where + ` answered an error: timeout: query timed out in expression evaluation`},
		{"execution error with data and warnings", answer{code: 422, status: "422 Unprocessable Entity",
			body: []byte(`{"status":"error","data":{"resultType":"vector","result":[]},"errorType":"execution","error":"many-to-many matching not allowed","warnings":["w"]}`)}, true, true,
			`alarm prod-5xx counts as firing: ` + where + ` answered an error: execution: many-to-many matching not allowed`},
		{"error status under 200", ok(`{"status":"error","errorType":"internal","error":"line1\nline2"}`), true, true,
			`alarm prod-5xx counts as firing: ` + where + ` answered an error: internal: line1 line2`},
		{"error without words", answer{code: 400, status: "400 Bad Request", body: []byte(`{"status":"error"}`)}, true, true,
			`alarm prod-5xx counts as firing: ` + where + ` answered an error: no error message`},
		{"proxy error page", answer{code: 502, status: "502 Bad Gateway", body: []byte(`<html>bad gateway</html>`)}, true, true,
			`alarm prod-5xx counts as firing: ` + where + ` answered 502 Bad Gateway`},
		{"success under 500", answer{code: 500, status: "500 Internal Server Error", body: []byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`)}, true, true,
			`alarm prod-5xx counts as firing: ` + where + ` answered 500 Internal Server Error`},
		{"not JSON", ok(`<html>`), true, true,
			`alarm prod-5xx counts as firing: malformed answer from ` + where + ` (want Prometheus's query API JSON): invalid JSON at byte 1`},
		{"not Prometheus's JSON", ok(`{"firing": false}`), true, true,
			`alarm prod-5xx counts as firing: malformed answer from ` + where + ` (want Prometheus's query API JSON): no "status": "success" or "error"`},
		{"no data", ok(`{"status":"success"}`), true, true,
			`alarm prod-5xx counts as firing: malformed answer from ` + where + ` (want Prometheus's query API JSON): no "data"`},
		{"null result", ok(`{"status":"success","data":{"resultType":"vector","result":null}}`), true, true,
			`alarm prod-5xx counts as firing: malformed answer from ` + where + ` (want Prometheus's query API JSON): no "data.result"`},
		{"no result type", ok(`{"status":"success","data":{"result":[]}}`), true, true,
			`alarm prod-5xx counts as firing: malformed answer from ` + where + ` (want Prometheus's query API JSON): no "data.resultType"`},
		{"vector not a list", ok(`{"status":"success","data":{"resultType":"vector","result":{"metric":{}}}}`), true, true,
			`alarm prod-5xx counts as firing: malformed answer from ` + where + ` (want Prometheus's query API JSON): vector: JSON object where []alarm.promSeries was expected`},
		{"long labels and values are cut", ok(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"` + long + `"},"value":[1,"` + long + `"]}]}}`), true, false,
			`alarm prod-5xx is firing: ` + q + ` returned 1 series ({a="` + strings.Repeat("x", 96) + `…: ` + strings.Repeat("x", 24) + `…)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := promVerdict(a, where, tc.ans)
			if st.Firing != tc.firing || st.Unknown != tc.unknown || st.Reason != tc.reason {
				t.Errorf("got      %+v\nwant firing %v unknown %v reason\n         %q", st, tc.firing, tc.unknown, tc.reason)
			}
		})
	}
}

// A long query, a long error: the reason stays one bounded line.
func TestPromVerdictBounded(t *testing.T) {
	a := config.Alarm{Name: "a", Kind: config.AlarmPrometheus, Query: strings.Repeat("up or ", 200) + "up"}
	for _, body := range []string{
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"x"},"value":[1,"1"]}]}}`,
		`{"status":"error","errorType":"bad_data","error":"` + strings.Repeat("much to say ", 1000) + `"}`,
	} {
		st := promVerdict(a, "http://p/api/v1/query", answer{code: 200, status: "200 OK", body: []byte(body)})
		if n := utf8.RuneCountInString(st.Reason); n > 300 || strings.Contains(st.Reason, "\n") {
			t.Errorf("reason of %d runes: %s", n, st.Reason)
		}
	}
}

// TestPrometheusRequest checks what the checker sends: the instant query
// under the URL's route prefix, the URL's own query parameters and basic
// auth kept, and none of those credentials in a reason, even when the
// server echoes them.
func TestPrometheusRequest(t *testing.T) {
	const pw = "prom-pw-31337"
	const token = "proxy-token-4242"
	var mu sync.Mutex
	var got *http.Request
	body := `{"status":"success","data":{"resultType":"vector","result":[]}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = r.Clone(context.Background())
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c := &Checker{Version: "1.2.3", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	query := `sum(rate(http_requests_total{code=~"5..", env="prod"}[5m])) > 0.05`
	a := config.Alarm{Name: "prod-5xx", Kind: config.AlarmPrometheus, Query: query,
		URL: strings.Replace(srv.URL, "http://", "http://shipbot:"+pw+"@", 1) + "/prometheus/?token=" + token}

	st := c.Firing(context.Background(), a)
	if st.Firing || st.Unknown || st.Reason != "alarm prod-5xx is not firing: query "+query+" returned no series" {
		t.Fatalf("quiet answer: %+v", st)
	}
	mu.Lock()
	r := got
	mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != "/prometheus/api/v1/query" {
		t.Errorf("request %s %s, want GET /prometheus/api/v1/query", r.Method, r.URL.Path)
	}
	if q := r.URL.Query(); q.Get("query") != query || q.Get("token") != token {
		t.Errorf("query parameters %q, want query=%q and the URL's token", r.URL.RawQuery, query)
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != "shipbot" || pass != pw {
		t.Errorf("basic auth %q %q %v, want the URL's user info", user, pass, ok)
	}
	if ua := r.Header.Get("User-Agent"); ua != "shipbot/1.2.3" {
		t.Errorf("User-Agent %q", ua)
	}

	// A server (or a proxy in front of it) that echoes what it was sent.
	mu.Lock()
	body = fmt.Sprintf(`{"status":"error","errorType":"bad_data","error":"rejected %s:%s token %s"}`, "shipbot", pw, token)
	mu.Unlock()
	st = c.Firing(context.Background(), a)
	if !st.Firing || !st.Unknown || strings.Contains(st.Reason, pw) || strings.Contains(st.Reason, token) {
		t.Errorf("echoed credentials: %+v", st)
	}
	if want := "answered an error: bad_data: rejected shipbot:[REDACTED] token [REDACTED]"; !strings.Contains(st.Reason, want) {
		t.Errorf("reason %q, want it to contain %q", st.Reason, want)
	}
	if want := srv.URL + "/prometheus/api/v1/query answered"; !strings.Contains(st.Reason, want) {
		t.Errorf("reason %q does not name the redacted URL %q", st.Reason, want)
	}

	// No query (the targets file requires one): nothing to ask, firing.
	if st := c.Firing(context.Background(), config.Alarm{Name: "q", Kind: config.AlarmPrometheus, URL: srv.URL}); !st.Firing || !st.Unknown || st.Reason != "alarm q counts as firing: no query" {
		t.Errorf("no query: %+v", st)
	}
}

// exporter serves demo_errors_total as a Prometheus target would.
type exporter struct {
	errors atomic.Int64
	hidden atomic.Bool // the series gone from /metrics
}

func (e *exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = io.WriteString(w, "# TYPE demo_up gauge\ndemo_up 1\n")
	if !e.hidden.Load() {
		fmt.Fprintf(w, "# TYPE demo_errors_total counter\ndemo_errors_total{service=\"api\"} %d\n", e.errors.Load())
	}
}

// TestRealPrometheus runs the alarm against Debian's Prometheus scraping a
// loopback exporter every second: quiet while the counter is 0, firing
// once it moves, quiet again once the series is gone, and firing (as
// Unknown) for the answers it cannot judge and for an unreachable server.
func TestRealPrometheus(t *testing.T) {
	exp := &exporter{}
	srv := httptest.NewServer(exp)
	t.Cleanup(srv.Close)
	base := alarmtest.StartPrometheus(t, strings.TrimPrefix(srv.URL, "http://"))
	c := &Checker{Timeout: 2 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	alarm := func(name, query string) config.Alarm {
		return config.Alarm{Name: name, Kind: config.AlarmPrometheus, URL: base, Query: query}
	}

	// The exporter has been scraped once demo_errors_total exists; only
	// then does "quiet" mean the counter is 0, not that nothing is known.
	// Prometheus 2.42 applies its scrape targets on a 5 s tick, so the
	// first scrape comes about 5 s after the start; later ones every second.
	waitFiringWithin(t, c, alarm("scraped", `demo_errors_total{job="demo"}`), true, 12*time.Second)
	errs := alarm("api-errors", `demo_errors_total > 0`)
	if st := c.Firing(context.Background(), errs); st.Firing || st.Unknown ||
		st.Reason != "alarm api-errors is not firing: query demo_errors_total > 0 returned no series" {
		t.Fatalf("counter at 0: %+v", st)
	}

	exp.errors.Store(3)
	st := waitFiring(t, c, errs, true)
	host := strings.TrimPrefix(srv.URL, "http://")
	want := fmt.Sprintf(`alarm api-errors is firing: query demo_errors_total > 0 returned 1 series (demo_errors_total{instance=%q, job="demo", service="api"}: 3)`, host)
	if st.Reason != want {
		t.Errorf("reason %q, want %q", st.Reason, want)
	}

	// The series leaves the exporter: Prometheus marks it stale at the
	// next scrape and the alarm falls quiet.
	exp.hidden.Store(true)
	waitFiring(t, c, errs, false)

	// Prometheus's own answers to what an alarm cannot judge, and to a
	// query it cannot parse.
	for _, tc := range []struct {
		query           string
		firing, unknown bool
		reason          string
	}{
		{`0`, false, false, "returned scalar 0"},
		{`time()`, true, false, "returned scalar "},
		{`0/0`, true, true, "returned scalar NaN, which is no verdict"},
		{`demo_up[1m]`, true, true, "returned a range vector (matrix)"},
		{`"text"`, true, true, "returned a string"},
		{`demo_errors_total{`, true, true, base + `/api/v1/query answered an error: bad_data: invalid parameter "query": 1:19: parse error: `},
	} {
		st := c.Firing(context.Background(), alarm("shape", tc.query))
		if st.Firing != tc.firing || st.Unknown != tc.unknown || !strings.Contains(st.Reason, tc.reason) {
			t.Errorf("%s: %+v, want firing %v unknown %v reason containing %q", tc.query, st, tc.firing, tc.unknown, tc.reason)
		}
	}

	// Nobody listening.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	st = c.Firing(context.Background(), config.Alarm{Name: "gone", Kind: config.AlarmPrometheus, URL: closedURL, Query: "up"})
	if prefix := "alarm gone counts as firing: cannot reach " + closedURL + "/api/v1/query: "; !st.Firing || !st.Unknown || !strings.HasPrefix(st.Reason, prefix) ||
		!strings.Contains(st.Reason, "connection refused") {
		t.Errorf("unreachable Prometheus: %+v, want a reason starting %q and saying connection refused", st, prefix)
	}
}
