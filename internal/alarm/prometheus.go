package alarm

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/shipbot/shipbot/internal/config"
)

// A prometheus alarm runs its PromQL as an instant query,
// GET <url>/api/v1/query?query=…, and fires as an alerting rule does:
//
//   - a vector fires while it holds any series, whatever their values (a
//     NaN sample included: the series is there). Write the threshold into
//     the query, `rate(errors[5m]) > 0.05`, as in a rule: a comparison
//     drops the series that pass, a bare ratio never does;
//   - a scalar fires unless it is 0 (±Inf fires). NaN fires too, as
//     Unknown: it is no verdict, typically scalar() of no or several
//     series (the exporter gone) or 0/0 (no traffic), and an alarm that
//     cannot say "quiet" must not let a deploy through;
//   - an answer with "status": "error" (bad PromQL, a timeout, Prometheus
//     overloaded) fires as Unknown, quoting errorType and error, as does
//     any other non-2xx answer or one that is not Prometheus's JSON;
//   - a range vector (matrix, from a query such as `errors[5m]`) or a
//     string is not what an alarm query can mean: it fires as Unknown,
//     saying so, rather than being read as either;
//   - warnings and infos in a successful answer are ignored: the data is
//     still the query's result, as the rule evaluator takes it.
//
// The URL may carry a route prefix (Prometheus behind /prometheus/),
// basic-auth user info and query parameters for a proxy: all are kept, and
// none reaches a reason.

// prometheus runs the alarm's instant query and judges the answer.
func (c *Checker) prometheus(ctx context.Context, a config.Alarm) Status {
	if strings.TrimSpace(a.Query) == "" {
		return unknown(a, "no query") // the targets file requires one
	}
	u, err := url.Parse(a.URL)
	if err != nil || u.Host == "" {
		return unknown(a, "invalid url")
	}
	u = u.JoinPath("api", "v1", "query")
	q := u.Query()
	q.Set("query", a.Query)
	u.RawQuery = q.Encode()
	ans, st, ok := c.fetch(ctx, a, u.String())
	if !ok {
		return st
	}
	return promVerdict(a, redactURL(u.String()), ans)
}

// promAnswer is the envelope of every Prometheus API answer. Warnings and
// infos are left out: they are ignored.
type promAnswer struct {
	Status string `json:"status"`
	Data   *struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

// promSeries is one element of an instant vector: a float sample in value
// or, for a native histogram, histogram.
type promSeries struct {
	Metric    map[string]string `json:"metric"`
	Value     json.RawMessage   `json:"value"`     // [<unix time>, "<value>"]
	Histogram json.RawMessage   `json:"histogram"` // [<unix time>, {…}]
}

// promVerdict judges Prometheus's answer to the alarm's instant query
// (see the comment at the top of this file). where is the redacted query
// URL, for reasons.
func promVerdict(a config.Alarm, where string, ans answer) Status {
	var pa promAnswer
	err := json.Unmarshal(ans.body, &pa)
	if err == nil && pa.Status == "error" {
		// Prometheus answers 400 (bad_data), 422 (execution) or 503
		// (timeout, canceled) with this object; the status line adds
		// nothing to errorType.
		return unknown(a, fmt.Sprintf("%s answered an error: %s", where, promError(pa)))
	}
	if !ans.ok() {
		return unknown(a, fmt.Sprintf("%s answered %s", where, ans.status))
	}
	bad := func(why string) Status {
		return unknown(a, fmt.Sprintf("malformed answer from %s (want Prometheus's query API JSON): %s", where, why))
	}
	switch {
	case err != nil:
		return bad(jsonProblem(err))
	case pa.Status != "success":
		return bad(`no "status": "success" or "error"`)
	case pa.Data == nil:
		return bad(`no "data"`)
	case isNull(pa.Data.Result):
		return bad(`no "data.result"`)
	}
	query := clean(a.Query)
	switch rt := pa.Data.ResultType; rt {
	case "vector":
		var series []promSeries
		if err := json.Unmarshal(pa.Data.Result, &series); err != nil {
			return bad("vector: " + jsonProblem(err))
		}
		if len(series) == 0 {
			return Status{Reason: fmt.Sprintf("alarm %s is not firing: query %s returned no series", a.Name, query)}
		}
		more := ""
		if len(series) > 1 {
			more = ", …"
		}
		return Status{Firing: true, Reason: fmt.Sprintf("alarm %s is firing: query %s returned %d series (%s%s)",
			a.Name, query, len(series), describeSeries(series[0]), more)}
	case "scalar":
		raw, ok := sampleValue(pa.Data.Result)
		v, err := strconv.ParseFloat(raw, 64)
		if !ok || err != nil {
			return bad(`scalar: want [<time>, "<number>"]`)
		}
		shown := clip(raw, 24)
		switch {
		case math.IsNaN(v):
			return unknown(a, fmt.Sprintf("query %s returned scalar NaN, which is no verdict (scalar() of no or several series, or 0/0)", query))
		case v == 0:
			return Status{Reason: fmt.Sprintf("alarm %s is not firing: query %s returned scalar %s", a.Name, query, shown)}
		}
		return Status{Firing: true, Reason: fmt.Sprintf("alarm %s is firing: query %s returned scalar %s", a.Name, query, shown)}
	case "matrix":
		return unknown(a, fmt.Sprintf("query %s returned a range vector (matrix), which an alarm cannot judge: it needs an instant vector or a scalar, such as rate(x[5m]) > 0 rather than x[5m]", query))
	case "string":
		return unknown(a, fmt.Sprintf("query %s returned a string, which an alarm cannot judge: it needs an instant vector or a scalar", query))
	case "":
		return bad(`no "data.resultType"`)
	default:
		return unknown(a, fmt.Sprintf("query %s returned resultType %q, which an alarm cannot judge: it needs an instant vector or a scalar", query, clip(rt, 24)))
	}
}

// promError quotes Prometheus's errorType and error, which say what went
// wrong ("bad_data: 1:5: parse error: …", "timeout: query timed out in
// expression evaluation").
func promError(pa promAnswer) string {
	kind, msg := clip(pa.ErrorType, 24), clip(pa.Error, 200)
	switch {
	case kind == "" && msg == "":
		return "no error message"
	case kind == "":
		return msg
	case msg == "":
		return kind
	}
	return kind + ": " + msg
}

// describeSeries shows a vector element as PromQL would write it, with
// its value: demo_errors_total{job="api"}: 3. Bounded in length: labels
// and values come from whatever Prometheus scraped.
func describeSeries(s promSeries) string {
	names := make([]string, 0, len(s.Metric))
	for k := range s.Metric {
		if k != "__name__" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	labels := make([]string, len(names))
	for i, k := range names {
		labels[i] = k + "=" + strconv.Quote(s.Metric[k])
	}
	id := s.Metric["__name__"]
	if len(labels) > 0 || id == "" {
		id += "{" + strings.Join(labels, ", ") + "}"
	}
	value := "a native histogram"
	if raw, ok := sampleValue(s.Value); ok {
		value = clip(raw, 24)
	} else if isNull(s.Histogram) {
		value = "no value"
	}
	return clean(id) + ": " + value
}

// sampleValue reads a sample, [<unix time>, "<value>"], and returns its
// value as Prometheus wrote it ("0.07", "NaN", "+Inf").
func sampleValue(raw json.RawMessage) (string, bool) {
	var pair []json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &pair) != nil || len(pair) != 2 {
		return "", false
	}
	var t float64
	var v string
	if json.Unmarshal(pair[0], &t) != nil || json.Unmarshal(pair[1], &v) != nil {
		return "", false
	}
	return v, true
}

func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}
