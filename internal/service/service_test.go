package service_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/service"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/webhook"
)

var secret = []byte("topsecret")

type recorder struct {
	mu   sync.Mutex
	seen []string
	// block, when set, holds Handle until closed; started, when set, is
	// closed when Handle is first entered.
	block   chan struct{}
	started chan struct{}
	once    sync.Once
}

func (r *recorder) Handles() []string { return []string{"push"} }
func (r *recorder) Handle(ctx context.Context, d store.Delivery) error {
	if r.started != nil {
		r.once.Do(func() { close(r.started) })
	}
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, d.ID)
	return nil
}
func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// start runs the service with the one handler h on a loopback port.
func start(t *testing.T, st store.Store, h webhook.Handler) *servicetest.Server {
	t.Helper()
	return servicetest.Start(t, servicetest.Listen(t), service.Options{
		Store: st, WebhookSecret: secret, Handlers: []webhook.Handler{h},
		Log: slog.New(slog.DiscardHandler), WorkerPoll: 20 * time.Millisecond,
	})
}

func deliver(t *testing.T, url, id string) int {
	t.Helper()
	body := []byte(`{"ref":"refs/heads/main","repository":{"full_name":"acme/api"}}`)
	req, _ := http.NewRequest(http.MethodPost, url+"/webhooks/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", webhook.SignatureHeader(secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls cond every 10ms until it holds or 10s pass.
var waitFor = servicetest.Wait{Limit: 10 * time.Second, Interval: 10 * time.Millisecond}.Eventually

// A delivery acknowledged by one process that stopped before processing it
// is processed by the next process on the same database.
func TestAckedDeliverySurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shipbot.db")
	st := servicetest.OpenStore(t, path)

	// First process: the handler never gets to run (it blocks until the
	// process stops, and its result is thrown away with the process).
	first := &recorder{block: make(chan struct{})}
	svc, err := service.New(service.Options{Store: st, WebhookSecret: secret, Handlers: []webhook.Handler{first}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// Only the HTTP side runs: the worker is not started, as if the process
	// died right after the acknowledgement.
	srv := &http.Server{Handler: svc.Handler()}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	if code := deliver(t, "http://"+ln.Addr().String(), "d-1"); code != http.StatusAccepted {
		t.Fatalf("status %d; want 202", code)
	}
	srv.Close()
	st.Close()

	// Second process on the same file.
	st2 := servicetest.OpenStore(t, path)
	defer st2.Close()
	second := &recorder{}
	r := start(t, st2, second)
	waitFor(t, "the pending delivery is processed", func() bool { return len(second.got()) == 1 })
	r.Stop()
	if got := second.got(); len(got) != 1 || got[0] != "d-1" {
		t.Fatalf("processed %v; want [d-1]", got)
	}
	d, err := st2.GetDelivery(context.Background(), "d-1")
	if err != nil || d.Status != store.StatusDone {
		t.Fatalf("delivery = %+v, %v; want done", d.Status, err)
	}
}

// Shutdown lets the delivery being processed finish instead of abandoning
// it.
func TestShutdownFinishesInFlightDelivery(t *testing.T) {
	st := servicetest.OpenStore(t, filepath.Join(t.TempDir(), "shipbot.db"))
	defer st.Close()
	h := &recorder{block: make(chan struct{}), started: make(chan struct{})}
	r := start(t, st, h)
	deliver(t, r.URL, "d-1")
	// The handler itself says it runs: the worker counts an attempt when
	// it claims a delivery, a moment before the handler is entered, and a
	// shutdown in that moment rightly puts the delivery back unhandled.
	select {
	case <-h.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never started")
	}
	stopped := make(chan struct{})
	go func() { r.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("service stopped while a delivery was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(h.block)
	<-stopped
	d, _ := st.GetDelivery(context.Background(), "d-1")
	if d.Status != store.StatusDone {
		t.Fatalf("delivery status %s after shutdown; want done", d.Status)
	}
}

func TestProbesAndMetrics(t *testing.T) {
	st := servicetest.OpenStore(t, filepath.Join(t.TempDir(), "shipbot.db"))
	defer st.Close()
	r := start(t, st, &recorder{})
	deliver(t, r.URL, "d-1")
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/nope": 404} {
		resp, err := http.Get(r.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d; want %d", path, resp.StatusCode, want)
		}
		if path == "/metrics" {
			for _, m := range []string{`shipbot_webhook_deliveries_total{event="push",outcome="accepted"}`, "shipbot_webhook_intake_seconds_bucket", "shipbot_inbox_depth"} {
				if !strings.Contains(string(body), m) {
					t.Errorf("/metrics lacks %s", m)
				}
			}
		}
	}
}

func TestReadyzFailsWithoutSchema(t *testing.T) {
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "fresh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := start(t, st, &recorder{})
	resp, err := http.Get(r.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "bot migrate") {
		t.Fatalf("readyz on unmigrated db = %d %s; want 503 naming `bot migrate`", resp.StatusCode, body)
	}
}
