package service_test

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/shipbot/shipbot/internal/servicetest"
)

// BenchmarkSustainedLoad is the design's sustained load: 100 repositories,
// each in an installation of its own, merging into two-stage pipelines at
// 5,400 merges an hour in all (1.5 a second; 54 an hour per installation,
// which must fit GitHub's 500 writes an hour each), deploys of about
// 50 ms, the fake GitHub enforcing its secondary limits at GitHub's values
// on the wall clock. Each iteration is one merge, sent at the rate, so
//
//	go test -run '^$' -bench SustainedLoad -benchtime 900x ./internal/service/
//
// is ten minutes of it. SHIPBOT_BENCH_RATE sets another rate (merges a
// second) to find the most one process keeps up with.
//
// It reports the process's CPU cores used (CPU time over wall time) and
// peak RSS, the webhook ack p99, GitHub requests and writes per merge,
// how long after the last merge everything was done (drain-s: a process
// that keeps up drains in about one rollout's time, a backlog in far
// more) and the most rollouts active at once. The process holds the fake
// GitHub, the deploy target and the load too, so cores and RSS are upper
// bounds of the service's own. It fails on a lost merge, a merge out of
// version order in a repository's prod, or a secondary-limit answer.
//
// Sub-benchmarks: sqlite (one process, the embedded store) and
// postgres-3-replicas (three processes behind a round-robin front on a
// throwaway PostgreSQL cluster, whose server's CPU and memory are not
// counted).
func BenchmarkSustainedLoad(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { sustained(b, false) })
	b.Run("postgres-3-replicas", func(b *testing.B) { sustained(b, true) })
}

func sustained(b *testing.B, postgres bool) {
	rate := 1.5
	if v := os.Getenv("SHIPBOT_BENCH_RATE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			b.Fatalf("SHIPBOT_BENCH_RATE=%q: want merges a second", v)
		}
		rate = f
	}
	const nRepos = 100
	more := make([]string, nRepos-1)
	for i := range more {
		more[i] = fmt.Sprintf("team%02d/svc", i+1)
	}
	all := append([]string{repo}, more...)
	r := newRig(b, rigOptions{minDelay: 40 * time.Millisecond, maxDelay: 60 * time.Millisecond, logLevel: slog.LevelWarn,
		direct: !postgres, repos: more, wallClock: true, postgres: postgres})
	r.start()
	if postgres {
		r.start()
		r.start()
	}
	db := r.openDB()
	defer db.Close()

	var mu sync.Mutex
	var acks []time.Duration
	var maxActive int
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		// The backlog, once a second: rollouts started and not done.
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(time.Second):
			}
			var active int
			if err := db.QueryRow(`SELECT count(*) FROM rollouts INDEXED BY rollouts_active WHERE state = 'active'`).Scan(&active); err == nil {
				mu.Lock()
				maxActive = max(maxActive, active)
				mu.Unlock()
			}
		}
	}()

	var before syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &before); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		// The load's own pace: merge i lands at i/rate seconds.
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		m := r.approvedMergeIn(all[i%nRepos], fmt.Sprintf("fix: change %d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, d := range []delivery{m.closed, m.push} {
				t0 := time.Now()
				r.send(d)
				took := time.Since(t0)
				mu.Lock()
				acks = append(acks, took)
				mu.Unlock()
			}
		}()
	}
	lastMerge := time.Now()
	wg.Wait()
	servicetest.Wait{Limit: 10 * time.Minute, Interval: 50 * time.Millisecond}.Eventually(b, "every rollout done", func() bool {
		var done int
		if err := db.QueryRow(`SELECT count(*) FROM rollouts WHERE state = 'done'`).Scan(&done); err != nil {
			b.Fatal(err)
		}
		return done >= b.N
	})
	drain := time.Since(lastMerge)
	elapsed := time.Since(start)
	b.StopTimer()
	close(stopSampling)
	<-sampled
	var after syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &after); err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond

	reqs := r.gh.Requests()
	writes := len(writesOf(reqs))
	slices.Sort(acks)
	p99 := acks[min(len(acks)-1, len(acks)*99/100)]
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores")
	b.ReportMetric(float64(peakRSS(b))/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(p99.Microseconds())/1000, "ack-p99-ms")
	b.ReportMetric(float64(len(reqs))/float64(b.N), "calls/merge")
	b.ReportMetric(float64(writes)/float64(b.N), "writes/merge")
	b.ReportMetric(drain.Seconds(), "drain-s")
	b.ReportMetric(float64(maxActive), "max-active")
	b.ReportMetric(0, "ns/op") // the rate sets the pace, not the code

	if n := r.gh.SecondaryLimitRefusals(); n != 0 {
		b.Errorf("GitHub's secondary limits refused %d requests; want none", n)
	}
	checkProdInOrder(b, db, b.N)
}

// checkProdInOrder: n merges reached prod, once each, and every
// repository's prod took its versions in increasing order.
func checkProdInOrder(tb testing.TB, db *testDB, n int) {
	tb.Helper()
	rows, err := db.Query(`SELECT o.pipeline_key, e.version FROM executions e JOIN rollouts o ON o.id = e.rollout_id
		WHERE e.stage = 'prod' AND e.outcome = 'succeeded' AND NOT e.rollback ORDER BY e.created_at, e.id`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	last := map[string]*semver.Version{}
	count := 0
	for rows.Next() {
		var key, version string
		if err := rows.Scan(&key, &version); err != nil {
			tb.Fatal(err)
		}
		v, err := semver.NewVersion(version)
		if err != nil {
			tb.Fatal(err)
		}
		if prev := last[key]; prev != nil && !v.GreaterThan(prev) {
			tb.Errorf("%s: prod took %s after %s", key, v, prev)
		}
		last[key] = v
		count++
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	if count != n {
		tb.Errorf("%d merges reached prod; want all %d", count, n)
	}
}

// peakRSS is the process's peak resident set (VmHWM), in bytes.
func peakRSS(tb testing.TB) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM in /proc/self/status")
	return 0
}
