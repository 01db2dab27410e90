package service_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/githubtest"
)

// burstSize is how many merges land on one pipeline at once: the design's
// 200, or 50 with -short.
func burstSize() int {
	if testing.Short() {
		return 50
	}
	return 200
}

// TestRolloutBurst: 200 merges (50 with -short) land on one two-stage
// pipeline within a second and GitHub's 400 deliveries (pull_request
// closed and push for each) all arrive at once, into one installation
// whose writes GitHub limits to 80 a minute and 500 an hour (hours of
// writes for 200 merges: the virtual clock of the rig). In both
// concurrency modes, queue on SQLite and latest on PostgreSQL:
//   - no secondary-limit refusal, at most 8 writes a merge, and every
//     PR's final state shown and correct (check run, comment,
//     deployments);
//   - no (pipeline, stage) unit ever has two executions at once, seen from
//     the target (a stage's next trigger arrives only after the previous
//     execution's outcome was taken) and from the executions table;
//   - versions enter every stage in strictly increasing order;
//   - every merge is released once, with consecutive versions;
//   - queue: all 200 versions reach prod; latest: every run ends deployed
//     to prod or superseded, none lost, none stuck, and the newest version
//     reaches prod.
func TestRolloutBurst(t *testing.T) {
	// Parallel with the package's other parallel tests, which mostly wait
	// on their deploys' delays: run after the bursts, they were a quarter
	// of a minute of the package's time on one busy core.
	t.Parallel()
	// Each store takes a burst: SQLite, the default, the longer one (queue
	// deploys every version), PostgreSQL the other. Under -race the
	// race detector instruments SQLite's transpiled C on every memory
	// access, and PostgreSQL's server is not instrumented: latest on
	// SQLite took 23 s and 31 s of CPU, on PostgreSQL 17 s and 20 s.
	for _, bc := range []struct {
		mode     string
		postgres bool
	}{{"queue", false}, {"latest", true}} {
		t.Run(bc.mode, func(t *testing.T) {
			t.Parallel()
			burst(t, bc.mode, bc.postgres, burstSize())
		})
	}
}

func burst(t *testing.T, mode string, postgres bool, n int) {
	r := newRig(t, rigOptions{
		concurrency: mode, postgres: postgres, minDelay: time.Millisecond, maxDelay: 25 * time.Millisecond, logLevel: slog.LevelWarn, direct: true, sameSecond: true,
	})
	p := r.start()
	// The merges happen first (in the fake, in one go, all in the same
	// second), then GitHub's deliveries for all of them arrive together,
	// shuffled.
	merges := make([]merged, n)
	var ds []delivery
	mergeStart := time.Now()
	for i := range merges {
		merges[i] = r.approvedMerge(fmt.Sprintf("fix: change %d", i))
		ds = append(ds, merges[i].closed, merges[i].push)
	}
	mergeTook := time.Since(mergeStart)
	shuffle(ds)
	start := time.Now()
	ackTook := r.sendAll(ds)
	db := r.openDB()
	defer db.Close()
	r.waitRolloutsDone(db, n, 3*waitLimit)
	took := time.Since(start)
	eventually(t, "the target has every outcome reported", r.target.allReported)
	p.stop()
	t.Logf("%s: %d merges made in %s; %d deliveries acknowledged in %s; every rollout done %s after the first delivery; %d GitHub API calls",
		mode, n, mergeTook.Round(time.Millisecond), len(ds), ackTook.Round(time.Millisecond), took.Round(time.Millisecond), r.gh.Count("*"))
	t.Logf("GitHub API calls by endpoint:\n%s", callsByPattern(r.gh.Requests()))
	// GitHub's secondary limits allow an installation 80 writes a minute
	// and 500 an hour; the rig's fake enforces them (on the virtual clock
	// the pacer waits on) and the service paces itself under them.
	inst := r.gh.InstallationID()
	writes := len(writesOf(r.gh.Requests()))
	t.Logf("writes: %d (%.1f a merge), at most %d in a rolling minute, %d in an hour (GitHub allows 80 and 500), over %s of GitHub's clock; at most %d requests in flight (100)",
		writes, float64(writes)/float64(n), r.gh.MaxWritesInAnyMinute(inst), r.gh.MaxWritesInAnyHour(inst),
		r.clock.Now().Sub(start).Round(time.Minute), r.gh.MaxConcurrentRequests(inst))
	if refused := r.gh.SecondaryLimitRefusals(); refused != 0 {
		t.Errorf("GitHub's secondary limits refused %d requests; want none", refused)
	}
	// Under pressure a merge costs 8 writes, with the budget free 10
	// (TestAPICallsPerMerge holds one merge to each): a burst is under
	// pressure most of the time, and each hour of GitHub's clock frees the
	// budget for a while, so no merge may cost more than 10.
	perMerge := r.writesPerMerge(merges)
	hist := map[int]int{}
	for i, w := range perMerge {
		hist[w]++
		if w > 10 {
			t.Errorf("%s cost %d writes; want at most 10", tagFor(i), w)
		}
	}
	t.Logf("merges by writes: %v", hist)
	r.checkFinalShown(merges, mode)

	// GitHub allows an App installation 5000 requests an hour (the fake
	// enforces it): a burst that spends them stalls every repository of
	// the installation.
	if calls := r.gh.Count("*"); calls >= 5000 {
		t.Errorf("%d GitHub API calls for %d merges: the installation's hourly rate limit is 5000", calls, n)
	}

	runs := runsIn(t, db)
	r.checkReleases(merges, runs)
	execs := executionsIn(t, db)
	checkExecutionsDB(t, execs)
	entered := checkTarget(t, r.target)

	// Executions per run and stage in the database: at most one, attempt 1.
	perRunStage := map[string]int{}
	for _, e := range execs {
		perRunStage[e.runID+"/"+e.stage]++
		if e.attempt != 1 || e.rollback || e.outcome != "succeeded" {
			t.Errorf("execution %s of %s at %s: attempt %d rollback %v outcome %q; want attempt 1, succeeded", e.id, e.version, e.stage, e.attempt, e.rollback, e.outcome)
		}
	}
	for k, c := range perRunStage {
		if c != 1 {
			t.Errorf("%s has %d executions; want 1", k, c)
		}
	}

	newest := merges[n-1].sha
	deployed, superseded := 0, 0
	for i, m := range merges {
		run := runs[m.sha]
		if run == nil {
			continue // reported by checkReleases
		}
		if run.rollout != "done" || len(run.stages) != 2 {
			t.Errorf("run of %s: rollout %q, stages %v; want done with 2 stages", tagFor(i), run.rollout, run.stages)
			continue
		}
		qa, prod := run.stages[0], run.stages[1]
		switch {
		case qa == "passed" && prod == "passed":
			deployed++
			if perRunStage[run.id+"/qa"] != 1 || perRunStage[run.id+"/prod"] != 1 {
				t.Errorf("run of %s passed both stages with %d qa and %d prod executions", tagFor(i), perRunStage[run.id+"/qa"], perRunStage[run.id+"/prod"])
			}
		case mode == "latest" && (qa == "superseded" && prod == "superseded" || qa == "passed" && prod == "superseded"):
			superseded++
			if qa == "superseded" && perRunStage[run.id+"/qa"] != 0 || perRunStage[run.id+"/prod"] != 0 {
				t.Errorf("superseded run of %s deployed anyway: %d qa, %d prod executions", tagFor(i), perRunStage[run.id+"/qa"], perRunStage[run.id+"/prod"])
			}
		default:
			t.Errorf("run of %s ended with qa %s, prod %s", tagFor(i), qa, prod)
		}
	}
	if run := runs[newest]; run != nil && (len(run.stages) != 2 || run.stages[1] != "passed") {
		t.Errorf("the newest version %s did not reach prod: %v", tagFor(n-1), run.stages)
	}
	switch mode {
	case "queue":
		if deployed != n || len(entered["prod"]) != n || len(entered["qa"]) != n {
			t.Errorf("queue: %d runs deployed, %d qa and %d prod executions; want %d of each", deployed, len(entered["qa"]), len(entered["prod"]), n)
		}
		for i, tr := range entered["prod"] {
			if tr.Tag != tagFor(i) {
				t.Errorf("prod execution %d deployed %s; want %s", i, tr.Tag, tagFor(i))
				break
			}
		}
	case "latest":
		if deployed+superseded != n {
			t.Errorf("latest: %d deployed + %d superseded; want %d", deployed, superseded, n)
		}
		t.Logf("latest: %d runs deployed to prod, %d superseded; %d qa and %d prod executions", deployed, superseded, len(entered["qa"]), len(entered["prod"]))
	}
}

// checkFinalShown checks what every merge's PR shows once the burst is
// over: its rollout check run concluded (success; cancelled when a newer
// version superseded it under latest), its one sticky comment's final
// table, and every deployment of its tag concluded.
func (r *rig) checkFinalShown(merges []merged, mode string) {
	r.tb.Helper()
	for i, m := range merges {
		tag := tagFor(i)
		cr, ok := r.gh.CheckRun(repo, m.sha, "shipbot/rollout")
		superseded := ok && cr.Conclusion == "cancelled" && mode == "latest"
		if !ok || cr.Status != "completed" || (cr.Conclusion != "success" && !superseded) {
			r.tb.Errorf("%s: rollout check run %+v; want completed, success", tag, cr)
			continue
		}
		comments := r.gh.Comments(repo, m.pr)
		if len(comments) != 1 {
			r.tb.Errorf("%s: %d comments; want the one sticky comment", tag, len(comments))
			continue
		}
		want := "| prod | " + tag + " | succeeded |"
		if superseded {
			want = "| prod | " + tag + " | superseded"
		}
		if !strings.Contains(comments[0].Body, want) {
			r.tb.Errorf("%s: the comment's final table lacks %q:\n%s", tag, want, comments[0].Body)
		}
		for _, d := range deploymentsOf(r, tag) {
			if len(d.Statuses) == 0 {
				r.tb.Errorf("%s: deployment to %s has no final status", tag, d.Environment)
				continue
			}
			if st := d.Statuses[len(d.Statuses)-1].State; st != "success" && st != "inactive" {
				t := d.Environment
				r.tb.Errorf("%s: deployment to %s ended %s; want success (or inactive, replaced)", tag, t, st)
			}
		}
	}
}

// writesPerMerge attributes every content-generating request the fake
// served to the merge it was for: releases and deployments by tag, check
// runs by commit, comments by pull request.
func (r *rig) writesPerMerge(merges []merged) []int {
	r.tb.Helper()
	bySHA, byPR, byTag := map[string]int{}, map[int]int{}, map[string]int{}
	checkRun, comment, deployment := map[int64]int{}, map[int64]int{}, map[int64]int{}
	for i, m := range merges {
		bySHA[m.sha], byPR[m.pr], byTag[tagFor(i)] = i, i, i
		for _, cr := range r.gh.CheckRuns(repo, m.sha) {
			checkRun[cr.ID] = i
		}
		for _, c := range r.gh.Comments(repo, m.pr) {
			comment[c.ID] = i
		}
	}
	for _, d := range r.gh.Deployments(repo) {
		if i, ok := byTag[d.Ref]; ok {
			deployment[d.ID] = i
		}
	}
	out := make([]int, len(merges))
	count := func(i int, ok bool, req githubtest.Request) {
		if !ok {
			r.tb.Errorf("a write of no merge: %s %s", req.Method, req.Path)
			return
		}
		out[i]++
	}
	lastID := func(path string) int64 {
		id, _ := strconv.ParseInt(path[strings.LastIndex(path, "/")+1:], 10, 64)
		return id
	}
	for _, req := range writesOf(r.gh.Requests()) {
		var body struct {
			TagName string `json:"tag_name"`
			HeadSHA string `json:"head_sha"`
			Ref     string `json:"ref"`
		}
		_ = json.Unmarshal(req.Body, &body)
		switch req.Pattern {
		case "POST /repos/{owner}/{repo}/releases":
			i, ok := byTag[body.TagName]
			count(i, ok, req)
		case "POST /repos/{owner}/{repo}/check-runs":
			i, ok := bySHA[body.HeadSHA]
			count(i, ok, req)
		case "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}":
			i, ok := checkRun[lastID(req.Path)]
			count(i, ok, req)
		case "POST /repos/{owner}/{repo}/issues/{issue_number}/comments":
			pr, _ := strconv.Atoi(strings.Split(req.Path, "/")[len(strings.Split(req.Path, "/"))-2])
			i, ok := byPR[pr]
			count(i, ok, req)
		case "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}":
			i, ok := comment[lastID(req.Path)]
			count(i, ok, req)
		case "POST /repos/{owner}/{repo}/deployments":
			i, ok := byTag[body.Ref]
			count(i, ok, req)
		case "POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses":
			path := strings.TrimSuffix(req.Path, "/statuses")
			i, ok := deployment[lastID(path)]
			count(i, ok, req)
		default:
			r.tb.Errorf("an unexpected write: %s %s", req.Method, req.Path)
		}
	}
	return out
}
