package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shipbot/shipbot/internal/store"
)

var inboxCases = []testCase{
	{"SaveDelivery_keeps_fields", saveDeliveryKeepsFields},
	{"SaveDelivery_duplicate", saveDeliveryDuplicate},
	{"SaveDelivery_concurrent_duplicates_one_insert", saveDeliveryConcurrentDuplicates},
	{"SaveDelivery_ignored_is_not_queued", saveDeliveryIgnored},
	{"GetDelivery_unknown", getDeliveryUnknown},
	{"ClaimDeliveries_oldest_first_up_to_limit", claimOldestFirst},
	{"ClaimDeliveries_lease_held", claimLeaseHeld},
	{"ClaimDeliveries_lease_expiry_takeover", claimLeaseExpiry},
	{"ClaimDeliveries_event_filter", claimEventFilter},
	{"RenewClaims_keeps_claims_and_names_lost_ones", renewClaims},
	{"ClaimDeliveries_concurrent_never_shared", claimConcurrent},
	{"FinishDelivery_done_and_failed_are_final", finishDeliveryFinal},
	{"FinishDelivery_pending_retries_no_earlier_than_retryAt", finishDeliveryRetry},
	{"FinishDelivery_unknown", finishDeliveryUnknown},
	{"InboxDepth_counts_unprocessed", inboxDepth},
}

func (e *env) saveDelivery(d store.Delivery) bool {
	e.Helper()
	ok, err := e.s.SaveDelivery(e.ctx, d)
	e.must(err)
	return ok
}

// pendingDeliveries saves deliveries with the ids given, pending, one
// after the other.
func (e *env) pendingDeliveries(ids ...string) {
	e.Helper()
	for _, id := range ids {
		if !e.saveDelivery(store.Delivery{ID: id, Event: "push", Repo: repo, Payload: []byte(`{"id":"` + id + `"}`),
			Status: store.StatusPending, ReceivedAt: time.Now()}) {
			e.Fatalf("delivery %s existed already", id)
		}
	}
}

func (e *env) claim(owner string, lease time.Duration, limit int, f store.EventFilter) []store.Delivery {
	e.Helper()
	ds, err := e.s.ClaimDeliveries(e.ctx, owner, lease, limit, f)
	e.must(err)
	return ds
}

func (e *env) delivery(id string) store.Delivery {
	e.Helper()
	d, err := e.s.GetDelivery(e.ctx, id)
	e.must(err)
	return d
}

func (e *env) depth() int {
	e.Helper()
	n, err := e.s.InboxDepth(e.ctx)
	e.must(err)
	return n
}

func deliveryIDs(ds []store.Delivery) string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return fmt.Sprint(ids)
}

func saveDeliveryKeepsFields(e *env) {
	at := base.Add(123 * time.Millisecond)
	d := store.Delivery{ID: "d-1", Event: "pull_request", Action: "closed", Repo: repo, Installation: 42,
		Payload: []byte(`{"number":7}`), Status: store.StatusPending, ReceivedAt: at}
	if !e.saveDelivery(d) {
		e.Fatal("a new delivery reported as a redelivery")
	}
	got := e.delivery("d-1")
	if got.ID != d.ID || got.Event != d.Event || got.Action != d.Action || got.Repo != d.Repo || got.Installation != d.Installation ||
		!bytes.Equal(got.Payload, d.Payload) || got.Status != store.StatusPending || got.Attempts != 0 || got.LastError != "" ||
		!sameTime(got.ReceivedAt, at) {
		e.Errorf("stored delivery %+v; want %+v, no attempts, no error", got, d)
	}
	e.saveDelivery(store.Delivery{ID: "d-2", Event: "push", Status: store.StatusPending, ReceivedAt: at})
	if later := e.delivery("d-2"); later.Seq <= got.Seq {
		e.Errorf("Seq of a later delivery %d; want more than the earlier one's %d", later.Seq, got.Seq)
	}
}

func saveDeliveryDuplicate(e *env) {
	d := store.Delivery{ID: "d-1", Event: "push", Repo: repo, Payload: []byte(`{"v":1}`), Status: store.StatusPending, ReceivedAt: base}
	if !e.saveDelivery(d) {
		e.Fatal("first save reported a redelivery")
	}
	again := d
	again.Event, again.Payload, again.Status, again.ReceivedAt = "pull_request", []byte(`{"v":2}`), store.StatusIgnored, base.Add(time.Hour)
	ok, err := e.s.SaveDelivery(e.ctx, again)
	if err != nil || ok {
		e.Fatalf("redelivery: SaveDelivery = %v, %v; want false, nil", ok, err)
	}
	got := e.delivery("d-1")
	if string(got.Payload) != `{"v":1}` || got.Event != "push" || got.Status != store.StatusPending || !sameTime(got.ReceivedAt, base) {
		e.Errorf("after a redelivery the delivery is %+v; want the original kept", got)
	}
	if n := e.depth(); n != 1 {
		e.Errorf("InboxDepth = %d; want 1", n)
	}
}

func saveDeliveryConcurrentDuplicates(e *env) {
	const n = 8
	var mu sync.Mutex
	var winners []int
	parallel(n, func(i int) {
		ok, err := e.s.SaveDelivery(e.ctx, store.Delivery{ID: "d-1", Event: "push", Payload: []byte(fmt.Sprint(i)),
			Status: store.StatusPending, ReceivedAt: time.Now()})
		if err != nil {
			e.Error(err)
		}
		if ok {
			mu.Lock()
			winners = append(winners, i)
			mu.Unlock()
		}
	})
	if len(winners) != 1 {
		e.Fatalf("%d saves of one delivery reported it new; want exactly 1", len(winners))
	}
	if got := string(e.delivery("d-1").Payload); got != fmt.Sprint(winners[0]) {
		e.Errorf("stored payload %q; want the one save that reported it new (%d)", got, winners[0])
	}
	if n := e.depth(); n != 1 {
		e.Errorf("InboxDepth = %d; want 1", n)
	}
}

func saveDeliveryIgnored(e *env) {
	if !e.saveDelivery(store.Delivery{ID: "i-1", Event: "star", Repo: repo, Status: store.StatusIgnored, ReceivedAt: time.Now()}) {
		e.Fatal("new ignored delivery reported as a redelivery")
	}
	if got := e.delivery("i-1"); got.Status != store.StatusIgnored || got.Event != "star" {
		e.Errorf("ignored delivery stored as %+v", got)
	}
	if n := e.depth(); n != 0 {
		e.Errorf("InboxDepth = %d; want 0: an ignored delivery is not work", n)
	}
	if ds := e.claim("w", longTTL, 10, store.EventFilter{}); len(ds) != 0 {
		e.Errorf("claimed %s; an ignored delivery is never processed", deliveryIDs(ds))
	}
}

func getDeliveryUnknown(e *env) {
	if _, err := e.s.GetDelivery(e.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("GetDelivery(unknown) = %v; want ErrNotFound", err)
	}
}

func claimOldestFirst(e *env) {
	e.pendingDeliveries("d0", "d1")
	e.saveDelivery(store.Delivery{ID: "d2", Event: "push", Status: store.StatusIgnored, ReceivedAt: time.Now()})
	e.pendingDeliveries("d3", "d4", "d5")
	a := e.claim("a", longTTL, 3, store.EventFilter{})
	if got := deliveryIDs(a); got != "[d0 d1 d3]" {
		e.Fatalf("claimed %s; want the 3 oldest pending [d0 d1 d3]", got)
	}
	for _, d := range a {
		if d.Attempts != 1 || d.Status != store.StatusPending || string(d.Payload) != `{"id":"`+d.ID+`"}` || d.Event != "push" || d.Repo != repo {
			e.Errorf("claimed %+v; want its payload and fields, attempt 1", d)
		}
	}
	if got := deliveryIDs(e.claim("b", longTTL, 10, store.EventFilter{})); got != "[d4 d5]" {
		e.Errorf("second worker claimed %s; want the rest [d4 d5]", got)
	}
	if got := e.claim("c", longTTL, 10, store.EventFilter{}); len(got) != 0 {
		e.Errorf("third worker claimed %s; want nothing left", deliveryIDs(got))
	}
}

func claimLeaseHeld(e *env) {
	e.pendingDeliveries("d0")
	if got := deliveryIDs(e.claim("a", longTTL, 10, store.EventFilter{})); got != "[d0]" {
		e.Fatalf("claimed %s; want [d0]", got)
	}
	if got := e.claim("b", longTTL, 10, store.EventFilter{}); len(got) != 0 {
		e.Errorf("b claimed %s while a's lease holds", deliveryIDs(got))
	}
	if got := e.claim("a", longTTL, 10, store.EventFilter{}); len(got) != 0 {
		e.Errorf("a claimed %s again while its own lease holds", deliveryIDs(got))
	}
}

func claimLeaseExpiry(e *env) {
	e.pendingDeliveries("d0")
	if got := deliveryIDs(e.claim("a", shortTTL, 10, store.EventFilter{})); got != "[d0]" {
		e.Fatalf("claimed %s; want [d0]", got)
	}
	expire() // a died holding d0
	b := e.claim("b", longTTL, 10, store.EventFilter{})
	if deliveryIDs(b) != "[d0]" {
		e.Fatalf("after a's lease expired b claimed %s; want [d0]", deliveryIDs(b))
	}
	if b[0].Attempts != 2 {
		e.Errorf("attempts = %d after a second claim; want 2", b[0].Attempts)
	}
	if got := e.claim("a", longTTL, 10, store.EventFilter{}); len(got) != 0 {
		e.Errorf("a claimed %s back while b's lease holds", deliveryIDs(got))
	}
}

// A worker that renews its claims keeps them past their first expiry; a
// claim it let lapse, and one it finished, come back as lost; another
// owner cannot renew what it does not hold.
func renewClaims(e *env) {
	e.pendingDeliveries("d0", "d1", "d2", "d3")
	if got := deliveryIDs(e.claim("a", shortTTL, 3, store.EventFilter{})); got != "[d0 d1 d2]" {
		e.Fatalf("claimed %s; want [d0 d1 d2]", got)
	}
	e.must(e.s.FinishDelivery(e.ctx, "d2", store.StatusDone, "", time.Time{}))
	lost, err := e.s.RenewClaims(e.ctx, "a", []string{"d0", "d2"}, longTTL)
	e.must(err)
	if fmt.Sprint(lost) != "[d2]" {
		e.Errorf("renewing d0 and the finished d2 lost %v; want [d2]", lost)
	}
	if lost, err := e.s.RenewClaims(e.ctx, "b", []string{"d1"}, longTTL); err != nil || fmt.Sprint(lost) != "[d1]" {
		e.Errorf("b renewing a's claim on d1: lost %v, err %v; want [d1]", lost, err)
	}
	expire() // d0 renewed for long; d1 not renewed by a
	if got := deliveryIDs(e.claim("b", longTTL, 10, store.EventFilter{})); got != "[d1 d3]" {
		e.Errorf("after the short claims expired b claimed %s; want [d1 d3] (d0's renewed claim holds)", got)
	}
	if lost, err := e.s.RenewClaims(e.ctx, "a", []string{"d0", "d1"}, longTTL); err != nil || fmt.Sprint(lost) != "[d1]" {
		e.Errorf("a renewing d0 and d1 (taken by b): lost %v, err %v; want [d1]", lost, err)
	}
	if lost, err := e.s.RenewClaims(e.ctx, "a", nil, longTTL); err != nil || len(lost) != 0 {
		e.Errorf("renewing nothing: lost %v, err %v", lost, err)
	}
}

func claimEventFilter(e *env) {
	for i, ev := range []string{"issue_comment", "issue_comment", "pull_request", "issue_comment", "push", "check_suite"} {
		e.saveDelivery(store.Delivery{ID: fmt.Sprint("d", i), Event: ev, Status: store.StatusPending, ReceivedAt: time.Now()})
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
		ds := e.claim("w", longTTL, 10, tc.filter)
		if got := deliveryIDs(ds); got != tc.want {
			e.Errorf("%s: claimed %s; want %s", tc.name, got, tc.want)
		}
		// Hand them back, so the next case sees the whole inbox.
		for _, d := range ds {
			e.must(e.s.FinishDelivery(e.ctx, d.ID, store.StatusPending, "", time.Now().Add(-time.Second)))
		}
	}
}

func claimConcurrent(e *env) {
	const n, workers = 60, 4
	for i := range n {
		e.saveDelivery(store.Delivery{ID: fmt.Sprint("d", i), Event: "push", Status: store.StatusPending, ReceivedAt: time.Now()})
	}
	var mu sync.Mutex
	owner := map[string]int{}
	handed := 0
	parallel(workers, func(w int) {
		for {
			ds, err := e.s.ClaimDeliveries(e.ctx, fmt.Sprint("w", w), longTTL, 7, store.EventFilter{})
			if err != nil {
				e.Error(err)
				return
			}
			if len(ds) == 0 {
				return
			}
			mu.Lock()
			handed += len(ds)
			for _, d := range ds {
				if prev, dup := owner[d.ID]; dup {
					e.Errorf("%s handed to w%d and w%d", d.ID, prev, w)
				}
				owner[d.ID] = w
			}
			stop := handed > n // handed out more than there is: stop looping
			mu.Unlock()
			if stop {
				return
			}
		}
	})
	if len(owner) != n {
		e.Errorf("%d deliveries claimed; want all %d", len(owner), n)
	}
}

func finishDeliveryFinal(e *env) {
	e.pendingDeliveries("d0", "d1", "d2")
	e.claim("a", shortTTL, 10, store.EventFilter{})
	e.must(e.s.FinishDelivery(e.ctx, "d0", store.StatusDone, "", time.Time{}))
	e.must(e.s.FinishDelivery(e.ctx, "d1", store.StatusFailed, "boom", time.Time{}))
	if got := e.delivery("d0"); got.Status != store.StatusDone {
		e.Errorf("d0 = %+v; want done", got)
	}
	if got := e.delivery("d1"); got.Status != store.StatusFailed || got.LastError != "boom" || got.Attempts != 1 {
		e.Errorf("d1 = %+v; want failed with its error, 1 attempt", got)
	}
	expire() // the claims' leases are over; a finished delivery stays finished
	if got := deliveryIDs(e.claim("b", longTTL, 10, store.EventFilter{})); got != "[d2]" {
		e.Errorf("claimed %s after the leases expired; want only the unfinished [d2]", got)
	}
	if n := e.depth(); n != 1 {
		e.Errorf("InboxDepth = %d; want 1 (d2)", n)
	}
}

func finishDeliveryRetry(e *env) {
	e.pendingDeliveries("later", "soon", "now")
	e.claim("a", longTTL, 10, store.EventFilter{})
	e.must(e.s.FinishDelivery(e.ctx, "later", store.StatusPending, "try later", time.Now().Add(time.Hour)))
	soonAt := time.Now().Add(shortTTL)
	e.must(e.s.FinishDelivery(e.ctx, "soon", store.StatusPending, "try soon", soonAt))
	e.must(e.s.FinishDelivery(e.ctx, "now", store.StatusPending, "try now", time.Now().Add(-time.Second)))

	if got := e.delivery("later"); got.Status != store.StatusPending || got.LastError != "try later" || got.Attempts != 1 {
		e.Errorf("later = %+v; want pending, its error kept, 1 attempt", got)
	}
	if n := e.depth(); n != 3 {
		e.Errorf("InboxDepth = %d; want 3: all wait for another attempt", n)
	}
	// a's claims are released: b takes what is due although a's lease
	// would still hold.
	asked := time.Now()
	got := map[string]bool{}
	for _, d := range e.claim("b", longTTL, 10, store.EventFilter{}) {
		got[d.ID] = true
	}
	if !got["now"] {
		e.Errorf("b did not get the released delivery whose retry time has come")
	}
	if got["later"] {
		e.Errorf("b got a delivery an hour before its retry time")
	}
	if got["soon"] && asked.Before(soonAt) {
		e.Errorf("b got a delivery before its retry time")
	}
	if !got["soon"] {
		time.Sleep(time.Until(soonAt) + 10*time.Millisecond)
		ds := e.claim("c", longTTL, 10, store.EventFilter{})
		if deliveryIDs(ds) != "[soon]" {
			e.Fatalf("after its retry time, claimed %s; want [soon]", deliveryIDs(ds))
		}
		if ds[0].Attempts != 2 || ds[0].LastError != "try soon" {
			e.Errorf("retried delivery %+v; want attempt 2, the last error kept", ds[0])
		}
	}
}

func finishDeliveryUnknown(e *env) {
	if err := e.s.FinishDelivery(e.ctx, "nope", store.StatusDone, "", time.Time{}); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("FinishDelivery(unknown) = %v; want ErrNotFound", err)
	}
}

func inboxDepth(e *env) {
	if n := e.depth(); n != 0 {
		e.Fatalf("InboxDepth of an empty inbox = %d", n)
	}
	e.pendingDeliveries("p1", "p2", "p3")
	e.saveDelivery(store.Delivery{ID: "i1", Event: "star", Status: store.StatusIgnored, ReceivedAt: time.Now()})
	if n := e.depth(); n != 3 {
		e.Errorf("InboxDepth = %d; want 3 pending (ignored ones are not work)", n)
	}
	e.claim("a", longTTL, 2, store.EventFilter{})
	if n := e.depth(); n != 3 {
		e.Errorf("InboxDepth = %d with two claimed; want 3: claimed is not processed yet", n)
	}
	e.must(e.s.FinishDelivery(e.ctx, "p1", store.StatusDone, "", time.Time{}))
	e.must(e.s.FinishDelivery(e.ctx, "p2", store.StatusFailed, "x", time.Time{}))
	if n := e.depth(); n != 1 {
		e.Errorf("InboxDepth = %d; want 1 (done and failed are processed)", n)
	}
}
