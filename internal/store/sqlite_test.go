package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/store"
)

func openTemp(t testing.TB) *store.SQLite {
	t.Helper()
	s, err := store.OpenSQLite(filepath.Join(t.TempDir(), "shipbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReadyNeedsMigrations(t *testing.T) {
	ctx := context.Background()
	s, err := store.OpenSQLite(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err == nil {
		t.Fatal("Ready on an unmigrated database: want error")
	}
	applied, err := s.Migrate(ctx)
	if err != nil || len(applied) == 0 {
		t.Fatalf("Migrate = %v, %v; want versions applied", applied, err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("Ready after migrate: %v", err)
	}
	again, err := s.Migrate(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second Migrate = %v, %v; want nothing to apply", again, err)
	}
}

func TestSaveDeliveryIsIdempotentByID(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	d := store.Delivery{ID: "d-1", Event: "push", Payload: []byte(`{}`)}
	if ok, err := s.SaveDelivery(ctx, d); err != nil || !ok {
		t.Fatalf("first save = %v, %v", ok, err)
	}
	d.Payload = []byte(`{"changed":true}`)
	if ok, err := s.SaveDelivery(ctx, d); err != nil || ok {
		t.Fatalf("redelivery save = %v, %v; want false, nil", ok, err)
	}
	got, err := s.GetDelivery(ctx, "d-1")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Payload) != `{}` {
		t.Errorf("payload = %s; a redelivery must not overwrite the original", got.Payload)
	}
	if _, err := s.GetDelivery(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetDelivery(unknown) = %v; want ErrNotFound", err)
	}
}

func TestClaimLeasesAndOrder(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	for i := range 5 {
		st := store.StatusPending
		if i == 2 {
			st = store.StatusIgnored
		}
		if _, err := s.SaveDelivery(ctx, store.Delivery{ID: fmt.Sprint("d", i), Event: "push", Status: st}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.InboxDepth(ctx); n != 4 {
		t.Fatalf("depth = %d; want 4 (ignored deliveries are not pending)", n)
	}
	a, err := s.ClaimDeliveries(ctx, "a", time.Minute, 3, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := idsOf(a); fmt.Sprint(ids) != "[d0 d1 d3]" {
		t.Fatalf("claimed %v; want oldest pending first [d0 d1 d3]", ids)
	}
	// b's lease is already over when the call returns: b stands for a worker
	// that died holding it.
	b, err := s.ClaimDeliveries(ctx, "b", -time.Millisecond, 10, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := idsOf(b); fmt.Sprint(ids) != "[d4]" {
		t.Fatalf("second worker claimed %v; want only the unleased [d4]", ids)
	}
	if err := s.FinishDelivery(ctx, "d0", store.StatusDone, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishDelivery(ctx, "d1", store.StatusPending, "boom", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c, err := s.ClaimDeliveries(ctx, "c", time.Minute, 10, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := idsOf(c); fmt.Sprint(ids) != "[d4]" {
		t.Fatalf("claimed %v; want only d4, whose lease expired (d0 done, d1 backing off, d3 leased)", ids)
	}
	got, _ := s.GetDelivery(ctx, "d1")
	if got.LastError != "boom" || got.Attempts != 1 || got.Status != store.StatusPending {
		t.Errorf("d1 = %+v; want pending, 1 attempt, last error recorded", got)
	}
	if err := s.FinishDelivery(ctx, "missing", store.StatusDone, "", time.Time{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("finish unknown = %v; want ErrNotFound", err)
	}
}

func TestConcurrentClaimsNeverOverlap(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	const n = 200
	for i := range n {
		if _, err := s.SaveDelivery(ctx, store.Delivery{ID: fmt.Sprint("d", i), Event: "push"}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprint("w", w)
			for {
				ds, err := s.ClaimDeliveries(ctx, owner, time.Minute, 7, store.EventFilter{})
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					if prev, dup := seen[d.ID]; dup {
						t.Errorf("%s claimed by %s and %s", d.ID, prev, owner)
					}
					seen[d.ID] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d deliveries; want %d", len(seen), n)
	}
}

// The inbox checkpoints the WAL itself (SQLite's automatic checkpoint is
// off), so a steady stream of deliveries keeps reusing a small WAL instead
// of growing it, and everything stays readable, also after reopening.
func TestInboxKeepsTheWALSmall(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shipbot.db")
	s, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"filler":"` + strings.Repeat("x", 24<<10) + `"}`)
	const n = 300 // about 7.5 MB of payloads
	for i := range n {
		if _, err := s.SaveDelivery(ctx, store.Delivery{ID: fmt.Sprint("d", i), Event: "push", Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 4<<20 {
		t.Errorf("WAL is %d bytes after %d deliveries of %d bytes; want it checkpointed and reused (< 4 MB)", fi.Size(), n, len(payload))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range []string{"d0", fmt.Sprint("d", n/2), fmt.Sprint("d", n-1)} {
		d, err := s.GetDelivery(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.Payload, payload) {
			t.Fatalf("%s: payload of %d bytes; want the %d saved", id, len(d.Payload), len(payload))
		}
	}
	if depth, err := s.InboxDepth(ctx); err != nil || depth != n {
		t.Fatalf("InboxDepth = %d, %v; want %d", depth, err, n)
	}
}

func idsOf(ds []store.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// BenchmarkRawInsert is the floor the webhook intake benchmark is compared
// against: the same row, the same durability mode, no HTTP.
func BenchmarkRawInsert(b *testing.B) {
	ctx := context.Background()
	s := openTemp(b)
	payload := make([]byte, 8<<10)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.SaveDelivery(ctx, store.Delivery{ID: fmt.Sprint("d", i), Event: "pull_request", Action: "closed", Repo: "acme/api", Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
}

// One process per SQLite file: a second open fails naming the file; once
// the first is gone, the next takes every lease and claimed delivery over
// at once instead of waiting out their TTLs.
func TestSQLiteOneProcessPerFileAndTakeover(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shipbot.db")
	first, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if second, err := store.OpenSQLite(path); err == nil {
		second.Close()
		t.Fatal("a second open of a file in use succeeded")
	} else if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "in use by another shipbot process") {
		t.Errorf("second open: %v; want it to name the file and say it is in use", err)
	}
	// The first process holds a pipeline for an hour and has a delivery
	// claimed for an hour, then dies (its handle closed without giving
	// either back).
	if ok, err := first.AcquireLease(ctx, "pipeline:acme/api:api", "dead", time.Hour); err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	if _, err := first.SaveDelivery(ctx, store.Delivery{ID: "d1", Event: "push", Repo: "acme/api", Payload: []byte(`{}`), ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, err := first.ClaimDeliveries(ctx, "dead", time.Hour, 10, store.EventFilter{}); err != nil || len(got) != 1 {
		t.Fatalf("claim: %d %v", len(got), err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	next, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatalf("open after the first process is gone: %v", err)
	}
	defer next.Close()
	if _, err := next.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := next.AcquireLease(ctx, "pipeline:acme/api:api", "next", time.Minute); err != nil || !ok {
		t.Errorf("the dead process's lease was not taken over at once: %v %v", ok, err)
	}
	if got, err := next.ClaimDeliveries(ctx, "next", time.Minute, 10, store.EventFilter{}); err != nil || len(got) != 1 {
		t.Errorf("the dead process's claimed delivery was not taken over at once: %d %v", len(got), err)
	}
}
