package githubtest

import (
	"fmt"
	"slices"
	"time"
)

// checkPullsJSON is the pull_requests list of check runs and suites: the
// open pull requests of r whose head is sha. GitHub leaves out pull
// requests from forks; the fake has none.
func (s *Server) checkPullsJSON(c *call, r *repository, sha string) []map[string]any {
	prs := []map[string]any{}
	for _, p := range sortedPulls(r) {
		if p.state != "open" || p.headSHA(r) != sha {
			continue
		}
		side := func(branch, sha string) map[string]any {
			return map[string]any{"ref": branch, "sha": sha, "repo": map[string]any{
				"id": r.id, "url": c.apiURL("/repos/%s", r.fullName()), "name": r.name,
			}}
		}
		prs = append(prs, map[string]any{
			"id": p.id, "number": p.number, "url": c.apiURL("/repos/%s/pulls/%d", r.fullName(), p.number),
			"head": side(p.head, p.headSHA(r)), "base": side(p.base, p.baseSHA(r)),
		})
	}
	return prs
}

// headBranch is the branch a check suite names for sha: the head branch
// of an open pull request at sha, else a branch whose head is sha (the
// default branch first), else none.
func (r *repository) headBranch(sha string) any {
	for _, p := range sortedPulls(r) {
		if p.state == "open" && p.headSHA(r) == sha {
			return p.head
		}
	}
	if r.refs["refs/heads/"+r.defaultBranch] == sha {
		return r.defaultBranch
	}
	for _, ref := range r.sortedRefs("refs/heads/") {
		if r.refs[ref] == sha {
			return ref[len("refs/heads/"):]
		}
	}
	return nil
}

// latestRuns is the newest check run per name that app made on sha.
func (r *repository) latestRuns(sha, app string) []*checkRun {
	idx := map[string]int{}
	var out []*checkRun
	for _, cr := range r.checkRuns {
		if cr.sha != sha || cr.app != app {
			continue
		}
		if i, ok := idx[cr.name]; ok {
			out[i] = cr
			continue
		}
		idx[cr.name] = len(out)
		out = append(out, cr)
	}
	return out
}

// suiteConclusions ranks check run conclusions for a suite's summary: the
// first one any run has wins.
var suiteConclusions = []string{"action_required", "failure", "timed_out", "cancelled", "stale", "success", "neutral", "skipped"}

// suiteState is the status and conclusion of app's check suite on sha,
// from its latest runs: queued without runs, in_progress while any run
// is not completed, else completed with the worst conclusion.
func suiteState(runs []*checkRun) (status, conclusion string) {
	if len(runs) == 0 {
		return "queued", ""
	}
	best := len(suiteConclusions)
	for _, cr := range runs {
		if cr.status != "completed" {
			return "in_progress", ""
		}
		if i := slices.Index(suiteConclusions, cr.conclusion); i >= 0 && i < best {
			best = i
		}
	}
	if best == len(suiteConclusions) {
		return "completed", "neutral"
	}
	return "completed", suiteConclusions[best]
}

// checkSuiteJSON is the check suite of app on sha as webhook payloads
// carry it, with conclusion overriding the one its runs give.
func (s *Server) checkSuiteJSON(c *call, r *repository, sha, app, conclusion string) map[string]any {
	id := r.suiteID(s, sha, app)
	runs := r.latestRuns(sha, app)
	status, concl := suiteState(runs)
	if conclusion != "" {
		status, concl = "completed", conclusion
	}
	cm := r.commits[sha]
	created, updated := cm.time, cm.time
	for _, cr := range runs {
		if !cr.started.IsZero() && cr.started.Before(created) {
			created = cr.started
		}
		for _, t := range []time.Time{cr.started, cr.completed} {
			if t.After(updated) {
				updated = t
			}
		}
	}
	before := zeroSHA
	if len(cm.parents) > 0 {
		before = cm.parents[0]
	}
	api := c.apiURL("/repos/%s/check-suites/%d", r.fullName(), id)
	return map[string]any{
		"id":                      id,
		"node_id":                 nodeID("CS", id),
		"head_branch":             r.headBranch(sha),
		"head_sha":                sha,
		"status":                  status,
		"conclusion":              nullString(concl),
		"url":                     api,
		"before":                  before,
		"after":                   sha,
		"pull_requests":           s.checkPullsJSON(c, r, sha),
		"app":                     s.integrationJSON(app),
		"created_at":              timestamp(created),
		"updated_at":              timestamp(updated),
		"rerequestable":           true,
		"runs_rerequestable":      true,
		"latest_check_runs_count": len(runs),
		"check_runs_url":          api + "/check-runs",
		"head_commit":             simpleCommitJSON(cm),
	}
}

// CheckSuiteEvent is the body of a check_suite webhook (action completed,
// requested or rerequested) for the check suite of app (an App slug; "ci"
// when "") on headSHA. Its status and conclusion follow the latest check
// runs app made there (AddCheckRun, CompleteCheckRun): completed with the
// worst conclusion once all are, which a non-empty conclusion overrides.
// pull_requests lists the open pull requests whose head is headSHA, as
// GitHub does. It panics for "completed" while the suite is not.
func (s *Server) CheckSuiteEvent(owner, repo, headSHA, app, conclusion string, action string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(owner + "/" + repo)
	if r.commits[headSHA] == nil {
		panic(fmt.Sprintf("githubtest: CheckSuiteEvent: no commit %s in %s", headSHA, r.fullName()))
	}
	if app == "" {
		app = "ci"
	}
	c := s.hookCall()
	suite := s.checkSuiteJSON(c, r, headSHA, app, conclusion)
	if action == "completed" && suite["status"] != "completed" {
		panic(fmt.Sprintf("githubtest: CheckSuiteEvent(completed): %s's suite on %s is %s; complete its runs or pass a conclusion", app, headSHA, suite["status"]))
	}
	ev := example("check_suite.completed")
	ev["action"] = action
	ev["check_suite"] = fill(suite, ev["check_suite"])
	return s.payload(ev, c, r, app+"[bot]")
}

// CheckRunEvent is the body of a check_run webhook (action created,
// completed, rerequested or requested_action) for check run checkRunID as
// the fake holds it, with its check suite and, as GitHub does, the open
// pull requests whose head is the run's head_sha. It panics for
// "completed" while the run is not.
func (s *Server) CheckRunEvent(owner, repo string, checkRunID int64, action string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(owner + "/" + repo)
	var cr *checkRun
	for _, x := range r.checkRuns {
		if x.id == checkRunID {
			cr = x
		}
	}
	if cr == nil {
		panic(fmt.Sprintf("githubtest: CheckRunEvent: no check run %d in %s", checkRunID, r.fullName()))
	}
	if action == "completed" && cr.status != "completed" {
		panic(fmt.Sprintf("githubtest: CheckRunEvent(completed): check run %d is %s", checkRunID, cr.status))
	}
	c := s.hookCall()
	ev := example("check_run.completed")
	ev["action"] = action
	run := s.checkRunJSON(c, r, cr)
	exRun, _ := ev["check_run"].(map[string]any)
	// The run's suite as the example has it: the fields it lists, with
	// the fake's values.
	exSuite, _ := exRun["check_suite"].(map[string]any)
	full := s.checkSuiteJSON(c, r, cr.sha, cr.app, "")
	suite := map[string]any{}
	for k := range exSuite {
		if v, ok := full[k]; ok {
			suite[k] = v
		}
	}
	run["check_suite"] = fill(suite, exSuite)
	if run["details_url"] == nil {
		// GitHub falls back to the App's homepage, and the webhook
		// schema, unlike the REST one, has no null here.
		if app, ok := s.integrationJSON(cr.app).(map[string]any); ok {
			run["details_url"] = app["external_url"]
		}
	}
	ev["check_run"] = fill(run, exRun)
	return s.payload(ev, c, r, cr.app+"[bot]")
}

// maxStatusBranches is how many branches a status payload lists.
const maxStatusBranches = 10

// StatusEvent is the body of a status webhook for the newest commit
// status with context and state on sha (SetStatus or a client's POST made
// it): the commit, and the branches that contain it (at most 10). Status
// payloads name no pull requests. It panics when sha has no such status.
func (s *Server) StatusEvent(owner, repo, sha, context, state string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(owner + "/" + repo)
	var st *status
	for _, x := range r.statuses[sha] {
		if x.context == context && x.state == state {
			st = x
		}
	}
	if st == nil {
		panic(fmt.Sprintf("githubtest: StatusEvent: no %s status %q on %s in %s", state, context, sha, r.fullName()))
	}
	c := s.hookCall()
	ev := example("status")
	delete(ev, "action")
	cm := s.listedCommitJSON(c, r, r.commits[sha])
	if inner, ok := cm["commit"].(map[string]any); ok {
		inner["verification"] = map[string]any{
			"verified": false, "reason": "unsigned", "signature": nil, "payload": nil, "verified_at": nil,
		}
	}
	branches := []map[string]any{}
	for _, ref := range r.sortedRefs("refs/heads/") {
		head := r.refs[ref]
		if len(branches) == maxStatusBranches || !r.isAncestor(sha, head) {
			continue
		}
		name := ref[len("refs/heads/"):]
		branches = append(branches, map[string]any{
			"name":      name,
			"commit":    map[string]any{"sha": head, "url": c.apiURL("/repos/%s/commits/%s", r.fullName(), head)},
			"protected": r.protections[name] != nil || len(r.rulesFor(name)) > 0,
		})
	}
	ev["id"] = st.id
	ev["sha"] = sha
	ev["name"] = r.fullName()
	ev["target_url"] = nullString(st.targetURL)
	ev["avatar_url"] = fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", s.userID(st.creator))
	ev["context"] = st.context
	ev["description"] = nullString(st.description)
	ev["state"] = st.state
	ev["commit"] = cm
	ev["branches"] = branches
	ev["created_at"] = timestamp(st.created)
	ev["updated_at"] = timestamp(st.created)
	return s.payload(ev, c, r, st.creator)
}
