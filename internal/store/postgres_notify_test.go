package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/store/pgtest"
)

// openReplicas opens n stores on one fresh migrated database, as n
// replicas would.
func openReplicas(t *testing.T, n int) ([]*store.Postgres, string) {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDatabase(t, "")
	var out []*store.Postgres
	for i := range n {
		s, err := store.OpenPostgres(ctx, db.URL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if i == 0 {
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, s)
	}
	return out, db.URL
}

func receive(t *testing.T, ch <-chan string, within time.Duration) (string, bool) {
	t.Helper()
	select {
	case p, ok := <-ch:
		if !ok {
			t.Fatal("listen channel closed")
		}
		return p, true
	case <-time.After(within):
		return "", false
	}
}

// A notification one replica sends right after the others' Listen
// returned reaches their listeners (and its own) within a second; a
// listener hears only its channel.
func TestPostgresNotifyAcrossReplicas(t *testing.T) {
	ctx := t.Context()
	r, _ := openReplicas(t, 2)
	a, b := r[0], r[1]
	wakeA, err := a.Listen(ctx, "shipbot_wake")
	if err != nil {
		t.Fatal(err)
	}
	otherA, err := a.Listen(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	wakeB, err := b.Listen(ctx, "shipbot_wake")
	if err != nil {
		t.Fatal(err)
	}
	// Listen returns once the connection LISTENs: the first notification
	// after it is heard, with no warm-up.
	start := time.Now()
	if err := b.Notify(ctx, "shipbot_wake", "acme/api:api"); err != nil {
		t.Fatal(err)
	}
	if p, ok := receive(t, wakeA, time.Second); !ok || p != "acme/api:api" {
		t.Fatal("replica A did not get the payload within 1 s")
	}
	t.Logf("notification reached the other replica in %v", time.Since(start))
	if p, ok := receive(t, wakeB, time.Second); !ok || p != "acme/api:api" {
		t.Error("the sender's own listener did not get the payload")
	}
	if p, ok := receive(t, otherA, 100*time.Millisecond); ok {
		t.Errorf("a listener of another channel got %q", p)
	}
}

// A listener whose connection breaks is told it may have missed something
// (""), and hears notifications again.
func TestPostgresListenSurvivesLostConnection(t *testing.T) {
	ctx := t.Context()
	r, url := openReplicas(t, 2)
	a, b := r[0], r[1]
	wake, err := a.Listen(ctx, "shipbot_wake")
	if err != nil {
		t.Fatal(err)
	}
	waitHeard(t, b, wake)
	// Kill A's listening connection, as a failover or a proxy would.
	killListeners(t, url)
	if !heard(t, wake, "", 10*time.Second) {
		t.Fatal("after its connection broke the listener was not told to look at everything (\"\") within 10 s")
	}
	waitHeard(t, b, wake)
}

// Listen's channel closes when its context ends, and when the store closes.
func TestPostgresListenCloses(t *testing.T) {
	r, _ := openReplicas(t, 1)
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := r[0].Listen(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if !closedWithin(ch, 5*time.Second) {
		t.Error("the channel stayed open after its context ended")
	}
	ch, err = r[0].Listen(t.Context(), "c")
	if err != nil {
		t.Fatal(err)
	}
	r[0].Close()
	if !closedWithin(ch, 5*time.Second) {
		t.Error("the channel stayed open after the store closed")
	}
	if _, err := r[0].Listen(t.Context(), "c"); err == nil {
		t.Error("Listen on a closed store succeeded")
	}
}

// heard reports whether payload arrives on ch within d.
func heard(t *testing.T, ch <-chan string, payload string, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		p, ok := receive(t, ch, time.Until(deadline))
		if !ok {
			return false
		}
		if p == payload {
			return true
		}
	}
}

func closedWithin(ch <-chan string, d time.Duration) bool {
	timeout := time.After(d)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

func drain(ch <-chan string) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// waitHeard notifies from b until wake hears it.
func waitHeard(t *testing.T, b *store.Postgres, wake <-chan string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := b.Notify(t.Context(), "shipbot_wake", "ping"); err != nil {
			t.Fatal(err)
		}
		if p, ok := receive(t, wake, 100*time.Millisecond); ok && p == "ping" {
			drain(wake)
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the listener heard nothing within 10 s")
		}
	}
}

// killListeners ends the server processes of the database's LISTENing
// connections.
func killListeners(t *testing.T, url string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'listen%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("killed %d listening connections; want 1", n)
	}
}
