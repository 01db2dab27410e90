package service_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestCrashSafety restarts the service on the same database again and
// again at random points while merges land and roll out: gracefully (the
// SIGTERM path), at a random instant without a graceful shutdown (no answer
// reaches the dying process any more, in-flight requests are cut, its
// database handle is closed under it), and right while a stage's trigger
// is on the wire (the target holds the request until the process is gone;
// it may or may not have taken the event). Every process after the first
// starts with nothing but the database. At the end:
//   - no run is lost: every merge has its run, released, rolled out to
//     both stages;
//   - no version is cut twice: one tag per merge commit, one release per
//     tag, versions consecutive in merge order;
//   - a stage is never triggered under two idempotency keys: each
//     (run, stage) has one execution, attempt 1, and every re-sent trigger
//     of it carries the same key and callback URL;
//   - no stage ever has two executions at once (target and database), and
//     versions enter each stage in order;
//   - the PR shows it once: one shipbot/rollout check run per merge
//     commit, concluded success, and one sticky comment per pull request.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SHIPBOT_TEST_SEED"); v != "" {
		// Replays a failed run's choices of merges, crashes and delays.
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SHIPBOT_TEST_SEED: %v", err)
		}
		seed = n
	}
	t.Logf("seed %d (SHIPBOT_TEST_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 2026))
	r := newRig(t, rigOptions{minDelay: 20 * time.Millisecond, maxDelay: 150 * time.Millisecond})
	const total, restarts = 18, 15
	p := r.start()
	db := r.openDB()
	defer db.Close()

	var merges []merged
	land := func(n int) {
		var ds []delivery
		for range n {
			if len(merges) == total {
				break
			}
			m := r.approvedMerge(fmt.Sprintf("fix: change %d", len(merges)))
			merges = append(merges, m)
			ds = append(ds, m.closed, m.push)
		}
		shuffle(ds)
		r.sendAll(ds)
	}
	kinds := map[string]int{}
	for i := range restarts {
		land(1 + rng.IntN(2))
		switch kind := []string{"graceful", "hard", "mid-trigger"}[i%3]; kind {
		case "graceful", "hard":
			// A random point of whatever is going on: a release, a trigger,
			// a callback, a report.
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
			if kind == "graceful" {
				p.stop()
			} else {
				p.crash()
			}
			kinds[kind]++
		case "mid-trigger":
			held, release := r.target.holdNext([]string{"qa", "prod"}[rng.IntN(2)])
			select {
			case <-held:
				kinds[kind]++
			case <-time.After(3 * time.Second):
				kinds["hard (no trigger came)"]++ // nothing left to trigger there
			}
			p.crash()
			release()
		}
		p = r.start()
	}
	land(total) // the rest
	r.waitRolloutsDone(db, total, waitLimit)
	eventually(t, "the target has every outcome reported", r.target.allReported)
	p.stop()

	trigs, _ := r.target.snapshot()
	dups := 0
	for _, tr := range trigs {
		if tr.Dup {
			dups++
		}
	}
	r.target.mu.Lock()
	lost := r.target.lost
	r.target.mu.Unlock()
	t.Logf("%d merges, %d restarts %v; %d triggers, %d re-sent with their key, %d lost on the wire and re-sent",
		total, restarts, kinds, len(trigs), dups, lost)
	if kinds["mid-trigger"] == 0 {
		t.Error("no crash happened while a trigger was on the wire")
	}

	runs, _ := r.checkEveryMergeDeployedOnce(db, merges)
	for i, m := range merges {
		if runs[m.sha] == nil {
			continue // reported already
		}
		var checks []string
		for _, cr := range r.gh.CheckRuns(repo, m.sha) {
			if cr.Name == "shipbot/rollout" {
				checks = append(checks, cr.Status+"/"+cr.Conclusion)
			}
		}
		if len(checks) != 1 || checks[0] != "completed/success" {
			t.Errorf("merge %d (%s): shipbot/rollout check runs %v; want exactly one, completed/success", i, m.sha[:7], checks)
		}
		if cs := r.gh.Comments(repo, m.pr); len(cs) != 1 {
			t.Errorf("PR #%d has %d comments; want one sticky comment", m.pr, len(cs))
		}
	}
}

// TestSQLiteRestartContinuesAtOnce: the process dies (no graceful
// shutdown) while qa deploys, holding the pipeline's lease and nothing
// else to show for it; a new process starts on the same file. It holds the
// file's lock, which proves the old one gone, so it takes the dead
// process's leases over at start: qa's outcome, reported to it, sends the
// version on to prod within 2 s of the restart, not after the lease's TTL.
func TestSQLiteRestartContinuesAtOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{minDelay: 300 * time.Millisecond, maxDelay: 300 * time.Millisecond})
	p := r.start()
	m := r.approvedMerge("fix: crash mid-qa")
	r.sendAll([]delivery{m.closed, m.push})
	eventually(t, "qa is triggered", func() bool {
		_, ok := r.target.firstTrigger(tagFor(0))
		return ok
	})
	p.crash()
	restarted := time.Now()
	p = r.start()
	var prod time.Time
	eventually(t, "prod is triggered", func() bool {
		for _, tr := range triggersOf(r) {
			if tr.Stage == "prod" {
				prod = tr.At
				return true
			}
		}
		return false
	})
	took := prod.Sub(restarted)
	t.Logf("prod triggered %s after the restart (qa's deploy took 300 ms)", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("prod was triggered %s after the restart; want within 2 s", took.Round(time.Millisecond))
	}
	db := r.openDB()
	defer db.Close()
	r.waitRolloutsDone(db, 1, waitLimit)
}
