package service_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/githubtest"
)

// maxCallsPerMerge is the design's bar: GitHub API calls for one merge to a
// two-stage pipeline, from the merge's deliveries until the rollout ends,
// live reporting and token fetches included.
const maxCallsPerMerge = 20

// TestAPICallsPerMerge counts every request the fake GitHub served for one
// merge, from its two deliveries until its two-stage rollout ended and the
// PR shows the end, and holds it to the design's bar. Each stage deploys
// for longer than the reporter gathers changes, so that every stage start
// and finish is its own visible write on the PR (live reporting), and the
// test checks that they were. The first merge of a fresh process pays for
// the installation token, a later one does not; both must stay within the
// bar.
func TestAPICallsPerMerge(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{schema: true, minDelay: time.Second, maxDelay: time.Second})
	p := r.start()
	db := openDB(t, r.dbPath)
	defer db.Close()
	for i, label := range []string{"first merge (token fetch included)", "a later merge"} {
		m := r.approvedMerge(fmt.Sprintf("fix: change %d", i))
		tag := tagFor(i)
		r.gh.ResetRequests()
		r.sendAll([]delivery{m.closed, m.push})
		r.waitRolloutsDone(db, i+1, waitLimit)
		r.waitShown(m, "| prod | "+tag+" | succeeded |")
		p.parts.Reporter.Wait()
		reqs := r.gh.Requests()
		t.Logf("%s: %d GitHub API calls\n%s", label, len(reqs), callsByPattern(reqs))
		if len(reqs) > maxCallsPerMerge {
			t.Errorf("%s: %d GitHub API calls; want at most %d", label, len(reqs), maxCallsPerMerge)
		}
		if n := countPattern(reqs, tokenAPI); (i == 0) != (n == 1) || n > 1 {
			t.Errorf("%s: %d token fetches", label, n)
		}
		// Live: the check run went through each stage deploying, then done.
		shown := checkRunStates(t, reqs)
		for _, want := range []string{
			"| qa | " + tag + " | deploying |",
			"| qa | " + tag + " | succeeded |",
			"| prod | " + tag + " | deploying |",
			"| prod | " + tag + " | succeeded |",
		} {
			if !containsAny(shown, want) {
				t.Errorf("%s: the rollout check run never showed %q; it showed:\n%s", label, want, strings.Join(shown, "\n---\n"))
			}
		}
	}
}

// waitShown waits until the merge's rollout check run is completed and
// its summary (and the PR's comment) contains line.
func (r *rig) waitShown(m merged, line string) {
	r.tb.Helper()
	eventually(r.tb, waitLimit, "the PR shows "+line, func() bool {
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

func containsAny(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
