package service_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store/pgtest"
)

// TestMain keeps go test's default -parallel (GOMAXPROCS) here, unlike
// internal/pipeline (servicetest.WaitingTestsParallel): four at a time on
// 2 cores made the package alone 9 s shorter, but in the whole suite, where
// this package runs while the cores are busy anyway, it did not shorten
// the package, and it slowed TestReplicasSurviveAKillMidBurst's serial
// chain of 400 stage executions across three replicas from 60 s to 86-118 s.
func TestMain(m *testing.M) { pgtest.Main(m) }

// TestReplicasSurviveAKillMidBurst: three replicas on one PostgreSQL
// database behind a round-robin front. 200 merges (50 with -short) land at
// once; their deliveries, some sent twice (each copy to another replica,
// as GitHub's redelivery would), and the target's callbacks are spread
// over the replicas. Half-way through, the replica driving the pipeline is
// killed (no graceful shutdown: its leases stay behind until they expire);
// later the next driver is stopped gracefully (SIGTERM). Then:
//   - another replica carries the rollout on within 15 s of the kill, and
//     within 2 s of the graceful stop's start (its leases are handed back);
//   - every merge is released once, with consecutive versions;
//   - every version reaches both stages, in order, one execution per
//     stage, attempt 1, never two at once (database and target);
//   - a trigger re-sent by the replica that took over carries the same
//     idempotency key and callback URL.
func TestReplicasSurviveAKillMidBurst(t *testing.T) {
	// Parallel: go test runs two tests at once on 2 cores (-parallel is
	// GOMAXPROCS), so this runs beside at most one burst; there, under
	// -race, the rollout went on 7.1-9.8 s after the kill (bar 15 s) and
	// another replica carried it on 88-187 ms after the graceful stop
	// began (bar 2 s; counted from the stop's end instead, it once came to
	// 2.8 s: the takeover had come during a slow stop, and the trigger
	// after it was taken for it). Run on its own first, it
	// held the package's other tests up for some 35 s.
	t.Parallel()
	n := burstSize()
	r := newRig(t, rigOptions{postgres: true, minDelay: time.Millisecond, maxDelay: 25 * time.Millisecond,
		logLevel: slog.LevelWarn, sameSecond: true})
	procs := []*proc{r.start(), r.start(), r.start()}
	// Polls of the database compete with the replicas for it: not too often.
	waitFor := servicetest.Wait{Limit: waitLimit, Interval: 50 * time.Millisecond}.Eventually
	db := r.openDB()
	defer db.Close()

	merges := make([]merged, n)
	var ds []delivery
	for i := range merges {
		merges[i] = r.approvedMerge(fmt.Sprintf("fix: change %d", i))
		ds = append(ds, merges[i].closed, merges[i].push)
		if i%10 == 0 {
			ds = append(ds, merges[i].closed) // redelivered: reaches another replica
		}
	}
	shuffle(ds)
	start := time.Now()
	r.sendAll(ds[:len(ds)/2])
	// Mid-burst: some rollouts are done, the pipeline is being driven.
	waitFor(t, "a tenth of the rollouts are done", func() bool { return rolloutsDone(t, db) >= n/10 })
	holder, victim := driver(t, db, procs)
	victim.crash()
	killed := time.Now()
	r.sendAll(ds[len(ds)/2:])
	resumed := resumedAfter(t, r, killed, victim.owner)
	if resumed > 15*time.Second {
		t.Errorf("the rollout went on %s after the driving replica was killed; want within 15 s", resumed.Round(time.Millisecond))
	}
	waitFor(t, "six tenths of the rollouts are done", func() bool { return rolloutsDone(t, db) >= 6*n/10 })
	stopped, leaving := driver(t, db, procs)
	stopping := time.Now()
	leaving.stop()
	stoppedAt := time.Now()
	// From the moment the stop began: the replica gives its leases up on
	// the way out, and another may well have carried the rollout on
	// before the stop returns (it still waits for its last reports).
	handedOver := resumedAfter(t, r, stopping, leaving.owner)
	if handedOver > 2*time.Second {
		t.Errorf("another replica carried the rollout on %s after the driving replica began to stop gracefully; want within 2 s", handedOver.Round(time.Millisecond))
	}
	r.waitRolloutsDone(db, n, 3*waitLimit)
	took := time.Since(start)
	eventually(t, "the target has every outcome reported", r.target.allReported)
	for _, p := range procs {
		p.stop()
	}
	trigs := triggersOf(r)
	dups := 0
	owners := map[string]bool{}
	for _, p := range procs {
		owners[p.owner] = true
	}
	for _, tr := range trigs {
		if tr.Dup {
			dups++
		}
		if !owners[tr.From] {
			t.Errorf("a trigger from %q, none of the replicas: the handover times above are not to be trusted", tr.From)
			break
		}
	}
	t.Logf("%d merges on 3 replicas, %d deliveries (%d sent twice); replica %s killed holding the pipeline, which another went on with %s later; replica %s stopped gracefully holding it (the stop took %s), and another went on with it %s after the stop began; every rollout done %s after the first delivery; %d triggers, %d re-sent with their key",
		n, len(ds), len(ds)-2*n, holder, resumed.Round(time.Millisecond), stopped, stoppedAt.Sub(stopping).Round(time.Millisecond), handedOver.Round(time.Millisecond), took.Round(time.Millisecond), len(trigs), dups)

	_, entered := r.checkEveryMergeDeployedOnce(db, merges)
	for _, stage := range []string{"qa", "prod"} {
		if len(entered[stage]) != n {
			t.Errorf("%d %s executions at the target; want %d", len(entered[stage]), stage, n)
		}
		for i, tr := range entered[stage] {
			if tr.Tag != tagFor(i) {
				t.Errorf("%s execution %d deployed %s; want %s", stage, i, tr.Tag, tagFor(i))
				break
			}
		}
	}
}

// driver is the replica holding the pipeline's lease.
func driver(t *testing.T, db *testDB, procs []*proc) (string, *proc) {
	t.Helper()
	var holder string
	if err := db.QueryRow(`SELECT owner FROM leases WHERE name = ?`, "pipeline:"+pipeKey).Scan(&holder); err != nil {
		t.Fatalf("no replica holds the pipeline's lease: %v", err)
	}
	for _, p := range procs {
		if p.owner == holder {
			return holder, p
		}
	}
	t.Fatalf("the pipeline's lease is held by %q, none of the replicas", holder)
	return "", nil
}

// resumedAfter waits for the first trigger after since that a replica
// other than gone sent, and says how long after since it came.
func resumedAfter(t *testing.T, r *rig, since time.Time, gone string) time.Duration {
	t.Helper()
	var at time.Time
	eventually(t, "a trigger from a replica other than "+gone, func() bool {
		for _, tr := range triggersOf(r) {
			if tr.At.After(since) && tr.From != gone {
				at = tr.At
				return true
			}
		}
		return false
	})
	return at.Sub(since)
}

func triggersOf(r *rig) []trig {
	trigs, _ := r.target.snapshot()
	return trigs
}

// TestCallbackAndCommandOnAnyReplica: two replicas whose engines tick
// only once a minute, so that only wake-ups move a rollout. A callback
// that lands on the replica not driving the pipeline advances the rollout
// on the driver within 1 s (a notification wakes it); a /shipbot command
// that lands there is carried out there, at once, not refused with "try
// again" (the driver hands the pipeline's lease over on request). Here:
// qa's outcome reaches the other replica, then a maintainer's approval of
// prod does; prod deploys and its outcome reaches the replica that no
// longer drives.
func TestCallbackAndCommandOnAnyReplica(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{postgres: true, minDelay: 400 * time.Millisecond, maxDelay: 400 * time.Millisecond,
		logLevel: slog.LevelWarn, engineTick: time.Minute})
	r.gh.AddCommit(repo, "main", "prod needs an approval", map[string]string{
		".github/shipbot.yml": strings.Replace(repoConfig("queue"), "    target: sim-prod\n", "    target: sim-prod\n    approval: true\n", 1),
	})
	r.gh.SetPermission(repo, "dave", "maintain")
	procs := []*proc{r.start(), r.start()}
	db := r.openDB()
	defer db.Close()
	waitFor := servicetest.Wait{Limit: waitLimit, Interval: 10 * time.Millisecond}.Eventually
	otherThan := func(owner string) *proc {
		for _, p := range procs {
			if p.owner != owner {
				return p
			}
		}
		return nil
	}

	m := r.approvedMerge("fix: gated")
	r.sendAll([]delivery{m.closed, m.push})
	waitFor(t, "qa is triggered", func() bool {
		_, ok := r.target.firstTrigger(tagFor(0))
		return ok
	})
	holder, _ := driver(t, db, procs)
	other := otherThan(holder)
	r.front.pin("/api/v1/callbacks/", other.back)
	var passed time.Time
	waitFor(t, "qa passed", func() bool {
		run := runsIn(t, db)[m.sha]
		passed = time.Now()
		return run != nil && len(run.stages) == 2 && run.stages[0] == "passed"
	})
	waitFor(t, "the rollout check says prod waits for an approval", func() bool {
		for _, cr := range r.gh.CheckRuns(repo, m.sha) {
			if cr.Name == "shipbot/rollout" && cr.Title == "v0.1.0: waiting for approval of prod" {
				return true
			}
		}
		return false
	})
	taken, _ := r.target.taken("qa", tagFor(0))
	callback := passed.Sub(taken)
	if callback > time.Second {
		t.Errorf("qa's outcome, taken by %s, passed qa on %s %s later; want within 1 s", other.owner, holder, callback.Round(time.Millisecond))
	}

	comment := r.gh.AddComment(repo, m.pr, "dave", "/shipbot approve prod")
	sent := time.Now()
	d := r.ids.New("issue_comment", r.gh.IssueCommentEvent(owner, name, m.pr, comment, "created"))
	code, err := servicetest.Hook{URL: other.srv.URL + servicetest.WebhookPath, Secret: r.secret}.Post(t.Context(), d)
	if err != nil || code != 202 {
		t.Fatalf("the command's delivery to %s: %d %v", other.owner, code, err)
	}
	var reply string
	waitFor(t, "a reply to the command", func() bool {
		for _, c := range r.gh.Comments(repo, m.pr) {
			if c.User == "shipbot[bot]" && strings.Contains(c.Body, "@dave") {
				reply = c.Body
				return true
			}
		}
		return false
	})
	answered := time.Since(sent)
	if !strings.Contains(reply, "Approved: v0.1.0 goes to prod") {
		t.Errorf("the approval sent to the replica not driving the pipeline (%s; %s drives it) answered %q", other.owner, holder, reply)
	}
	// The approval moved the pipeline to the other replica: prod's
	// outcome now goes to the one that drove it before.
	r.front.pin("/api/v1/callbacks/", otherThan(other.owner).back)
	r.waitRolloutsDone(db, 1, waitLimit)
	if run := runsIn(t, db)[m.sha]; strings.Join(run.stages, ",") != "passed,passed" {
		t.Errorf("after the approval the stages are %v; want both passed", run.stages)
	}
	// The API and the dashboard answer the same on every replica.
	for _, p := range procs {
		for _, path := range []string{"/api/v1/runs", "/"} {
			resp, err := http.Get(p.srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "v0.1.0") {
				t.Errorf("GET %s on %s: %d, v0.1.0 shown: %v", path, p.owner, resp.StatusCode, strings.Contains(string(body), "v0.1.0"))
			}
		}
	}
	t.Logf("qa's outcome taken by %s passed qa on %s in %s; the approval sent to %s was answered in %s",
		other.owner, holder, callback.Round(time.Millisecond), other.owner, answered.Round(time.Millisecond))
}
