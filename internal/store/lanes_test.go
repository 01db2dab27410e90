package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/store"
)

func TestClaimDeliveriesByEvent(t *testing.T) {
	// Two lanes drain disjoint parts of the inbox: commands never wait for
	// merges, nor merges for commands.
	ctx := context.Background()
	s := openTemp(t)
	for i, ev := range []string{"issue_comment", "issue_comment", "pull_request", "issue_comment", "push", "check_suite"} {
		if _, err := s.SaveDelivery(ctx, store.Delivery{ID: fmt.Sprint("d", i), Event: ev, Status: store.StatusPending}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		filter store.EventFilter
		want   string
	}{
		{"only commands", store.EventFilter{Only: []string{"issue_comment"}}, "[d0 d1 d3]"},
		{"all but commands", store.EventFilter{Except: []string{"issue_comment"}}, "[d2 d4 d5]"},
		{"only merges, not push", store.EventFilter{Only: []string{"pull_request", "push"}, Except: []string{"push"}}, "[d2]"},
		{"every event", store.EventFilter{}, "[d0 d1 d2 d3 d4 d5]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A negative lease ends at once, so each case sees the whole inbox.
			ds, err := s.ClaimDeliveries(ctx, "w", -time.Millisecond, 10, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(idsOf(ds)); got != tc.want {
				t.Errorf("claimed %s; want %s", got, tc.want)
			}
		})
	}
}

func TestFailedDeliveries(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	for i, ev := range []string{"pull_request", "push", "issue_comment", "push"} {
		if _, err := s.SaveDelivery(ctx, store.Delivery{ID: fmt.Sprint("d", i), Event: ev, Action: "closed", Repo: "acme/api", Status: store.StatusPending}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ClaimDeliveries(ctx, "w", time.Minute, 10, store.EventFilter{}); err != nil {
		t.Fatal(err)
	}
	finish := func(id, status, msg string) {
		t.Helper()
		if err := s.FinishDelivery(ctx, id, status, msg, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	finish("d0", store.StatusFailed, "GET /repos/acme/api/pulls/7: dial tcp: connection refused")
	finish("d1", store.StatusDone, "")
	finish("d3", store.StatusFailed, "no handler for push.")
	if err := s.FinishDelivery(ctx, "d2", store.StatusPending, "try again", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := s.FailedDeliveries(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "d3" || got[1].ID != "d0" {
		t.Fatalf("failed deliveries %+v; want d3 then d0 (latest failure first), not done or pending ones", got)
	}
	d := got[1]
	if d.Event != "pull_request" || d.Action != "closed" || d.Repo != "acme/api" || d.Attempts != 1 ||
		d.LastError != "GET /repos/acme/api/pulls/7: dial tcp: connection refused" || d.ReceivedAt.IsZero() || d.FailedAt.Before(d.ReceivedAt) {
		t.Errorf("failed delivery %+v; want its event, repository, attempts, last error and times", d)
	}
	if got, _ := s.FailedDeliveries(ctx, 1); len(got) != 1 || got[0].ID != "d3" {
		t.Errorf("limit 1: %+v; want only d3", got)
	}
}
