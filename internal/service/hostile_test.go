package service_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/service"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
)

// startWith runs the service with the given connection limits on a
// loopback port and returns its address (host:port).
func startWith(t *testing.T, o service.Options) string {
	t.Helper()
	st := servicetest.OpenStore(t, servicetest.DBPath(t))
	ln := servicetest.Listen(t)
	o.Store, o.WebhookSecret, o.Log = st, secret, slog.New(slog.DiscardHandler)
	srv := servicetest.Start(t, ln, o)
	t.Cleanup(func() { srv.Stop(); st.Close() })
	return ln.Addr().String()
}

// closedWithin reads from conn until the server closes it (EOF or reset)
// or limit passes, and returns how long that took and what was read.
func closedWithin(t *testing.T, conn net.Conn, limit time.Duration) (time.Duration, string, bool) {
	t.Helper()
	start := time.Now()
	conn.SetReadDeadline(start.Add(limit))
	var got strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		got.Write(buf[:n])
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return time.Since(start), got.String(), false
		}
		return time.Since(start), got.String(), true // EOF or reset: closed
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// A client that sends its headers and part of its body, then stalls, is
// cut off once the body deadline passes, counted from the end of the
// headers: it cannot hold a connection and its buffer for longer.
func TestStalledBodyIsCutAtTheBodyDeadline(t *testing.T) {
	const bodyTimeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name, framing, partial string
		trickle                bool // keep sending a byte every 20 ms
	}{
		{"declared length", "Content-Length: 2000000\r\n", `{"ref":"refs/heads/main",`, false},
		{"chunked", "Transfer-Encoding: chunked\r\n", "1a\r\n{\"ref\":\"refs/heads/main\",\r\n", false},
		// The deadline is for the whole body, not for each read: a body
		// that trickles in is cut at the same moment.
		{"trickling", "Content-Length: 2000000\r\n", `{"ref":"refs/heads/main",`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startWith(t, service.Options{BodyTimeout: bodyTimeout})
			conn := dial(t, addr)
			sent := time.Now()
			_, err := io.WriteString(conn, "POST /webhooks/github HTTP/1.1\r\nHost: shipbot\r\n"+
				"Content-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: stall\r\n"+
				"X-Hub-Signature-256: sha256="+strings.Repeat("0", 64)+"\r\n"+tc.framing+"\r\n"+tc.partial)
			if err != nil {
				t.Fatal(err)
			}
			if tc.trickle {
				stop := make(chan struct{})
				defer close(stop)
				go func() {
					tick := time.NewTicker(20 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
							if _, err := conn.Write([]byte(" ")); err != nil {
								return
							}
						}
					}
				}()
			}
			_, answer, closed := closedWithin(t, conn, 10*time.Second)
			elapsed := time.Since(sent) // from the end of the headers
			if !closed {
				t.Fatalf("connection still open %v after a stalled body (deadline %v)", elapsed.Round(time.Millisecond), bodyTimeout)
			}
			if elapsed < bodyTimeout {
				t.Errorf("connection closed after %v, before the body deadline of %v", elapsed, bodyTimeout)
			}
			if elapsed > bodyTimeout+3*time.Second {
				t.Errorf("connection closed after %v; want soon after the body deadline of %v", elapsed, bodyTimeout)
			}
			if !strings.HasPrefix(answer, "HTTP/1.1 408 ") {
				t.Errorf("answer %q; want 408 Request Timeout before the close", firstLine(answer))
			}
		})
	}
}

// A keep-alive connection that sends nothing after its last answer is
// closed once the idle timeout passes, so idle connections cannot pile up.
func TestIdleKeepAliveConnectionIsClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	addr := startWith(t, service.Options{IdleTimeout: idle})
	conn := dial(t, addr)
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: shipbot\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("healthz: %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	start := time.Now()
	conn.SetReadDeadline(start.Add(10 * time.Second))
	_, err = br.ReadByte()
	elapsed := time.Since(start)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle keep-alive connection still open after %v (idle timeout %v)", elapsed.Round(time.Millisecond), idle)
	}
	if elapsed < idle-50*time.Millisecond || elapsed > idle+3*time.Second {
		t.Errorf("idle connection closed after %v; want about %v", elapsed, idle)
	}
}

// The production limits are the design's: a body has 30 s after its
// headers, an idle connection 2 minutes.
func TestConnectionLimitDefaults(t *testing.T) {
	st := servicetest.OpenStore(t, servicetest.DBPath(t))
	defer st.Close()
	svc, err := service.New(service.Options{Store: st, WebhookSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	o := svc.Options()
	if o.BodyTimeout != 30*time.Second {
		t.Errorf("default body timeout %v; want 30s", o.BodyTimeout)
	}
	if o.IdleTimeout != 2*time.Minute {
		t.Errorf("default idle timeout %v; want 2m", o.IdleTimeout)
	}
	if o.Retention != 14*24*time.Hour {
		t.Errorf("default retention %v; want 14 days", o.Retention)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// The service prunes processed deliveries' payloads past the retention as
// soon as it starts: a delivery received 2 h before (retention 1 h) loses
// its payload and keeps its row; one received 30 min before keeps both.
func TestServicePrunesPayloadsPastRetention(t *testing.T) {
	ctx := context.Background()
	st := servicetest.OpenStore(t, servicetest.DBPath(t))
	now := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	for id, age := range map[string]time.Duration{"old": 2 * time.Hour, "recent": 30 * time.Minute} {
		d := store.Delivery{ID: id, Event: "push", Status: store.StatusDone, ReceivedAt: now.Add(-age),
			Payload: []byte(`{"ref":"refs/heads/main"}`)}
		if _, err := st.SaveDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	srv := servicetest.Start(t, servicetest.Listen(t), service.Options{
		Store: st, WebhookSecret: secret, Log: slog.New(slog.DiscardHandler),
		Retention: time.Hour, Now: func() time.Time { return now },
	})
	t.Cleanup(func() { srv.Stop(); st.Close() })

	waitFor(t, "the old delivery's payload pruned", func() bool {
		d, err := st.GetDelivery(ctx, "old")
		return err == nil && d.Payload == nil
	})
	d, err := st.GetDelivery(ctx, "recent")
	if err != nil || d.Payload == nil {
		t.Errorf("recent delivery: %v, payload %q; want it kept whole", err, d.Payload)
	}
}
