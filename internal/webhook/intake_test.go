package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/webhook"
)

var secret = []byte("s3cr3t")

// GitHub's published test vector for X-Hub-Signature-256
// (docs: "Validating webhook deliveries").
func TestSignatureGitHubVector(t *testing.T) {
	key, body := []byte("It's a Secret to Everybody"), []byte("Hello, World!")
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := webhook.SignatureHeader(key, body); got != want {
		t.Fatalf("SignatureHeader = %s; want %s", got, want)
	}
	for _, tc := range []struct {
		name, header string
		key          []byte
		ok           bool
	}{
		{"vector", want, key, true},
		{"uppercase algorithm prefix", strings.ToUpper(want[:7]) + strings.ToUpper(want[7:]), key, false},
		{"wrong secret", want, []byte("other"), false},
		{"empty secret never verifies", want, nil, false},
		{"sha1 header", "sha1=" + want[7:], key, false},
		{"missing", "", key, false},
		{"not hex", "sha256=zz", key, false},
		{"truncated", want[:len(want)-2], key, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := webhook.ValidSignature(tc.key, body, tc.header); got != tc.ok {
				t.Errorf("ValidSignature(%q) = %v; want %v", tc.header, got, tc.ok)
			}
		})
	}
}

type rig struct {
	srv   *httptest.Server
	store store.Inbox
	saves *timedSaves // how long each delivery's save took
}

// timedSaves times an Inbox's SaveDelivery: the store's part of an
// acknowledgement, which the intake benchmark reports beside the whole.
type timedSaves struct {
	store.Inbox
	mu  sync.Mutex
	lat []time.Duration
}

func (t *timedSaves) SaveDelivery(ctx context.Context, d store.Delivery) (bool, error) {
	start := time.Now()
	ok, err := t.Inbox.SaveDelivery(ctx, d)
	t.mu.Lock()
	t.lat = append(t.lat, time.Since(start))
	t.mu.Unlock()
	return ok, err
}

// took returns the save latencies so far and forgets them.
func (t *timedSaves) took() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	lat := t.lat
	t.lat = nil
	return lat
}

// newRig serves an Intake over a fresh database; tune, if given, adjusts
// the Intake before it serves.
func newRig(t testing.TB, tune ...func(*webhook.Intake)) *rig {
	t.Helper()
	// A copy of a database migrated once per process: migrating from
	// nothing was a quarter of the package's CPU under -race.
	s := servicetest.OpenStore(t, filepath.Join(t.TempDir(), "shipbot.db"))
	return serveIntake(t, s, tune...)
}

// serveIntake serves an Intake over s, closed with the server.
func serveIntake(t testing.TB, s interface {
	store.Inbox
	Close() error
}, tune ...func(*webhook.Intake)) *rig {
	saves := &timedSaves{Inbox: s}
	in := &webhook.Intake{
		Secret: secret,
		Inbox:  saves,
		Wants: func(event, action string) bool {
			return event == "push" || event == "pull_request" && action == "closed"
		},
		Log: slog.New(slog.DiscardHandler),
	}
	for _, f := range tune {
		f(in)
	}
	e := echo.New()
	e.POST("/webhooks/github", in.Handle)
	srv := httptest.NewServer(e)
	t.Cleanup(func() { srv.Close(); s.Close() })
	return &rig{srv: srv, store: s, saves: saves}
}

func (r *rig) post(t testing.TB, event, id string, body []byte, sig string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/webhooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func signed(body []byte) string { return webhook.SignatureHeader(secret, body) }

func TestIntakeAnswers(t *testing.T) {
	merged := []byte(`{"action":"closed","installation":{"id":7},"repository":{"full_name":"acme/api"},"pull_request":{"merged":true}}`)
	for _, tc := range []struct {
		name, event string
		body        []byte
		sig         string
		code        int
		stored      string // status the inbox holds afterwards, "" = nothing stored
	}{
		{"merged PR accepted", "pull_request", merged, signed(merged), 202, store.StatusPending},
		{"missing signature", "pull_request", merged, "", 401, ""},
		{"signature of another body", "pull_request", merged, signed([]byte("{}")), 401, ""},
		{"signature with another secret", "pull_request", merged, webhook.SignatureHeader([]byte("x"), merged), 401, ""},
		{"malformed JSON", "push", []byte(`{"ref":`), signed([]byte(`{"ref":`)), 400, ""},
		{"JSON but not an object", "push", []byte(`[1]`), signed([]byte(`[1]`)), 400, ""},
		{"ping", "ping", []byte(`{"zen":"Keep it logically awesome."}`), signed([]byte(`{"zen":"Keep it logically awesome."}`)), 200, ""},
		{"event not acted on", "star", []byte(`{"action":"created"}`), signed([]byte(`{"action":"created"}`)), 202, store.StatusIgnored},
		{"action not acted on", "pull_request", []byte(`{"action":"assigned"}`), signed([]byte(`{"action":"assigned"}`)), 202, store.StatusIgnored},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			resp := r.post(t, tc.event, "id-1", tc.body, tc.sig)
			if resp.StatusCode != tc.code {
				t.Fatalf("status = %d; want %d", resp.StatusCode, tc.code)
			}
			d, err := r.store.GetDelivery(context.Background(), "id-1")
			switch {
			case tc.stored == "" && !errors.Is(err, store.ErrNotFound):
				t.Fatalf("delivery stored (%+v, %v); want nothing stored", d.Status, err)
			case tc.stored != "" && err != nil:
				t.Fatalf("delivery not stored: %v", err)
			case tc.stored != "" && d.Status != tc.stored:
				t.Fatalf("stored status = %s; want %s", d.Status, tc.stored)
			}
			if tc.stored == store.StatusIgnored && d.Payload != nil {
				t.Errorf("ignored delivery kept its payload (%d bytes)", len(d.Payload))
			}
			if tc.stored == store.StatusPending && (d.Repo != "acme/api" || d.Installation != 7 || d.Action != "closed") {
				t.Errorf("stored %+v; want repo, installation and action indexed", d)
			}
		})
	}
}

func TestIntakeMissingHeaders(t *testing.T) {
	r := newRig(t)
	body := []byte(`{}`)
	if resp := r.post(t, "", "id-1", body, signed(body)); resp.StatusCode != 400 {
		t.Errorf("no event header: status %d; want 400", resp.StatusCode)
	}
	if resp := r.post(t, "push", "", body, signed(body)); resp.StatusCode != 400 {
		t.Errorf("no delivery header: status %d; want 400", resp.StatusCode)
	}
}

func TestIntakeRedeliveryStoredOnce(t *testing.T) {
	r := newRig(t)
	body := []byte(`{"ref":"refs/heads/main"}`)
	if resp := r.post(t, "push", "same", body, signed(body)); resp.StatusCode != 202 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	if resp := r.post(t, "push", "same", body, signed(body)); resp.StatusCode != 200 {
		t.Fatalf("redelivery: %d; want 200 (acknowledged, not queued again)", resp.StatusCode)
	}
	if n, _ := r.store.InboxDepth(context.Background()); n != 1 {
		t.Fatalf("inbox depth %d; want 1", n)
	}
}

func TestIntakeBodyLimit(t *testing.T) {
	r := newRig(t)
	// A valid JSON document one byte over the cap, correctly signed: size
	// alone must reject it.
	big := make([]byte, webhook.MaxBody+1)
	copy(big, `{"x":"`)
	for i := 6; i < len(big)-2; i++ {
		big[i] = 'a'
	}
	copy(big[len(big)-2:], `"}`)
	if resp := r.post(t, "push", "big", big, signed(big)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d; want 413", resp.StatusCode)
	}
	// Same body without Content-Length (chunked): the reader's cap catches it.
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/webhooks/github", io.MultiReader(bytes.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "big2")
	req.Header.Set("X-Hub-Signature-256", signed(big))
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: status = %d; want 413", resp.StatusCode)
	}
	if n, _ := r.store.InboxDepth(context.Background()); n != 0 {
		t.Fatalf("inbox depth %d; want 0", n)
	}
	// Exactly at the cap is fine. A copy: the server answered 413 before
	// reading the whole chunked body, so the client may still be sending
	// big.
	ok := bytes.Clone(big[:webhook.MaxBody])
	copy(ok[len(ok)-2:], `"}`)
	if resp := r.post(t, "push", "max", ok, signed(ok)); resp.StatusCode != 202 {
		t.Fatalf("body at the cap: status = %d; want 202", resp.StatusCode)
	}
}

func TestIntakeFormEncoded(t *testing.T) {
	r := newRig(t)
	body := []byte("payload=" + url.QueryEscape(`{"ref":"refs/heads/main"}`))
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/webhooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "form")
	req.Header.Set("X-Hub-Signature-256", signed(body))
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("status %d; want 202", resp.StatusCode)
	}
	d, err := r.store.GetDelivery(context.Background(), "form")
	if err != nil || string(d.Payload) != `{"ref":"refs/heads/main"}` {
		t.Fatalf("stored %q, %v; want the JSON from the payload field", d.Payload, err)
	}
}

type countingHandler struct {
	mu    sync.Mutex
	seen  map[string]int
	fail  int // fail this many times first
	calls int
}

func (h *countingHandler) Handles() []string { return []string{"push"} }
func (h *countingHandler) Handle(_ context.Context, d store.Delivery) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.calls <= h.fail {
		return errors.New("transient")
	}
	if h.seen == nil {
		h.seen = map[string]int{}
	}
	h.seen[d.ID]++
	return nil
}

func TestWorkerProcessesOnceAndRetries(t *testing.T) {
	r := newRig(t)
	h := &countingHandler{fail: 1}
	disp, err := webhook.NewDispatcher(h)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"ref":"refs/heads/main"}`)
	for range 3 { // one delivery, redelivered twice
		r.post(t, "push", "d1", body, signed(body))
	}
	r.post(t, "push", "d2", body, signed(body))
	w := &webhook.Worker{Inbox: r.store, Dispatch: disp.Dispatch, Owner: "t", Log: slog.New(slog.DiscardHandler), Poll: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	// d1 fails once and is retried after a 2 s backoff.
	deadline := time.Now().Add(10 * time.Second)
	for {
		d1, _ := r.store.GetDelivery(context.Background(), "d1")
		d2, _ := r.store.GetDelivery(context.Background(), "d2")
		if d1.Status == store.StatusDone && d2.Status == store.StatusDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not processed: d1=%s d2=%s", d1.Status, d2.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	h.mu.Lock()
	defer h.mu.Unlock()
	if fmt.Sprint(h.seen) != "map[d1:1 d2:1]" {
		t.Fatalf("handled %v; want each delivery exactly once", h.seen)
	}
}

func TestDispatcherRejectsTwoHandlersForOneKey(t *testing.T) {
	if _, err := webhook.NewDispatcher(&countingHandler{}, &countingHandler{}); err == nil {
		t.Fatal("want error for duplicate registration")
	}
}

// postStream sends body (of length n, -1 for chunked) as a delivery and
// returns the answer; the answer's body is read and closed.
func (r *rig) postStream(t testing.TB, ctx context.Context, id string, body io.Reader, n int64, sig string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.srv.URL+"/webhooks/github", body)
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", id)
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// jsonBody is a push delivery padded to n bytes.
func jsonBody(n int) []byte {
	b := make([]byte, n)
	head, tail := `{"ref":"refs/heads/main","pad":"`, `"}`
	copy(b, head)
	for i := len(head); i < n-len(tail); i++ {
		b[i] = 'x'
	}
	copy(b[n-len(tail):], tail)
	return b
}

// Large bodies take turns: while the only turn is held by a client that
// sends slowly, another large body waits a bounded time and is answered
// 503 with Retry-After, unread; small deliveries are not held up at all.
// Once the turn is free, large deliveries are taken again.
func TestIntakeLargeBodiesTakeTurns(t *testing.T) {
	const wait = 100 * time.Millisecond
	r := newRig(t, func(in *webhook.Intake) { in.LargeBodies, in.LargeBodyWait = 1, wait })

	// The slow client: 20 MB declared, 16 MB sent, then nothing. Its
	// writes complete only as the server reads them, and the server reads
	// only with the turn, so once they complete the turn is held.
	slow := jsonBody(20 << 20)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) }) // before the server closes
	slowDone := make(chan error, 1)
	go func() {
		_, err := r.postStream(t, context.Background(), "slow", pr, int64(len(slow)), signed(slow))
		slowDone <- err
	}()
	if _, err := pw.Write(slow[:16<<20]); err != nil {
		t.Fatal(err)
	}

	big := jsonBody(2 << 20)
	start := time.Now()
	resp, err := r.postStream(t, context.Background(), "big", bytes.NewReader(big), int64(len(big)), signed(big))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("large delivery while the turn is held: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if waited := time.Since(start); waited < wait {
		t.Errorf("answered 503 after %v; want a wait of %v for a turn first", waited, wait)
	}

	small := []byte(`{"ref":"refs/heads/main"}`)
	if resp := r.post(t, "push", "small", small, signed(small)); resp.StatusCode != http.StatusAccepted {
		t.Errorf("small delivery while the turn is held: %d; want 202", resp.StatusCode)
	}

	// The slow client finishes; its turn is free again.
	if _, err := pw.Write(slow[16<<20:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	resp, err = r.postStream(t, context.Background(), "big", bytes.NewReader(big), -1, signed(big))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("large chunked delivery once the turn is free: %d; want 202", resp.StatusCode)
	}
	for _, id := range []string{"slow", "big", "small"} {
		if _, err := r.store.GetDelivery(context.Background(), id); err != nil {
			t.Errorf("delivery %s not stored: %v", id, err)
		}
	}
}

// A request without a well-formed signature is refused before its body is
// read: a client cannot make the service hold a body it will refuse anyway.
func TestIntakeRefusesUnsignedBeforeReadingTheBody(t *testing.T) {
	r := newRig(t)
	for _, sig := range []string{"", "sha256=nothex", "sha1=" + strings.Repeat("0", 40)} {
		pr, pw := io.Pipe() // a body that never ends
		go pw.Write([]byte(`{"ref":`))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// The client's body writer blocks on the pipe, not on ctx.
		stop := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
		resp, err := r.postStream(t, ctx, "unsigned", pr, -1, sig)
		stop()
		cancel()
		pw.Close()
		if err != nil {
			t.Fatalf("signature %q: %v; want 401 without waiting for the body", sig, err)
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("signature %q: status %d; want 401", sig, resp.StatusCode)
		}
	}
}

// A ping is GitHub saying that the App's webhook reaches the service: the
// first thing an operator setting it up looks for, so it is logged at info
// level with the hook and App ids.
func TestIntakePingLoggedAtInfo(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	r := newRig(t, func(in *webhook.Intake) {
		in.Log = slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	body := []byte(`{"zen":"Avoid administrative distraction.","hook_id":4242,"hook":{"type":"App","id":4242,"app_id":77}}`)
	if resp := r.post(t, "ping", "ping-1", body, signed(body)); resp.StatusCode != http.StatusOK {
		t.Fatalf("ping: %d; want 200", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "GitHub App reached us" {
			continue
		}
		found = true
		if rec["level"] != "INFO" || rec["hook_id"] != float64(4242) || rec["app_id"] != float64(77) {
			t.Errorf("ping logged as %s; want INFO with hook_id 4242 and app_id 77", line)
		}
	}
	if !found {
		t.Errorf("no \"GitHub App reached us\" line at info level; logs:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
