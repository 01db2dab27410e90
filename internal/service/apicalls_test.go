package service_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/githubtest"
)

// maxCallsPerMerge is the design's bar: GitHub API calls for one merge to a
// two-stage pipeline, from the merge's deliveries until the rollout ends,
// live reporting and token fetches included.
const maxCallsPerMerge = 20

// maxWritesPerMerge is the design's bar on content-generating requests
// (what GitHub's secondary limits count) for such a merge when the
// installation's write budget is free.
const maxWritesPerMerge = 10

// maxWritesUnderPressure is that bar when the budget is short: the
// release, the check run created and concluded, the comment's final table,
// and per stage a deployment and its final status.
const maxWritesUnderPressure = 8

// TestAPICallsPerMerge counts every request the fake GitHub served for one
// merge, from its two deliveries until its two-stage rollout ended and the
// PR shows the end, and holds it to the design's bars: calls and writes,
// GitHub Deployments included. Each stage deploys for longer than the
// reporter gathers changes, so that every stage start and finish is its
// own visible change on the PR (live reporting): the test checks that each
// showed the moment it happened, as the stage's deployment created and
// then concluded. The first merge of a fresh process pays for the
// installation token and a look at the history before it, a later one
// does not; both must stay within the bars, and the count the service
// keeps per merge must be the fake's.
func TestAPICallsPerMerge(t *testing.T) {
	t.Parallel()
	var pressed atomic.Bool
	r := newRig(t, rigOptions{schema: true, minDelay: time.Second, maxDelay: time.Second, pressed: &pressed})
	p := r.start()
	db := r.openDB()
	defer db.Close()
	for i, label := range []string{"first merge (token fetch included)", "a later merge", "a merge under write pressure"} {
		underPressure := i == 2
		pressed.Store(underPressure)
		m := r.approvedMerge(fmt.Sprintf("fix: change %d", i))
		tag := tagFor(i)
		r.gh.ResetRequests()
		r.sendAll([]delivery{m.closed, m.push})
		r.waitRolloutsDone(db, i+1, waitLimit)
		r.waitShown(m, "| prod | "+tag+" | succeeded |")
		p.parts.Reporter.Wait()
		reqs := r.gh.Requests()
		writes := writesOf(reqs)
		t.Logf("%s: %d GitHub API calls, %d writes\n%s", label, len(reqs), len(writes), callsByPattern(reqs))
		if len(reqs) > maxCallsPerMerge {
			t.Errorf("%s: %d GitHub API calls; want at most %d", label, len(reqs), maxCallsPerMerge)
		}
		limit := maxWritesPerMerge
		if underPressure {
			limit = maxWritesUnderPressure
		}
		if len(writes) > limit {
			t.Errorf("%s: %d content-generating requests; want at most %d", label, len(writes), limit)
		}
		if n := countPattern(reqs, tokenAPI); (i == 0) != (n == 1) || n > 1 {
			t.Errorf("%s: %d token fetches", label, n)
		}
		var recorded int
		if err := db.QueryRow(`SELECT api_calls FROM runs WHERE repo = ? AND sha = ?`, repo, m.sha).Scan(&recorded); err != nil {
			t.Fatal(err)
		}
		if recorded != len(reqs) {
			t.Errorf("%s: the service recorded %d API calls for the merge; GitHub served %d", label, recorded, len(reqs))
		}
		// Live: each stage's start and finish showed as it happened, in
		// order: its deployment created, then its final status.
		var shown []string
		for _, req := range writes {
			switch req.Pattern {
			case "POST /repos/{owner}/{repo}/deployments":
				var body struct{ Environment string }
				if err := json.Unmarshal(req.Body, &body); err != nil {
					t.Fatal(err)
				}
				shown = append(shown, body.Environment+" created")
			case "POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses":
				var body struct{ State string }
				if err := json.Unmarshal(req.Body, &body); err != nil {
					t.Fatal(err)
				}
				shown = append(shown, deploymentEnv(t, r, req.Path)+" "+body.State)
			}
		}
		if want := []string{"qa created", "qa success", "prod created", "prod success"}; !slices.Equal(shown, want) {
			t.Errorf("%s: deployments %v; want %v", label, shown, want)
		}
		// What the PR holds at the end: one sticky comment, one rollout
		// check run (success), two successful deployments.
		if n := len(r.gh.Comments(repo, m.pr)); n != 1 {
			t.Errorf("%s: %d comments on the PR; want the one sticky comment", label, n)
		}
		var rollouts []githubtest.CheckRun
		for _, cr := range r.gh.CheckRuns(repo, m.sha) {
			if cr.Name == "shipbot/rollout" {
				rollouts = append(rollouts, cr)
			}
		}
		if len(rollouts) != 1 || rollouts[0].Conclusion != "success" {
			t.Errorf("%s: rollout check runs %+v; want one, success", label, rollouts)
		}
		deps := deploymentsOf(r, tag)
		if len(deps) != 2 {
			t.Fatalf("%s: %d deployments of %s; want 2 (qa, prod)", label, len(deps), tag)
		}
		for _, d := range deps {
			last := d.Statuses[len(d.Statuses)-1]
			if d.SHA != m.sha || d.AutoMerge || d.RequiredContexts == nil || len(d.RequiredContexts) != 0 || last.State != "success" ||
				!strings.Contains(last.LogURL, "/runs/") {
				t.Errorf("%s: deployment %+v; want ref %s on %s, auto_merge false, required_contexts [], success with a dashboard log_url", label, d, tag, m.sha)
			}
		}
		if i > 0 {
			// The merge before it was replaced in both environments.
			for _, d := range deploymentsOf(r, tagFor(i-1)) {
				if st := d.Statuses[len(d.Statuses)-1].State; st != "inactive" {
					t.Errorf("%s: the previous deployment to %s is %s; want inactive", label, d.Environment, st)
				}
			}
		}
		// The check run was there from the start and showed a stage under
		// way (deploying; or still triggering, when the trigger's answer
		// came after the reporter's delay, as it can on a busy machine)
		// before its end; so was the comment, unless the budget was short:
		// then it came once, with the final table.
		shownChecks := checkRunStates(t, reqs)
		if len(shownChecks) < 2 || !strings.Contains(shownChecks[0], "| deploying |") && !strings.Contains(shownChecks[0], "| triggering |") {
			t.Errorf("%s: the rollout check run showed:\n%s\nwant it created while a stage deployed, then concluded", label, strings.Join(shownChecks, "\n---\n"))
		}
		created := countPattern(reqs, "POST /repos/{owner}/{repo}/issues/{issue_number}/comments")
		edited := countPattern(reqs, "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}")
		if underPressure && (created != 1 || edited != 0) {
			t.Errorf("%s: the comment was created %d and edited %d times; want it written once, at the end", label, created, edited)
		}
		if !underPressure && (created != 1 || edited != 1) {
			t.Errorf("%s: the comment was created %d and edited %d times; want it created while the rollout ran and edited at its end", label, created, edited)
		}
	}
}

// writesOf keeps the content-generating requests.
func writesOf(reqs []githubtest.Request) []githubtest.Request {
	var out []githubtest.Request
	for _, req := range reqs {
		if req.Method != "GET" && req.Method != "HEAD" && req.Pattern != tokenAPI {
			out = append(out, req)
		}
	}
	return out
}

func deploymentsOf(r *rig, tag string) []githubtest.Deployment {
	var out []githubtest.Deployment
	for _, d := range r.gh.Deployments(repo) {
		if d.Ref == tag {
			out = append(out, d)
		}
	}
	return out
}

// deploymentEnv names the environment of the deployment a status request
// was for.
func deploymentEnv(tb testing.TB, r *rig, path string) string {
	tb.Helper()
	for _, d := range r.gh.Deployments(repo) {
		if strings.HasSuffix(path, fmt.Sprintf("/deployments/%d/statuses", d.ID)) {
			return d.Environment
		}
	}
	tb.Fatalf("no deployment for %s", path)
	return ""
}

// waitShown waits until the merge's rollout check run is completed and
// its summary (and the PR's comment) contains line.
func (r *rig) waitShown(m merged, line string) {
	r.tb.Helper()
	eventually(r.tb, "the PR shows "+line, func() bool {
		cr, ok := r.gh.CheckRun(repo, m.sha, "shipbot/rollout")
		if !ok || cr.Status != "completed" || !strings.Contains(cr.Summary, line) {
			return false
		}
		for _, c := range r.gh.Comments(repo, m.pr) {
			if strings.Contains(c.Body, line) {
				return true
			}
		}
		return false
	})
}

func countPattern(reqs []githubtest.Request, pattern string) int {
	n := 0
	for _, r := range reqs {
		if r.Pattern == pattern {
			n++
		}
	}
	return n
}

// checkRunStates lists the summaries the bot wrote to check runs, in order.
func checkRunStates(tb testing.TB, reqs []githubtest.Request) []string {
	var out []string
	for _, r := range reqs {
		if r.Pattern != "POST /repos/{owner}/{repo}/check-runs" && r.Pattern != "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}" {
			continue
		}
		var body struct {
			Output struct {
				Summary string `json:"summary"`
			} `json:"output"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			tb.Errorf("check run body: %v", err)
		}
		out = append(out, body.Output.Summary)
	}
	return out
}
