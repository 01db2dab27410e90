package spinnaker

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/internal/deploy/deploytest"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/deploy/webhook"
	"github.com/shipbot/shipbot/internal/syncbuf"
)

const (
	testSecret    = "s3cr3t"
	testHMAC      = "hmac-key-Qx7"
	testCallback  = "https://shipbot.example/api/v1/callbacks/tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
	testCallToken = "tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
)

func testPayload() deploy.Payload {
	return deploy.Payload{
		Repository: "acme/api", SHA: "0123456789abcdef0123456789abcdef01234567",
		Version: "1.4.2", Tag: "v1.4.2", Stage: "qa", PullRequest: 123,
		RunID: "run-42", Attempt: 1, CallbackURL: testCallback,
	}
}

func spinnakerTarget(url string) config.Target {
	return config.Target{
		Name: "spinnaker-qa", Kind: Kind, URL: url,
		Constraints:   map[string]string{"deploy_key": testSecret},
		SigningSecret: testHMAC,
		Repos:         []string{"acme/api"},
	}
}

func newTestLogger(w *syncbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type fixture struct {
	tr     *deploy.Triggerer
	sleeps *deploytest.Sleeps
	logs   *syncbuf.Buffer
}

func newFixture() *fixture {
	f := &fixture{sleeps: &deploytest.Sleeps{}, logs: &syncbuf.Buffer{}}
	// The spinnaker kind, and the webhook kind to compare it with.
	drivers := deploy.NewRegistry()
	drivers.Register(Driver{})
	drivers.Register(webhook.Driver{})
	f.tr = &deploy.Triggerer{Drivers: drivers, Env: deploy.Env{
		Retry: deploy.RetryPolicy{
			MaxAttempts: 4, Budget: time.Minute, AttemptTimeout: 5 * time.Second,
			Sleep: f.sleeps.Sleep,
			Rand:  func(n time.Duration) time.Duration { return n }, // the ceiling, deterministically
		},
		Log:     slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version: "1.2.3",
	}}
	return f
}

func TestSpinnakerAnchoredConstraintTriggers(t *testing.T) {
	echo := newFakeEcho(t, map[string]string{"deploy_key": "^" + testSecret + "$", "repository": "^acme/api$"})
	f := newFixture()
	res, err := f.tr.Trigger(context.Background(), spinnakerTarget(echo.url("api-qa")), testPayload())
	if err != nil {
		t.Fatalf("Trigger: %v", err)
	}
	evs := echo.received()
	if len(evs) != 1 {
		t.Fatalf("echo received %d events, want 1", len(evs))
	}
	if !evs[0].Triggered {
		t.Errorf("anchored constraint ^%s$ did not match our payload %s", testSecret, evs[0].Body)
	}
	if res.EventID == "" || res.EventID != evs[0].EventID {
		t.Errorf("EventID = %q, want Echo's %q", res.EventID, evs[0].EventID)
	}
	if res.Attempts != 1 {
		t.Errorf("Attempts = %d, want 1", res.Attempts)
	}
}

func TestSpinnakerWrongSecretAcceptedButNotTriggered(t *testing.T) {
	// Echo says eventProcessed either way; only the constraint decides.
	echo := newFakeEcho(t, map[string]string{"deploy_key": "^" + testSecret + "$"})
	f := newFixture()
	for _, wrong := range []string{"n0t-the-s3cr3t", testSecret + "x", "x" + testSecret, strings.ToUpper(testSecret)} {
		tgt := spinnakerTarget(echo.url("api-qa"))
		tgt.Constraints = map[string]string{"deploy_key": wrong}
		res, err := f.tr.Trigger(context.Background(), tgt, testPayload())
		if err != nil {
			t.Fatalf("Trigger with %q: %v", wrong, err)
		}
		if res.EventID == "" {
			t.Errorf("Trigger with %q: no event id, though Echo accepted", wrong)
		}
	}
	for _, ev := range echo.received() {
		if ev.Triggered {
			t.Errorf("a wrong secret triggered a pipeline: %s", ev.Body)
		}
	}
	// The reason operators must anchor: an unanchored constraint is a find.
	if !deploytest.ConstraintsMatch(map[string]string{"deploy_key": testSecret}, map[string]any{"deploy_key": "x" + testSecret + "x"}) {
		t.Error("unanchored constraint should match a longer value, as Echo's does")
	}
}

func TestPayloadFieldsAndTypes(t *testing.T) {
	echo := newFakeEcho(t, nil)
	f := newFixture()
	tgt := spinnakerTarget(echo.url("api-qa"))
	p := testPayload()
	if _, err := f.tr.Trigger(context.Background(), tgt, p); err != nil {
		t.Fatal(err)
	}
	rb := p
	rb.Rollback, rb.Attempt, rb.PullRequest, rb.Version, rb.Tag = true, 2, 0, "1.4.1", "v1.4.1"
	if _, err := f.tr.Trigger(context.Background(), tgt, rb); err != nil {
		t.Fatal(err)
	}
	evs := echo.received()
	if len(evs) != 2 {
		t.Fatalf("got %d events", len(evs))
	}
	// Exact bytes: sorted keys, integers as integers, the constraint as a
	// top-level field, no rollback key on a normal trigger.
	want := `{"attempt":1,"callback_url":"` + testCallback + `","deploy_key":"s3cr3t","pull_request":123,` +
		`"repository":"acme/api","run_id":"run-42","sha":"0123456789abcdef0123456789abcdef01234567",` +
		`"stage":"qa","tag":"v1.4.2","version":"1.4.2"}`
	if got := string(evs[0].Body); got != want {
		t.Errorf("body:\n got %s\nwant %s", got, want)
	}
	var typed struct {
		PullRequest *json.Number `json:"pull_request"`
		Attempt     json.Number  `json:"attempt"`
		RunID       any          `json:"run_id"`
		Stage       string       `json:"stage"`
		Rollback    *bool        `json:"rollback"`
	}
	dec := json.NewDecoder(bytes.NewReader(evs[0].Body))
	dec.UseNumber()
	if err := dec.Decode(&typed); err != nil {
		t.Fatal(err)
	}
	if typed.PullRequest == nil || typed.PullRequest.String() != "123" || typed.Attempt.String() != "1" {
		t.Errorf("pull_request/attempt not integers: %s", evs[0].Body)
	}
	if _, ok := typed.RunID.(string); !ok {
		t.Errorf("run_id is %T, want string", typed.RunID)
	}
	if typed.Stage != "qa" || typed.Rollback != nil {
		t.Errorf("stage = %q (want the stage name, not %q), rollback = %v", typed.Stage, tgt.Name, typed.Rollback)
	}

	rbFields := evs[1].Payload
	if rbFields["rollback"] != true || rbFields["attempt"] != float64(2) || rbFields["version"] != "1.4.1" {
		t.Errorf("rollback payload: %s", evs[1].Body)
	}
	if _, ok := rbFields["pull_request"]; ok {
		t.Errorf("PR-less payload has pull_request: %s", evs[1].Body)
	}
	if got := evs[1].Header.Get(deploy.IdempotencyKeyHeader); got != "run-42-qa-2" {
		t.Errorf("rollback Idempotency-Key = %q, want a new key run-42-qa-2", got)
	}
}

func TestHeadersAndSignature(t *testing.T) {
	echo := newFakeEcho(t, nil)
	f := newFixture()
	if _, err := f.tr.Trigger(context.Background(), spinnakerTarget(echo.url("api-qa")), testPayload()); err != nil {
		t.Fatal(err)
	}
	hook := spinnakerTarget(echo.url("plain"))
	hook.Kind, hook.SigningSecret = webhook.Kind, ""
	if _, err := f.tr.Trigger(context.Background(), hook, testPayload()); err != nil {
		t.Fatal(err)
	}
	evs := echo.received()
	h := evs[0].Header
	for name, want := range map[string]string{
		"Content-Type":              "application/json",
		deploy.IdempotencyKeyHeader: "run-42-qa-1",
		"User-Agent":                "shipbot/1.2.3",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	mac := hmac.New(sha256.New, []byte(testHMAC))
	mac.Write(evs[0].Body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	got := h.Get(deploy.SignatureHeader)
	if !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("%s = %q, want %q", deploy.SignatureHeader, got, want)
	}
	if s := evs[1].Header.Get(deploy.SignatureHeader); s != "" {
		t.Errorf("unsigned target sent %s: %q", deploy.SignatureHeader, s)
	}
}

func TestRetry502ThenSuccessSameBodyAndKey(t *testing.T) {
	echo := newFakeEcho(t, nil)
	echo.failNext(http.StatusBadGateway, "<html>bad gateway</html>")
	f := newFixture()
	res, err := f.tr.Trigger(context.Background(), spinnakerTarget(echo.url("api-qa")), testPayload())
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 {
		t.Errorf("Attempts = %d, want 2", res.Attempts)
	}
	evs := echo.received()
	if len(evs) != 2 {
		t.Fatalf("echo got %d requests, want 2", len(evs))
	}
	if !bytes.Equal(evs[0].Body, evs[1].Body) {
		t.Errorf("retry changed the body:\n%s\n%s", evs[0].Body, evs[1].Body)
	}
	for _, h := range []string{deploy.IdempotencyKeyHeader, deploy.SignatureHeader} {
		if a, b := evs[0].Header.Get(h), evs[1].Header.Get(h); a != b || a == "" {
			t.Errorf("%s: %q then %q, want the same", h, a, b)
		}
	}
	if w := f.sleeps.All(); len(w) != 1 || w[0] != deploy.DefaultBaseDelay {
		t.Errorf("waits = %v, want one full-jitter backoff ≤ %s", w, deploy.DefaultBaseDelay)
	}
}

func TestClientErrorFailsAtOnce(t *testing.T) {
	echo := newFakeEcho(t, nil)
	echo.failNext(http.StatusBadRequest, `{"message":"no such source"}`)
	f := newFixture()
	_, err := f.tr.Trigger(context.Background(), spinnakerTarget(echo.url("api-qa")), testPayload())
	var e *deploy.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *deploy.Error", err)
	}
	if !deploy.IsPermanent(err) || errors.Is(err, deploy.ErrExhausted) {
		t.Errorf("400 should be permanent: %v", err)
	}
	if e.Attempts != 1 || e.StatusCode != 400 || len(echo.received()) != 1 || len(f.sleeps.All()) != 0 {
		t.Errorf("attempts %d, status %d, requests %d, waits %v", e.Attempts, e.StatusCode, len(echo.received()), f.sleeps.All())
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "trigger stage qa via spinnaker-qa: 400 Bad Request from http://127.0.0.1:") ||
		!strings.Contains(msg, "no such source") {
		t.Errorf("error text: %s", msg)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	echo := newFakeEcho(t, nil)
	echo.failNext(http.StatusTooManyRequests, "slow down", "Retry-After", "7")
	echo.failNext(http.StatusServiceUnavailable, "", "Retry-After", "2")
	f := newFixture()
	res, err := f.tr.Trigger(context.Background(), spinnakerTarget(echo.url("api-qa")), testPayload())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Duration{7 * time.Second, 2 * time.Second}, f.sleeps.All()); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	if res.Attempts != 3 {
		t.Errorf("Attempts = %d, want 3", res.Attempts)
	}
}

func TestRetryAfterBeyondBudgetGivesUp(t *testing.T) {
	echo := newFakeEcho(t, nil)
	echo.failNext(http.StatusTooManyRequests, "", "Retry-After", "3600")
	f := newFixture()
	_, err := f.tr.Trigger(context.Background(), spinnakerTarget(echo.url("api-qa")), testPayload())
	var e *deploy.Error
	if !errors.As(err, &e) || !errors.Is(err, deploy.ErrExhausted) || deploy.IsPermanent(err) {
		t.Fatalf("err = %v, want retries exhausted", err)
	}
	if e.RetryAfter != time.Hour || len(f.sleeps.All()) != 0 {
		t.Errorf("RetryAfter = %s, waits %v; want 1h and no wait", e.RetryAfter, f.sleeps.All())
	}
}

func TestServerErrorsExhaustAttempts(t *testing.T) {
	echo := newFakeEcho(t, nil)
	for range 10 {
		echo.failNext(http.StatusInternalServerError, "boom")
	}
	f := newFixture()
	_, err := f.tr.Trigger(context.Background(), spinnakerTarget(echo.url("api-qa")), testPayload())
	if !errors.Is(err, deploy.ErrExhausted) || deploy.IsPermanent(err) {
		t.Fatalf("err = %v, want exhausted", err)
	}
	if n := len(echo.received()); n != 4 {
		t.Errorf("requests = %d, want MaxAttempts 4", n)
	}
	// Full jitter with Rand at its ceiling: 0.5s, 1s, 2s.
	if diff := cmp.Diff([]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}, f.sleeps.All()); diff != "" {
		t.Errorf("backoff (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "after 4 attempts") {
		t.Errorf("error text: %v", err)
	}
}

func TestHangingTargetTimesOutWithinBudget(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	f := newFixture()
	f.tr.HTTP = &http.Client{Timeout: 40 * time.Millisecond}
	f.tr.Retry.MaxAttempts = 3
	start := time.Now()
	_, err := f.tr.Trigger(context.Background(), spinnakerTarget(srv.URL+"/webhooks/webhook/api-qa"), testPayload())
	elapsed := time.Since(start)
	if !errors.Is(err, deploy.ErrExhausted) {
		t.Fatalf("err = %v, want exhausted", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 3 {
		t.Errorf("target saw %d requests, want 3", hits)
	}
	if elapsed > 2*time.Second {
		t.Errorf("took %s", elapsed)
	}
	if !strings.Contains(err.Error(), "no answer within") {
		t.Errorf("error text: %v", err)
	}

	// The per-attempt timeout does the same without a client timeout, and
	// the budget bounds the whole call.
	f2 := newFixture()
	f2.tr.Retry.AttemptTimeout = 30 * time.Millisecond
	f2.tr.Retry.Budget = 100 * time.Millisecond
	f2.tr.Retry.MaxAttempts = 100
	start = time.Now()
	_, err = f2.tr.Trigger(context.Background(), spinnakerTarget(srv.URL+"/webhooks/webhook/api-qa"), testPayload())
	if !errors.Is(err, deploy.ErrExhausted) || time.Since(start) > time.Second {
		t.Errorf("budgeted call: err %v after %s", err, time.Since(start))
	}
}

func TestConnectionRefusedRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	f := newFixture()
	_, err := f.tr.Trigger(context.Background(), spinnakerTarget(url+"/webhooks/webhook/api-qa"), testPayload())
	var e *deploy.Error
	if !errors.As(err, &e) || !errors.Is(err, deploy.ErrExhausted) || e.Attempts != 4 {
		t.Fatalf("err = %v, want 4 attempts then exhausted", err)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	other := newFakeEcho(t, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.url("stolen"), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	f := newFixture()
	_, err := f.tr.Trigger(context.Background(), spinnakerTarget(srv.URL+"/hook"), testPayload())
	if !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "redirects are not followed") {
		t.Errorf("err = %v, want a permanent redirect error", err)
	}
	if n := len(other.received()); n != 0 {
		t.Errorf("redirect target received %d requests carrying the secrets", n)
	}
}

func TestSpinnakerAnswerMustBeEcho(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>Sign in</html>")
	}))
	t.Cleanup(srv.Close)
	f := newFixture()
	tgt := spinnakerTarget(srv.URL + "/webhooks/webhook/api-qa")
	if _, err := f.tr.Trigger(context.Background(), tgt, testPayload()); !deploy.IsPermanent(err) {
		t.Errorf("spinnaker target answering HTML: err = %v, want permanent", err)
	}
	// A generic webhook takes any 2xx.
	tgt.Kind = webhook.Kind
	res, err := f.tr.Trigger(context.Background(), tgt, testPayload())
	if err != nil || res.EventID != "" || res.Attempts != 1 {
		t.Errorf("webhook: %+v, %v", res, err)
	}
}

func TestInvalidInputsFailPermanently(t *testing.T) {
	f := newFixture()
	echo := newFakeEcho(t, nil)
	tgt := spinnakerTarget(echo.url("x"))
	cases := map[string]func(*config.Target, *deploy.Payload){
		"attempt 0":          func(_ *config.Target, p *deploy.Payload) { p.Attempt = 0 },
		"no run id":          func(_ *config.Target, p *deploy.Payload) { p.RunID = "" },
		"unset variable":     func(t *config.Target, _ *deploy.Payload) { t.Unresolved = []string{"QA_KEY"} },
		"unknown kind":       func(t *config.Target, _ *deploy.Payload) { t.Kind = "ftp" },
		"colliding field":    func(t *config.Target, _ *deploy.Payload) { t.Constraints = map[string]string{"version": "9.9.9"} },
		"colliding rollback": func(t *config.Target, _ *deploy.Payload) { t.Constraints = map[string]string{"rollback": "x"} },
	}
	for name, mutate := range cases {
		tg, p := tgt, testPayload()
		mutate(&tg, &p)
		if _, err := f.tr.Trigger(context.Background(), tg, p); !deploy.IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", name, err)
		}
	}
	if n := len(echo.received()); n != 0 {
		t.Errorf("invalid triggers sent %d requests", n)
	}
}

func TestContextCanceledIsNeitherClass(t *testing.T) {
	echo := newFakeEcho(t, nil)
	echo.failNext(http.StatusServiceUnavailable, "")
	f := newFixture()
	ctx, cancel := context.WithCancel(context.Background())
	f.tr.Retry.Sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	_, err := f.tr.Trigger(ctx, spinnakerTarget(echo.url("api-qa")), testPayload())
	if !errors.Is(err, context.Canceled) || deploy.IsPermanent(err) || errors.Is(err, deploy.ErrExhausted) {
		t.Errorf("err = %v", err)
	}
}

// TestSecretsNeverLeak drives every failure path with a target whose
// answers echo the request back, and scans errors, logs and results for
// every secret.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		urlPassword = "p4ssw0rd-in-url"
		queryToken  = "qtok-abcdef123456"
	)
	secrets := []string{testSecret, testHMAC, urlPassword, queryToken, testCallToken}
	echoBack := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.WriteHeader(status)
			_, _ = w.Write(b)
			_, _ = io.WriteString(w, " url="+r.URL.String()+" auth="+r.Header.Get("Authorization"))
		}
	}
	var texts []string
	f := newFixture()
	for _, status := range []int{400, 401, 422, 500, 502, 200} {
		srv := httptest.NewServer(echoBack(status))
		u := strings.Replace(srv.URL, "http://", "http://deployer:"+urlPassword+"@", 1) + "/hook?token=" + queryToken
		for _, kind := range []string{Kind, webhook.Kind} {
			tgt := spinnakerTarget(u)
			tgt.Kind = kind
			res, err := f.tr.Trigger(context.Background(), tgt, testPayload())
			texts = append(texts, res.EventID)
			if err != nil {
				texts = append(texts, err.Error())
				if u := errors.Unwrap(err); u != nil {
					texts = append(texts, u.Error())
				}
			}
		}
		srv.Close()
		// Connection refused, now that it is closed.
		_, err := f.tr.Trigger(context.Background(), spinnakerTarget(u), testPayload())
		texts = append(texts, err.Error())
	}
	texts = append(texts, f.logs.String())
	if !strings.Contains(f.logs.String(), `"host":"127.0.0.1:`) {
		t.Errorf("logs should name the host: %s", f.logs.String())
	}
	for _, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("secret %q leaked into: %s", s, text)
			}
		}
	}
}

func TestEchoRefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"eventProcessed":false}`)
	}))
	t.Cleanup(srv.Close)
	f := newFixture()
	if _, err := f.tr.Trigger(context.Background(), spinnakerTarget(srv.URL), testPayload()); !deploy.IsPermanent(err) ||
		!strings.Contains(err.Error(), "did not process") {
		t.Errorf("eventProcessed false: err = %v", err)
	}
}
