package service_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/githubtest"
)

// maxRoundTrips is the design's bar: sequential GitHub round trips on the
// critical path from a merge's delivery to its first trigger, with the
// installation token cached.
const maxRoundTrips = 3

// latency is added to every request of the fake while round trips are
// measured, so that sequential requests are clearly apart in time. It has
// to be long beside how late a busy machine runs goroutines started
// together: reads launched at once reached the fake up to 107 ms apart
// under -race with four tests at a time, and with 25 ms of latency they
// looked sequential.
const latency = 250 * time.Millisecond

// sequentialRoundTrips is the longest chain of requests among reqs, each
// of which started after the one before it had been answered, counting
// only requests answered by until: the sequential round trips that can
// have led to something that happened at until. Concurrent reads overlap
// and count once. It reads only the times the fake recorded, never a
// wall-clock threshold.
func sequentialRoundTrips(reqs []githubtest.Request, until time.Time) (int, []string) {
	var done []githubtest.Request
	for _, r := range reqs {
		if !r.Time.Add(r.Duration).After(until) {
			done = append(done, r)
		}
	}
	sort.SliceStable(done, func(i, j int) bool { return done[i].Time.Before(done[j].Time) })
	depth := make([]int, len(done))
	prev := make([]int, len(done))
	best, end := 0, -1
	for i, r := range done {
		depth[i], prev[i] = 1, -1
		for j := range i {
			if !done[j].Time.Add(done[j].Duration).After(r.Time) && depth[j]+1 > depth[i] {
				depth[i], prev[i] = depth[j]+1, j
			}
		}
		if depth[i] > best {
			best, end = depth[i], i
		}
	}
	var chain []string
	for i := end; i >= 0; i = prev[i] {
		chain = append([]string{done[i].Pattern}, chain...)
	}
	return best, chain
}

// requestTimeline lists reqs with their start (from the first request's),
// duration and status: what a failure needs to tell reads that ran one
// after another from reads that were retried.
func requestTimeline(reqs []githubtest.Request) string {
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "  +%-8v %-8v %d %s %s\n", r.Time.Sub(reqs[0].Time).Round(time.Millisecond),
			r.Duration.Round(time.Millisecond), r.Status, r.Method, r.Pattern)
	}
	return b.String()
}

// mergeToTrigger delivers d for merge m (the n-th, from 0) with latency
// on every GitHub request and returns the sequential round trips from the
// delivery to the first trigger of m's version, the chain, and every
// request made meanwhile.
func (r *rig) mergeToTrigger(d delivery, n int) (int, []string, []githubtest.Request) {
	r.tb.Helper()
	r.gh.SetLatency(latency)
	defer r.gh.SetLatency(0)
	r.gh.ResetRequests()
	r.send(d)
	var at time.Time
	eventually(r.tb, "the first trigger of "+tagFor(n), func() bool {
		var ok bool
		at, ok = r.target.firstTrigger(tagFor(n))
		return ok
	})
	reqs := r.gh.Requests()
	trips, chain := sequentialRoundTrips(reqs, at)
	return trips, chain, reqs
}

// settle delivers the rest of merge m's deliveries and waits until its
// rollout ended and the PR shows it, with nothing of it still pending.
func (r *rig) settle(p *proc, m merged, n int, rest ...delivery) {
	r.tb.Helper()
	for _, d := range rest {
		r.send(d)
	}
	db := r.openDB()
	defer db.Close()
	r.waitRolloutsDone(db, n+1, waitLimit)
	r.waitShown(m, "| prod | "+tagFor(n)+" | succeeded |")
	p.parts.Reporter.Wait()
}

// TestMergeToFirstTriggerRoundTrips: with the installation token cached, a
// merge reaches its first stage trigger within 3 sequential GitHub round
// trips, whichever of GitHub's two deliveries comes first; the independent
// reads run concurrently. Measured structurally: every request of the fake
// carries its start and duration, 250 ms of latency apart.
func TestMergeToFirstTriggerRoundTrips(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{schema: true, minDelay: 5 * time.Millisecond, maxDelay: 10 * time.Millisecond})
	p := r.start()
	warm := r.approvedMerge("fix: warm-up")
	r.settle(p, warm, 0, warm.closed, warm.push)

	for i, tc := range []struct {
		name  string
		first func(merged) delivery
		rest  func(merged) delivery
	}{
		{"pull_request first", func(m merged) delivery { return m.closed }, func(m merged) delivery { return m.push }},
		{"push first", func(m merged) delivery { return m.push }, func(m merged) delivery { return m.closed }},
	} {
		n := i + 1
		m := r.approvedMerge(fmt.Sprintf("fix: measured %d", n))
		trips, chain, reqs := r.mergeToTrigger(tc.first(m), n)
		t.Logf("%s: %d sequential GitHub round trips to the first trigger: %v", tc.name, trips, chain)
		if trips > maxRoundTrips {
			t.Errorf("%s: %d sequential round trips from the delivery to the first trigger; want at most %d: %v\n%s",
				tc.name, trips, maxRoundTrips, chain, requestTimeline(reqs))
		}
		if trips == 0 {
			t.Errorf("%s: no GitHub request before the first trigger; the measurement is broken", tc.name)
		}
		if c := countPattern(reqs, tokenAPI); c != 0 {
			t.Errorf("%s: %d token fetches; the token should be cached", tc.name, c)
		}
		r.settle(p, m, n, tc.rest(m))
	}
}

// BenchmarkMergeToFirstTrigger merges approved pull requests one at a
// time, GitHub's pull_request delivery first, with latency on every GitHub
// request, and reports the sequential round trips from the delivery to
// the first trigger and the API calls of the whole merge, live-reported
// two-stage rollout included (each stage deploys for longer than the
// reporter gathers changes).
func BenchmarkMergeToFirstTrigger(b *testing.B) {
	r := newRig(b, rigOptions{minDelay: 400 * time.Millisecond, maxDelay: 400 * time.Millisecond})
	p := r.start()
	warm := r.approvedMerge("fix: warm-up")
	r.settle(p, warm, 0, warm.closed, warm.push)
	var trips, calls int
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		m := r.approvedMerge(fmt.Sprintf("fix: change %d", i))
		b.StartTimer()
		n, _, _ := r.mergeToTrigger(m.closed, i+1)
		b.StopTimer()
		trips += n
		r.settle(p, m, i+1, m.push)
		calls += len(r.gh.Requests())
		b.StartTimer()
	}
	b.ReportMetric(float64(trips)/float64(b.N), "roundtrips/merge")
	b.ReportMetric(float64(calls)/float64(b.N), "calls/merge")
}
