package preview

import (
	"testing"
	"time"
)

// plan spaces one head's refreshes every few seconds and loses none: a
// delivery too soon after a refresh is deferred, the deliveries received
// before the deferred refresh are left to it, and a refresh that failed
// is not taken for done.
func TestPlanSpacesRefreshesPerHead(t *testing.T) {
	const every = 5 * time.Second
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var r refreshes
	steps := []struct {
		what          string
		key, id       string
		received, now float64
		refresh       bool
		later         float64 // -1: none
	}{
		{"the first delivery for a head refreshes", "a@1", "d1", 0, 0.1, true, -1},
		{"one received before that refresh started is covered by it", "a@1", "d2", 0.05, 0.2, false, -1},
		{"one received after, too soon: deferred to every after the refresh", "a@1", "d3", 0.3, 0.4, false, 5.1},
		{"another head is on its own", "a@2", "d4", 0.3, 0.5, true, -1},
		{"one received before the deferred refresh is left to it", "a@1", "d5", 2, 2.1, false, -1},
		{"the deferred delivery refreshes when it comes back", "a@1", "d3", 0.3, 5.2, true, -1},
		{"a delivery it saw is not refreshed for again", "a@1", "d6", 5.0, 5.3, false, -1},
		{"well after the refresh: at once", "a@1", "d7", 11, 11, true, -1},
	}
	for _, s := range steps {
		refresh, later := r.plan(s.key, s.id, at(s.received), at(s.now), every)
		want := time.Time{}
		if s.later >= 0 {
			want = at(s.later)
		}
		if refresh != s.refresh || !later.Equal(want) {
			t.Errorf("%s: plan = %v, %v; want %v, %v", s.what, refresh, later, s.refresh, want)
		}
	}

	// A deferred delivery taken up elsewhere (another replica) never
	// comes back here: a delivery received after its time refreshes.
	if ok, later := r.plan("a@1", "d8", at(11.5), at(11.5), every); ok || !later.Equal(at(16)) {
		t.Fatalf("deferral: %v %v", ok, later)
	}
	if ok, _ := r.plan("a@1", "d9", at(16.5), at(16.6), every); !ok {
		t.Error("a delivery received after a deferred refresh was due, which never came, was not refreshed for")
	}

	// A refresh that fails leaves no trace: its retry refreshes.
	if ok, _ := r.plan("b@1", "e1", at(20), at(20), every); !ok {
		t.Fatal("first refresh of b@1 not planned")
	}
	r.failed("b@1", at(20))
	if ok, later := r.plan("b@1", "e1", at(20), at(22), every); !ok {
		t.Errorf("the failed refresh's retry: plan = %v, %v; want a refresh now", ok, later)
	}
}
