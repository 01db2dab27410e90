package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/syncbuf"
)

func newTestLogger(w *syncbuf.Buffer) *slog.Logger {
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
	}, DriversForTest.Kinds())
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
	buf := &syncbuf.Buffer{}
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

// echoServer answers every request with status and a body that quotes the
// request back (URL, headers, body), as many error pages and debugging
// proxies do, plus extra.
func echoServer(t *testing.T, status int, extra string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(status)
		fmt.Fprintf(w, "%sno route for %s %s\nAuthorization: %s\nbody: %s\n",
			extra, r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Every target's secrets are scrubbed from every error a trigger makes,
// whatever form the answer quotes them in, and from the log: a token in the
// URL's query (echoed in a 404), the basic auth that a URL's user:password
// turns into (echoed in a 401), a secret in the URL's path, and a secret of
// another target entirely (a shared proxy that quotes it).
func TestTriggerErrorsHideEverySecret(t *testing.T) {
	const (
		queryToken = "qtok-7Hs2"
		password   = "pa55-w0rd-9"
		pathToken  = "T0K3N-path-55"
		otherKey   = "other-target-key-3e1"
		basicAuth  = "ZGVwbG95ZXI6cGE1NS13MHJkLTk=" // base64("deployer:pa55-w0rd-9")
	)
	env := map[string]string{"HOOK_TOKEN": queryToken, "HOOK_PW": password, "PATH_TOKEN": pathToken, "OTHER_KEY": otherKey}
	tests := []struct {
		name    string
		url     func(srv string) string // the target's url, before ${VAR} expansion
		status  int
		extra   string
		secrets []string
		says    string // what the error must still say
	}{
		{"query token echoed in a 404", func(srv string) string { return srv + "/hook?token=${HOOK_TOKEN}" },
			http.StatusNotFound, "", []string{queryToken}, "404 Not Found from http://127.0.0.1"},
		{"basic auth echoed in a 401", func(srv string) string {
			return strings.Replace(srv, "http://", "http://deployer:${HOOK_PW}@", 1) + "/hook"
		}, http.StatusUnauthorized, "", []string{password, basicAuth}, "401 Unauthorized from http://127.0.0.1"},
		{"path token", func(srv string) string { return srv + "/services/${PATH_TOKEN}" },
			http.StatusNotFound, "", []string{pathToken}, "404 Not Found from http://127.0.0.1"},
		{"another target's secret", func(srv string) string { return srv + "/hook" },
			http.StatusBadRequest, "upstream rejected deploy_key=" + otherKey + "; ", []string{otherKey}, "upstream rejected deploy_key=[REDACTED];"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := echoServer(t, tt.status, tt.extra)
			ts, err := config.ParseTargets("targets.yml", []byte(fmt.Sprintf(`
targets:
  hook:
    kind: webhook
    url: '%s'
    repos: [acme/api]
  other:
    kind: webhook
    url: https://other.example/hook
    constraints: {deploy_key: '${OTHER_KEY}'}
    repos: [acme/api]
`, tt.url(srv.URL))), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, DriversForTest.Kinds())
			if err != nil {
				t.Fatal(err)
			}
			tgt, err := ts.Lookup("hook", "acme/api")
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture()
			_, err = f.tr.Trigger(context.Background(), tgt, testPayload())
			if err == nil {
				t.Fatal("Trigger succeeded")
			}
			msg := err.Error()
			for _, s := range tt.secrets {
				if strings.Contains(msg, s) {
					t.Errorf("error quotes secret %q: %s", s, msg)
				}
				if strings.Contains(f.logs.String(), s) {
					t.Errorf("log quotes secret %q: %s", s, f.logs.String())
				}
			}
			if !strings.Contains(msg, tt.says) || !strings.Contains(msg, "no route for POST") {
				t.Errorf("error %q: want it to still say %q and quote the answer", msg, tt.says)
			}
		})
	}
}
