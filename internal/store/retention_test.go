package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/store"
)

// Pruning drops the payloads of processed deliveries received before the
// cut-off and keeps their rows; pending deliveries and recent ones keep
// their payloads. It works in batches until nothing is left to prune.
func TestPruneDeliveryPayloads(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	now := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	old, recent := now.Add(-20*24*time.Hour), now.Add(-24*time.Hour)
	payload := []byte(`{"ref":"refs/heads/main"}`)
	for _, d := range []store.Delivery{
		{ID: "old-done-1", Status: store.StatusDone, ReceivedAt: old},
		{ID: "old-done-2", Status: store.StatusDone, ReceivedAt: old.Add(time.Minute)},
		{ID: "old-done-3", Status: store.StatusDone, ReceivedAt: old.Add(2 * time.Minute)},
		{ID: "old-failed", Status: store.StatusFailed, ReceivedAt: old},
		{ID: "old-ignored", Status: store.StatusIgnored, ReceivedAt: old},
		{ID: "old-pending", Status: store.StatusPending, ReceivedAt: old}, // not processed yet: kept
		{ID: "recent-done", Status: store.StatusDone, ReceivedAt: recent},
	} {
		d.Event, d.Repo, d.Payload = "push", "acme/api", payload
		if _, err := s.SaveDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}

	n, err := s.PruneDeliveryPayloads(ctx, now.Add(-14*24*time.Hour), 2)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("pruned %d payloads; want 5", n)
	}
	for id, kept := range map[string]bool{
		"old-done-1": false, "old-done-2": false, "old-done-3": false, "old-failed": false, "old-ignored": false,
		"old-pending": true, "recent-done": true,
	} {
		d, err := s.GetDelivery(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: row deleted; want it kept", id)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Payload != nil; got != kept {
			t.Errorf("%s: payload kept = %v; want %v", id, got, kept)
		}
		if d.Repo != "acme/api" || d.Event != "push" {
			t.Errorf("%s: row now %+v; want its other columns untouched", id, d)
		}
	}
	if n, err := s.PruneDeliveryPayloads(ctx, now.Add(-14*24*time.Hour), 2); err != nil || n != 0 {
		t.Errorf("second pruning: %d, %v; want nothing left to prune", n, err)
	}
}
