package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// designTargets is the targets file from design.md, verbatim.
const designTargets = `targets:
  spinnaker-qa:
    kind: spinnaker              # spinnaker | webhook | github-dispatch
    url: https://gate.example/webhooks/webhook/api-qa
    constraints:                 # payload-constraint secrets, added to the payload as fields
      deploy_key: ${SPINNAKER_QA_KEY}   # ${VAR} is read from the environment
    signing_secret: ${QA_HMAC}   # optional: X-Shipbot-Signature-256: sha256=<hmac of body>
    repos: [acme/api]            # repositories allowed to use this target
alarms:
  prod-high-severity:
    kind: alertmanager           # alertmanager (firing = any active alert matching filter) | http (JSON {"firing": bool})
    url: http://alertmanager:9093
    filter: ['severity="high"', 'service="api"']
`

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestParseTargetsDesignExample(t *testing.T) {
	got, err := ParseTargets("targets.yml", []byte(designTargets), env("SPINNAKER_QA_KEY", "k-123", "QA_HMAC", "h-456"), KindsForTest)
	if err != nil {
		t.Fatalf("ParseTargets: %v", err)
	}
	want := Targets{
		Targets: map[string]Target{
			"spinnaker-qa": {
				Name: "spinnaker-qa", Kind: "spinnaker", URL: "https://gate.example/webhooks/webhook/api-qa",
				Constraints: map[string]string{"deploy_key": "k-123"}, SigningSecret: "h-456",
				Repos: []string{"acme/api"}, Line: 2,
			},
		},
		Alarms: map[string]Alarm{
			"prod-high-severity": {
				Name: "prod-high-severity", Kind: AlarmAlertmanager, URL: "http://alertmanager:9093",
				Filter: []string{`severity="high"`, `service="api"`}, Line: 10,
			},
		},
	}
	if diff := cmp.Diff(want, got, ignoreDerived); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	tgt, err := got.Lookup("spinnaker-qa", "ACME/Api")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if diff := cmp.Diff([]string{"k-123", "h-456"}, tgt.Secrets()); diff != "" {
		t.Errorf("Secrets (-want +got):\n%s", diff)
	}
}

func TestParseTargetsUnresolved(t *testing.T) {
	ts, err := ParseTargets("targets.yml", []byte(designTargets), env("QA_HMAC", ""), KindsForTest)
	if err != nil {
		t.Fatalf("an unset variable must not be a parse error: %v", err)
	}
	tgt := ts.Targets["spinnaker-qa"]
	if diff := cmp.Diff([]string{"QA_HMAC", "SPINNAKER_QA_KEY"}, tgt.Unresolved); diff != "" {
		t.Errorf("Unresolved (-want +got):\n%s", diff)
	}
	const want = `target "spinnaker-qa": environment variables QA_HMAC, SPINNAKER_QA_KEY are not set`
	if err := tgt.Err(); err == nil || err.Error() != want {
		t.Errorf("Err() = %v, want %q", err, want)
	}
	_, err = ts.Lookup("spinnaker-qa", "acme/api")
	if err == nil || err.Error() != want || !errors.Is(err, ErrUnresolvedValue) {
		t.Errorf("Lookup error = %v, want %q wrapping ErrUnresolvedValue", err, want)
	}

	one := `targets:
  spinnaker-qa:
    kind: spinnaker
    url: https://gate.example/x
    constraints: {deploy_key: "${SPINNAKER_QA_KEY}"}
    repos: [acme/api]
`
	ts, err = ParseTargets("t.yml", []byte(one), env(), KindsForTest)
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.Targets["spinnaker-qa"].Err(); got == nil || got.Error() != `target "spinnaker-qa": environment variable SPINNAKER_QA_KEY is not set` {
		t.Errorf("Err() = %v", got)
	}

	// Values that reference an unset variable are not validated: the target
	// is unusable anyway, and the operator sees why through Err.
	unvalidated := `targets:
  t:
    kind: ${KIND}
    url: ${URL}/hook
    repos: ["${REPO}"]
    timeout: ${TIMEOUT}
alarms:
  a:
    kind: http
    url: ${ALARM_URL}
`
	ts, err = ParseTargets("t.yml", []byte(unvalidated), env(), KindsForTest)
	if err != nil {
		t.Fatalf("ParseTargets: %v", err)
	}
	if diff := cmp.Diff([]string{"KIND", "REPO", "TIMEOUT", "URL"}, ts.Targets["t"].Unresolved); diff != "" {
		t.Errorf("Unresolved (-want +got):\n%s", diff)
	}
	if got := ts.Alarms["a"].Err(); got == nil || got.Error() != `alarm "a": environment variable ALARM_URL is not set` {
		t.Errorf("Alarm.Err() = %v", got)
	}
}

func TestExpand(t *testing.T) {
	getenv := env("A", "x", "B", "y$z", "EMPTY", "")
	tests := []struct {
		in, want string
		missing  []string
		err      string
	}{
		{"plain", "plain", nil, ""},
		{"${A}", "x", nil, ""},
		{"pre-${A}-${B}-post", "pre-x-y$z-post", nil, ""},
		{"$${A}", "${A}", nil, ""},
		{"cost: 5$", "cost: 5$", nil, ""},
		{"$5 and $", "$5 and $", nil, ""},
		{"a$$b", "a$b", nil, ""},
		{"${MISSING}/${EMPTY}/${MISSING}", "//", []string{"MISSING", "EMPTY"}, ""},
		{"$A", "", nil, "$ followed by a name"},
		{"${A", "", nil, "unterminated ${"},
		{"${1A}", "", nil, "invalid variable name"},
		{"${A:-default}", "", nil, "invalid variable name"},
		{"${}", "", nil, "invalid variable name"},
	}
	for _, tt := range tests {
		got, missing, err := expand(tt.in, getenv)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("expand(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want || !cmp.Equal(missing, tt.missing) {
			t.Errorf("expand(%q) = %q, %v, %v; want %q, %v", tt.in, got, missing, err, tt.want, tt.missing)
		}
	}
}

func TestParseTargetsEmptySections(t *testing.T) {
	for _, yml := range []string{"targets:\n", "alarms: {}\n", "targets: {}\nalarms: ~\n"} {
		got, err := ParseTargets("t.yml", []byte(yml), nil, KindsForTest)
		if err != nil {
			t.Errorf("%q: %v", yml, err)
			continue
		}
		if got.Targets == nil || got.Alarms == nil {
			t.Errorf("%q: nil maps: %+v", yml, got)
		}
	}
}

// A prometheus alarm: url and query expanded, the query kept as written
// (a block scalar, a regex's $, a $$), and only the URL's credentials among
// the secrets: the query is a setting that reasons quote, as a filter is.
func TestParseTargetsPrometheusAlarm(t *testing.T) {
	yml := `alarms:
  prod-5xx:
    kind: prometheus
    url: https://shipbot:${PROM_PW}@prometheus.example/prom/
    query: |
      sum by (job) (rate(http_requests_total{env="${ENV}", code=~"5..$"}[5m]))
        / sum by (job) (rate(http_requests_total{env="${ENV}"}[5m])) > 0.05
  cost:
    kind: prometheus
    url: http://prometheus:9090
    query: 'label_replace(up, "x", "$${1}", "job", "(.*)") == 0'
`
	ts, err := ParseTargets("t.yml", []byte(yml), env("PROM_PW", "prom-pw-1234", "ENV", "prod"), KindsForTest)
	if err != nil {
		t.Fatalf("ParseTargets: %v", err)
	}
	want := map[string]Alarm{
		"prod-5xx": {
			Name: "prod-5xx", Kind: AlarmPrometheus, URL: "https://shipbot:prom-pw-1234@prometheus.example/prom/",
			Query: "sum by (job) (rate(http_requests_total{env=\"prod\", code=~\"5..$\"}[5m]))\n  / sum by (job) (rate(http_requests_total{env=\"prod\"}[5m])) > 0.05\n",
			Line:  2,
		},
		"cost": {Name: "cost", Kind: AlarmPrometheus, URL: "http://prometheus:9090", Query: `label_replace(up, "x", "${1}", "job", "(.*)") == 0`, Line: 8},
	}
	if diff := cmp.Diff(want, ts.Alarms, ignoreDerived); diff != "" {
		t.Errorf("alarms (-want +got):\n%s", diff)
	}
	// prom-pw-1234 and base64("shipbot:prom-pw-1234").
	if diff := cmp.Diff([]string{"prom-pw-1234", "c2hpcGJvdDpwcm9tLXB3LTEyMzQ="}, ts.Alarms["prod-5xx"].Secrets()); diff != "" {
		t.Errorf("Alarm.Secrets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"c2hpcGJvdDpwcm9tLXB3LTEyMzQ=", "prom-pw-1234"}, ts.Secrets()); diff != "" {
		t.Errorf("Targets.Secrets (-want +got):\n%s", diff)
	}

	// An unset variable in the query makes the alarm unresolved, like one
	// in the URL: it is not read, and so fires.
	ts, err = ParseTargets("t.yml", []byte(yml), env("PROM_PW", "prom-pw-1234"), KindsForTest)
	if err != nil {
		t.Fatalf("ParseTargets: %v", err)
	}
	if got := ts.Alarms["prod-5xx"].Err(); got == nil || got.Error() != `alarm "prod-5xx": environment variable ENV is not set` {
		t.Errorf("Err() = %v", got)
	}
}

func TestParseTargetsErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"empty", "", []string{"t.yml:1:1: file is empty"}},
		{"unknown top-level key", "target: {}\n", []string{`t.yml:1:1: unknown key "target" (known keys: targets, alarms)`}},
		{"syntax error", "targets:\n  a: [\n", []string{"t.yml:2: invalid YAML: did not find expected node content"}},
		{"targets not a mapping", "targets: [a]\n", []string{"t.yml:1:10: targets: must be a mapping, got a list"}},
		{"target not a mapping", "targets:\n  a: spinnaker\n", []string{"t.yml:2:6: targets.a: must be a mapping, got a string"}},
		{"missing kind and url", "targets:\n  a:\n    repos: [acme/api]\n", []string{
			`t.yml:3:5: targets.a.kind: required: "spinnaker", "webhook" or "github-dispatch"`}},
		{"bad kind", "targets:\n  a: {kind: lambda, url: 'https://x'}\n", []string{
			`t.yml:2:13: targets.a.kind: must be "spinnaker", "webhook" or "github-dispatch", got "lambda"`}},
		{"missing url", "targets:\n  a:\n    kind: webhook\n", []string{`t.yml:3:5: targets.a.url: required for kind "webhook"`}},
		{"unknown key", "targets:\n  a:\n    kind: webhook\n    url: https://x\n    secret: s\n", []string{
			`t.yml:5:5: targets.a: unknown key "secret" (known keys: kind, url, constraints, signing_secret, repos, gate_url, application, workflow, repository, ref, timeout)`}},
		{"bad urls", "targets:\n  a: {kind: webhook, url: /hook}\n  b: {kind: webhook, url: 'ftp://x/y'}\n  c: {kind: webhook, url: 'https://x/#f'}\n  d: {kind: webhook, url: 'http://[::1'}\n", []string{
			`t.yml:2:27: targets.a.url: must be an absolute http(s) URL, got "/hook": scheme must be http or https`,
			`t.yml:3:27: targets.b.url: must be an absolute http(s) URL, got "ftp://x/y": scheme must be http or https`,
			`t.yml:4:27: targets.c.url: must be an absolute http(s) URL, got "https://x/#f": must not have a #fragment`,
			`t.yml:5:27: targets.d.url: must be an absolute http(s) URL, got "http://[::1": missing ']' in host`,
		}},
		{"github-dispatch rules", "targets:\n  gh:\n    kind: github-dispatch\n    url: https://x\n    signing_secret: s\n    repository: not-a-repo\n", []string{
			`t.yml:3:5: targets.gh.workflow: required for kind "github-dispatch" (a workflow file name such as deploy.yml, or its id)`,
			`t.yml:4:5: targets.gh.url: not used by kind "github-dispatch" (only by "spinnaker" or "webhook")`,
			`t.yml:5:5: targets.gh.signing_secret: not used by kind "github-dispatch" (only by "spinnaker" or "webhook")`,
			`t.yml:6:17: targets.gh.repository: must be owner/name, got "not-a-repo"`,
		}},
		{"dispatch-only keys on webhook", "targets:\n  w:\n    kind: webhook\n    url: https://x\n    workflow: d.yml\n    ref: main\n    gate_url: https://g\n", []string{
			`t.yml:5:5: targets.w.workflow: not used by kind "webhook" (only by "github-dispatch")`,
			`t.yml:6:5: targets.w.ref: not used by kind "webhook" (only by "github-dispatch")`,
			`t.yml:7:5: targets.w.gate_url: not used by kind "webhook" (only by "spinnaker")`,
		}},
		{"gate_url without application", "targets:\n  s:\n    kind: spinnaker\n    url: https://x\n    gate_url: https://g\n", []string{
			`t.yml:3:5: targets.s: set both gate_url and application, or neither`}},
		{"constraints", "targets:\n  s:\n    kind: spinnaker\n    url: https://x\n    constraints:\n      sha: x\n      key: ''\n      nested: {a: b}\n      ok: fine\n", []string{
			`t.yml:6:7: targets.s.constraints.sha: "sha" is a field of the trigger payload and cannot be a constraint`,
			`t.yml:7:12: targets.s.constraints.key: must not be empty`,
			`t.yml:8:15: targets.s.constraints.nested: must be a string, got a mapping`,
		}},
		{"repos", "targets:\n  s:\n    kind: webhook\n    url: https://x\n    repos: [acme, acme/api, ACME/API, a/b/c]\n", []string{
			`t.yml:5:13: targets.s.repos[0]: must be owner/name, got "acme"`,
			`t.yml:5:29: targets.s.repos[2]: duplicate repository "ACME/API" (first at line 5)`,
			`t.yml:5:39: targets.s.repos[3]: must be owner/name, got "a/b/c"`,
		}},
		{"repos not a list", "targets:\n  s: {kind: webhook, url: 'https://x', repos: acme/api}\n", []string{
			`t.yml:2:47: targets.s.repos: must be a list, got a string`}},
		{"timeout", "targets:\n  a: {kind: webhook, url: 'https://x', timeout: 5}\n  b: {kind: webhook, url: 'https://x', timeout: -1m}\n  c: {kind: webhook, url: 'https://x', timeout: 9999999999h}\n", []string{
			`t.yml:2:49: targets.a.timeout: invalid duration "5"`,
			`t.yml:3:49: targets.b.timeout: must be positive, got "-1m"`,
			`t.yml:4:49: targets.c.timeout: out of range (at most 2562047h, about 292 years), got "9999999999h"`,
		}},
		{"bad names", "targets:\n  bad.name: {kind: webhook, url: 'https://x'}\nalarms:\n  'a b': {kind: http, url: 'https://x'}\n", []string{
			`t.yml:2:3: targets: invalid target name "bad.name": must match ^[A-Za-z0-9][A-Za-z0-9_-]*$`,
			`t.yml:4:3: alarms: invalid alarm name "a b": must match ^[A-Za-z0-9][A-Za-z0-9_-]*$`,
		}},
		{"duplicate target", "targets:\n  a: {kind: webhook, url: 'https://x'}\n  a: {kind: webhook, url: 'https://y'}\n", []string{
			`t.yml:3:3: targets.a: duplicate key (first at line 2)`}},
		{"expansion syntax", "targets:\n  a:\n    kind: webhook\n    url: https://x\n    constraints: {k: $KEY}\n    signing_secret: ${OOPS\n", []string{
			`t.yml:5:22: targets.a.constraints.k: $ followed by a name: write ${NAME} to read an environment variable, or $$ for a literal $`,
			`t.yml:6:21: targets.a.signing_secret: unterminated ${ (write $$ for a literal $)`,
		}},
		{"alarm errors", "alarms:\n  a:\n    kind: http\n    url: https://x\n    filter: ['x=\"y\"']\n  b:\n    kind: alertmanager\n    filter: ['severity', '=x', 'sev=~\"hi.*\"', 3]\n  c:\n    kind: pagerduty\n    url: x\n", []string{
			`t.yml:5:5: alarms.a.filter: only for kind "alertmanager"`,
			`t.yml:7:5: alarms.b.url: required`,
			`t.yml:8:14: alarms.b.filter[0]: must be an Alertmanager matcher such as 'severity="high"', got "severity"`,
			`t.yml:8:26: alarms.b.filter[1]: must be an Alertmanager matcher such as 'severity="high"', got "=x"`,
			`t.yml:8:47: alarms.b.filter[3]: must be an Alertmanager matcher such as 'severity="high"', got "3"`,
			`t.yml:10:11: alarms.c.kind: must be "alertmanager", "http" or "prometheus", got "pagerduty"`,
			`t.yml:11:10: alarms.c.url: must be an absolute http(s) URL, got "x": scheme must be http or https`,
		}},
		{"prometheus alarm errors", `alarms:
  no-query:
    kind: prometheus
    url: http://prometheus:9090
  empty-query: {kind: prometheus, url: 'http://prometheus:9090', query: '  '}
  query-not-a-string: {kind: prometheus, url: 'http://prometheus:9090', query: [up]}
  on-http: {kind: http, url: 'https://x', query: up}
  on-alertmanager: {kind: alertmanager, url: 'https://x', query: up}
  filter-on-prometheus: {kind: prometheus, url: 'http://p', query: up, filter: ['a="b"']}
  endpoint-not-base: {kind: prometheus, url: 'http://p/prom/api/v1/query', query: up}
  api-root: {kind: prometheus, url: 'http://p/api/v1/', query: up}
  no-url: {kind: prometheus, query: up}
  bad-url: {kind: prometheus, url: 'prometheus:9090', query: up}
  unknown-key: {kind: prometheus, url: 'http://p', query: up, step: 1m}
`, []string{
			`t.yml:3:5: alarms.no-query.query: required for kind "prometheus": a PromQL expression that returns series while the alarm fires, such as 'rate(http_errors_total[5m]) > 0.05'`,
			`t.yml:5:73: alarms.empty-query.query: must not be empty`,
			`t.yml:6:80: alarms.query-not-a-string.query: must be a string, got a list`,
			`t.yml:7:43: alarms.on-http.query: only for kind "prometheus"`,
			`t.yml:8:59: alarms.on-alertmanager.query: only for kind "prometheus"`,
			`t.yml:9:72: alarms.filter-on-prometheus.filter: only for kind "alertmanager"`,
			`t.yml:10:46: alarms.endpoint-not-base.url: must be Prometheus's base URL, without /api/v1/…: shipbot appends /api/v1/query, got "http://p/prom/api/v1/query"`,
			`t.yml:11:37: alarms.api-root.url: must be Prometheus's base URL, without /api/v1/…: shipbot appends /api/v1/query, got "http://p/api/v1/"`,
			`t.yml:12:11: alarms.no-url.url: required`,
			`t.yml:13:36: alarms.bad-url.url: must be an absolute http(s) URL, got "prometheus:9090": scheme must be http or https`,
			`t.yml:14:63: alarms.unknown-key: unknown key "step" (known keys: kind, url, filter, query)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTargets("t.yml", []byte(tt.yaml), env(), KindsForTest)
			if err == nil {
				t.Fatalf("ParseTargets succeeded: %+v", got)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want ErrorList", err)
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTargetsWarnings(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want []string // every warning, in file order
	}{
		{"nothing to warn about", designTargets, []string{"SPINNAKER_QA_KEY", "k", "QA_HMAC", "h"}, nil},
		{"unset variables, each reference at its own line", designTargets, []string{"QA_HMAC", ""}, []string{
			`t.yml:6:19: targets.spinnaker-qa.constraints.deploy_key: ${SPINNAKER_QA_KEY} is not set in the environment (or is empty); stages that use target "spinnaker-qa" fail until it is set`,
			`t.yml:7:21: targets.spinnaker-qa.signing_secret: ${QA_HMAC} is not set in the environment (or is empty); stages that use target "spinnaker-qa" fail until it is set`,
		}},
		{"two variables in one value", "targets:\n  w:\n    kind: webhook\n    url: https://${HOST}/${PATH_PART}\n", nil, []string{
			`t.yml:4:10: targets.w.url: ${HOST} is not set in the environment (or is empty); stages that use target "w" fail until it is set`,
			`t.yml:4:10: targets.w.url: ${PATH_PART} is not set in the environment (or is empty); stages that use target "w" fail until it is set`,
		}},
		{"unset variable in an alarm", "alarms:\n  a:\n    kind: http\n    url: ${ALARM_URL}\n", nil, []string{
			`t.yml:4:10: alarms.a.url: ${ALARM_URL} is not set in the environment (or is empty); alarm "a" cannot be read until it is set, and an alarm that cannot be read counts as firing`,
		}},
		{"metadata addresses", `targets:
  aws: {kind: webhook, url: 'http://169.254.169.254/latest/meta-data/'}
  v6: {kind: webhook, url: 'http://[fe80::1%25eth0]/x'}
  awsv6: {kind: webhook, url: 'http://[fd00:ec2::254]/'}
  gcp: {kind: webhook, url: 'http://metadata.google.internal/computeMetadata/v1/'}
  gcp-short: {kind: spinnaker, url: 'https://gate.example/hook', gate_url: 'http://METADATA./', application: a}
  alibaba: {kind: webhook, url: 'http://100.100.100.200/latest/meta-data/'}
  hidden: {kind: webhook, url: 'http://${IMDS}/x'}
  fine: {kind: webhook, url: 'http://10.0.0.1/x'}
  fine-too: {kind: webhook, url: 'https://metadata.example.com/x'}
alarms:
  a: {kind: http, url: 'http://169.254.170.2/v2/credentials'}
`, []string{"IMDS", "169.254.169.254"}, []string{
			`t.yml:2:29: targets.aws.url: points at "169.254.169.254", a link-local address; cloud instance metadata and credentials are served there, so a request to it can leak them`,
			`t.yml:3:28: targets.v6.url: points at "fe80::1%eth0", a link-local address; cloud instance metadata and credentials are served there, so a request to it can leak them`,
			`t.yml:4:31: targets.awsv6.url: points at "fd00:ec2::254", a cloud metadata service's address; cloud instance metadata and credentials are served there, so a request to it can leak them`,
			`t.yml:5:29: targets.gcp.url: points at "metadata.google.internal", a cloud metadata service's host name; cloud instance metadata and credentials are served there, so a request to it can leak them`,
			`t.yml:6:76: targets.gcp-short.gate_url: points at "METADATA.", a cloud metadata service's host name; cloud instance metadata and credentials are served there, so a request to it can leak them`,
			`t.yml:7:33: targets.alibaba.url: points at "100.100.100.200", a cloud metadata service's address; cloud instance metadata and credentials are served there, so a request to it can leak them`,
			`t.yml:8:32: targets.hidden.url: points at a host (after expanding variables), a link-local address; cloud instance metadata and credentials are served there, so a request to it can leak them`,
			`t.yml:12:24: alarms.a.url: points at "169.254.170.2", a link-local address; cloud instance metadata and credentials are served there, so a request to it can leak them`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := ParseTargets("t.yml", []byte(tt.yaml), env(tt.env...), KindsForTest)
			if err != nil {
				t.Fatalf("warnings must not make the file invalid: %v", err)
			}
			var got []string
			for _, w := range ts.Warnings {
				got = append(got, w.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseTargetsErrorsHideSecrets makes every value invalid while it holds
// a secret and checks that no message repeats one.
func TestParseTargetsErrorsHideSecrets(t *testing.T) {
	secrets := []string{"s3cr3t-url-token", "s3cr3t-constraint", "s3cr3t-signing"}
	yml := `targets:
  a:
    kind: webhook
    url: ${URL_TOKEN}
    constraints: {key: {nested: s3cr3t-literal}, other: "s3cr3t-inline$TAIL"}
    signing_secret: [s3cr3t-list]
  b:
    kind: github-dispatch
    workflow: d.yml
    signing_secret: ${SIGN}
    constraints: {run_id: "${CONSTRAINT}"}
`
	_, err := ParseTargets("t.yml", []byte(yml), env("URL_TOKEN", secrets[0], "CONSTRAINT", secrets[1], "SIGN", secrets[2]), KindsForTest)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, s := range append(secrets, "s3cr3t-literal", "s3cr3t-inline", "s3cr3t-list", "TAIL") {
		if strings.Contains(msg, s) {
			t.Errorf("error message contains secret %q:\n%s", s, msg)
		}
	}
	if got := strings.Count(msg, "\n") + 1; got != 6 {
		t.Errorf("got %d errors, want 6:\n%s", got, msg)
	}
}

func TestTargetAllows(t *testing.T) {
	tests := []struct {
		repos []string
		repo  string
		want  bool
	}{
		{[]string{"acme/api"}, "acme/api", true},
		{[]string{"acme/api"}, "ACME/Api", true},
		{[]string{"Acme/API", "acme/web"}, "acme/web", true},
		{[]string{"acme/api"}, "acme/api2", false},
		{[]string{"acme/api"}, "evil/api", false},
		{[]string{"acme/api"}, "", false},
		{nil, "acme/api", false},
		{[]string{}, "acme/api", false},
	}
	for _, tt := range tests {
		if got := (Target{Repos: tt.repos}).Allows(tt.repo); got != tt.want {
			t.Errorf("Target{Repos: %v}.Allows(%q) = %v, want %v", tt.repos, tt.repo, got, tt.want)
		}
	}
}

func TestLookup(t *testing.T) {
	ts := Targets{Targets: map[string]Target{
		"qa":      {Name: "qa", Repos: []string{"acme/api"}},
		"nobody":  {Name: "nobody"},
		"missing": {Name: "missing", Repos: []string{"acme/api"}, Unresolved: []string{"KEY"}},
	}}
	tests := []struct {
		name, repo string
		wantErr    string
		is         error
	}{
		{"qa", "acme/api", "", nil},
		{"prod", "acme/api", `unknown target "prod"`, ErrUnknownTarget},
		{"qa", "evil/api", `target "qa" does not allow repository evil/api (add it to the target's repos in the targets file)`, ErrRepoNotAllowed},
		{"nobody", "acme/api", `target "nobody" does not allow repository acme/api (add it to the target's repos in the targets file)`, ErrRepoNotAllowed},
		{"missing", "acme/api", `target "missing": environment variable KEY is not set`, ErrUnresolvedValue},
	}
	for _, tt := range tests {
		got, err := ts.Lookup(tt.name, tt.repo)
		if tt.wantErr == "" {
			if err != nil || got.Name != tt.name {
				t.Errorf("Lookup(%q, %q) = %+v, %v", tt.name, tt.repo, got, err)
			}
			continue
		}
		if err == nil || err.Error() != tt.wantErr || !errors.Is(err, tt.is) {
			t.Errorf("Lookup(%q, %q) error = %v, want %q (Is %v)", tt.name, tt.repo, err, tt.wantErr, tt.is)
		}
	}
}

func TestSecrets(t *testing.T) {
	ts := Targets{
		Targets: map[string]Target{
			"a": {Constraints: map[string]string{"z": "zz", "a": "long-secret-a"}, SigningSecret: "sig",
				URL: "https://user:url-pass@x/"},
			"b": {Constraints: map[string]string{"k": "zz"}, SigningSecret: "long-secret-a-plus"},
		},
		Alarms: map[string]Alarm{"x": {URL: "http://am:alarm-pass@am:9093"}},
	}
	// The base64 values are the basic auth net/http sends for user:url-pass
	// and am:alarm-pass.
	if diff := cmp.Diff([]string{"long-secret-a", "zz", "sig", "url-pass", "dXNlcjp1cmwtcGFzcw=="}, ts.Targets["a"].Secrets()); diff != "" {
		t.Errorf("Target.Secrets (-want +got):\n%s", diff)
	}
	want := []string{"YW06YWxhcm0tcGFzcw==", "dXNlcjp1cmwtcGFzcw==", "long-secret-a-plus", "long-secret-a", "alarm-pass", "url-pass", "sig", "zz"}
	if diff := cmp.Diff(want, ts.Secrets()); diff != "" {
		t.Errorf("Targets.Secrets (-want +got):\n%s", diff)
	}
}

func TestValidateTargets(t *testing.T) {
	repo, err := ParseRepo(RepoFile, []byte(designExample), "api")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := ParseTargets("t.yml", []byte(designTargets), env("SPINNAKER_QA_KEY", "k", "QA_HMAC", "h"), KindsForTest)
	if err != nil {
		t.Fatal(err)
	}
	got := repo.ValidateTargets(ts, "acme/api")
	want := []string{`.github/shipbot.yml:16: stages[1].target: unknown target "spinnaker-prod"`}
	if diff := cmp.Diff(want, errStrings(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	ts.Targets["spinnaker-prod"] = Target{Name: "spinnaker-prod", Repos: []string{"acme/api"}}
	if got := repo.ValidateTargets(ts, "ACME/api"); len(got) != 0 {
		t.Errorf("want no errors, got %v", got)
	}

	delete(ts.Alarms, "prod-high-severity")
	got = repo.ValidateTargets(ts, "other/api")
	want = []string{
		`.github/shipbot.yml:13: stages[0].target: target "spinnaker-qa" does not allow repository other/api`,
		`.github/shipbot.yml:16: stages[1].target: target "spinnaker-prod" does not allow repository other/api`,
		`.github/shipbot.yml:16: stages[1].alarms[0]: unknown alarm "prod-high-severity"`,
	}
	if diff := cmp.Diff(want, errStrings(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	var e *Error
	if !errors.As(got[0], &e) || e.Line != 13 {
		t.Errorf("errors.As(*Error) = %+v", e)
	}
}

func errStrings(errs []error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func TestIsTargetsFile(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want bool
	}{
		{designTargets, true},
		{"# server side\n\"targets\":\n  a: {kind: webhook}\n", true},
		{"targets:\n\ta: [\n", true}, // broken, still recognised: its errors come from ParseTargets
		{"alarms: {}\ntargets: {}\n", true},
		{designExample, false},
		{"version: 1\nstages:\n  - name: qa\n    targets: [a, b]\n", false},
		{"version: 1\n# targets: none\n", false},
	} {
		if got := IsTargetsFile([]byte(tc.yaml)); got != tc.want {
			t.Errorf("IsTargetsFile(%q) = %v, want %v", tc.yaml, got, tc.want)
		}
	}
}
