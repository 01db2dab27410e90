package deploy

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/config"
)

func newTestLogger(w *lockedBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestRedact(t *testing.T) {
	r := NewRedactor("abc", "abcdef", "", "x<y&z", "defg", "p@ss word")
	tests := []struct{ in, want string }{
		{"", ""},
		{"nothing here", "nothing here"},
		{"key=abcdef.", "key=[REDACTED]."},                // longest wins
		{"abc abc", "[REDACTED] [REDACTED]"},              // every occurrence
		{"abcdefg", "[REDACTED]"},                         // overlapping secrets leave no tail
		{"xabcdefgx", "x[REDACTED]x"},                     // touching spans merge
		{`{"k":"x\u003cy\u0026z"}`, `{"k":"[REDACTED]"}`}, // as JSON escapes it
		{"x<y&z", "[REDACTED]"},
		{"?pw=p%40ss+word", "?pw=[REDACTED]"}, // as a query escapes it
		{"/p@ss%20word/", "/[REDACTED]/"},     // as a path escapes it
		{"ABC", "ABC"},                        // secrets are case-sensitive
	}
	for _, tc := range tests {
		if got := r.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var nilR *Redactor
	if got := nilR.Redact("abc"); got != "abc" {
		t.Errorf("nil Redactor changed text: %q", got)
	}
	if !r.Contains("..abc..") || r.Contains("ab c") {
		t.Error("Contains")
	}
}

func TestRedactorFromTargets(t *testing.T) {
	ts, err := config.ParseTargets("targets.yml", []byte(`
targets:
  spinnaker-qa:
    kind: spinnaker
    url: https://deployer:${URL_PW}@gate.example/webhooks/webhook/api-qa
    constraints:
      deploy_key: ${QA_KEY}
    signing_secret: ${QA_HMAC}
    repos: [acme/api]
  prod:
    kind: webhook
    url: https://hooks.example/prod
    constraints:
      deploy_key: ${PROD_KEY}
    repos: [acme/api]
alarms:
  high:
    kind: http
    url: https://u:${ALARM_PW}@alarms.example/firing
`), func(k string) (string, bool) {
		v, ok := map[string]string{
			"URL_PW": "urlpw-111", "QA_KEY": "qa-key-222", "QA_HMAC": "hmac-333",
			"PROD_KEY": "qa-key-222-prod", "ALARM_PW": "alarmpw-444",
		}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRedactor(ts.Secrets()...)
	in := "deploy failed: qa-key-222-prod / qa-key-222 / hmac-333 / urlpw-111 / alarmpw-444"
	got := r.Redact(in)
	for _, s := range []string{"qa-key-222", "-prod", "hmac-333", "urlpw-111", "alarmpw-444"} {
		if strings.Contains(got, s) {
			t.Errorf("%q survived: %s", s, got)
		}
	}
	if want := "deploy failed: [REDACTED] / [REDACTED] / [REDACTED] / [REDACTED] / [REDACTED]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:pw@gate.example/webhooks/webhook/api?token=t0k#frag": "https://gate.example/webhooks/webhook/api",
		"http://127.0.0.1:8084/hook":                                    "http://127.0.0.1:8084/hook",
		"::not a url":                                                   "(invalid URL)",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

type secretStringer struct{ s string }

func (s secretStringer) String() string { return "value " + s.s }

func TestRedactHandler(t *testing.T) {
	buf := &lockedBuffer{}
	r := NewRedactor("hunter2")
	log := slog.New(RedactHandler(slog.NewTextHandler(buf, nil), r)).With("pre", "with hunter2")
	log.Info("msg hunter2", "err", errors.New("bad key hunter2"), "n", 3,
		slog.Group("g", "inner", "hunter2!"), "v", secretStringer{"hunter2"})
	out := buf.String()
	if strings.Contains(out, "hunter2") {
		t.Errorf("secret logged: %s", out)
	}
	for _, want := range []string{"msg [REDACTED]", "pre=\"with [REDACTED]\"", "n=3", "g.inner=[REDACTED]!", "bad key [REDACTED]"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
}
