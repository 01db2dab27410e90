package githubtest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

type status struct {
	id          int64
	sha         string
	state       string
	context     string
	description string
	targetURL   string
	creator     string
	created     time.Time
}

// Status is a commit status, for assertions.
type Status struct {
	ID          int64
	SHA         string
	Context     string
	State       string
	Description string
	TargetURL   string
	Creator     string
	CreatedAt   time.Time
}

type checkRun struct {
	id          int64
	sha         string
	name        string
	app         string
	status      string
	conclusion  string
	detailsURL  string
	externalID  string
	title       string
	summary     string
	text        string
	annotations int
	started     time.Time
	completed   time.Time
	suite       int64
	updates     int
}

// CheckRun is a check run, for assertions.
type CheckRun struct {
	ID          int64
	HeadSHA     string
	Name        string
	App         string // slug of the App that created it
	Status      string
	Conclusion  string
	DetailsURL  string
	ExternalID  string
	Title       string
	Summary     string
	Text        string
	StartedAt   time.Time
	CompletedAt time.Time
	// Updates counts PATCHes, to check that bursts were coalesced.
	Updates int
}

// SetStatus adds a commit status as a CI system would (creator "ci-bot").
func (s *Server) SetStatus(repo, sha, context, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	if r.commits[sha] == nil {
		panic(fmt.Sprintf("githubtest: SetStatus: no commit %s in %s", sha, repo))
	}
	r.statuses[sha] = append(r.statuses[sha], &status{
		id: s.newID(), sha: sha, state: state, context: context, creator: "ci-bot", created: s.now(),
	})
}

// Statuses lists the statuses posted to sha, oldest first.
func (s *Server) Statuses(repo, sha string) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Status
	for _, st := range s.mustRepo(repo).statuses[sha] {
		out = append(out, Status{
			ID: st.id, SHA: st.sha, Context: st.context, State: st.state, Description: st.description,
			TargetURL: st.targetURL, Creator: st.creator, CreatedAt: st.created,
		})
	}
	return out
}

// AddCheckRun adds a check run as another App (a CI system named by the
// app slug, e.g. "ci") would, and returns its id. A non-empty conclusion
// completes it.
func (s *Server) AddCheckRun(repo, sha, name, app, status, conclusion string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	if r.commits[sha] == nil {
		panic(fmt.Sprintf("githubtest: AddCheckRun: no commit %s in %s", sha, repo))
	}
	if status == "" {
		status = "queued"
	}
	if app == "" {
		app = "ci"
	}
	now := s.now()
	cr := &checkRun{id: s.newID(), sha: sha, name: name, app: app, status: status, conclusion: conclusion, started: now}
	if conclusion != "" {
		cr.status, cr.completed = "completed", now
	}
	cr.suite = r.suiteID(s, sha, app)
	r.checkRuns = append(r.checkRuns, cr)
	return cr.id
}

// CompleteCheckRun completes a check run with conclusion, as its App would.
func (s *Server) CompleteCheckRun(repo string, id int64, conclusion string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cr := range s.mustRepo(repo).checkRuns {
		if cr.id == id {
			cr.status, cr.conclusion, cr.completed = "completed", conclusion, s.now()
			return
		}
	}
	panic(fmt.Sprintf("githubtest: CompleteCheckRun: no check run %d in %s", id, repo))
}

// CheckRuns lists every check run on sha, oldest first.
func (s *Server) CheckRuns(repo, sha string) []CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CheckRun
	for _, cr := range s.mustRepo(repo).checkRuns {
		if cr.sha == sha {
			out = append(out, cr.public())
		}
	}
	return out
}

// CheckRun returns the latest check run named name on sha.
func (s *Server) CheckRun(repo, sha, name string) (CheckRun, bool) {
	runs := s.CheckRuns(repo, sha)
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Name == name {
			return runs[i], true
		}
	}
	return CheckRun{}, false
}

func (cr *checkRun) public() CheckRun {
	return CheckRun{
		ID: cr.id, HeadSHA: cr.sha, Name: cr.name, App: cr.app, Status: cr.status, Conclusion: cr.conclusion,
		DetailsURL: cr.detailsURL, ExternalID: cr.externalID, Title: cr.title, Summary: cr.summary, Text: cr.text,
		StartedAt: cr.started, CompletedAt: cr.completed, Updates: cr.updates,
	}
}

// suiteID groups check runs per commit and App, as GitHub's check suites do.
func (r *repository) suiteID(s *Server, sha, app string) int64 {
	key := sha + "/" + app
	if id, ok := r.suites[key]; ok {
		return id
	}
	id := s.newID()
	r.suites[key] = id
	return id
}

var statusStates = []string{"error", "failure", "pending", "success"}

func (s *Server) statusJSON(c *call, r *repository, st *status) map[string]any {
	return map[string]any{
		"url":         c.apiURL("/repos/%s/statuses/%s", r.fullName(), st.sha),
		"avatar_url":  fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", s.userID(st.creator)),
		"id":          st.id,
		"node_id":     nodeID("SC", st.id),
		"state":       st.state,
		"description": nullString(st.description),
		"target_url":  nullString(st.targetURL),
		"context":     st.context,
		"created_at":  timestamp(st.created),
		"updated_at":  timestamp(st.created),
		"creator":     s.userJSON(st.creator),
	}
}

func createStatus(c *call) (int, any) {
	r := c.repo
	sha := c.param("sha")
	if r.commits[sha] == nil {
		return invalid("Status", "sha", "invalid", "No commit found for SHA: "+sha)
	}
	var req struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
		Context     string `json:"context"`
	}
	if err := c.decode(&req); err != nil {
		return badJSON()
	}
	if !slices.Contains(statusStates, req.State) {
		return invalid("Status", "state", "custom", "state is not included in the list")
	}
	if req.Context == "" {
		req.Context = "default"
	}
	st := &status{
		id: c.s.newID(), sha: sha, state: req.State, context: req.Context,
		description: req.Description, targetURL: req.TargetURL, creator: c.actor, created: c.s.now(),
	}
	r.statuses[sha] = append(r.statuses[sha], st)
	return http.StatusCreated, c.s.statusJSON(c, r, st)
}

func listStatuses(c *call) (int, any) {
	r := c.repo
	sha, ok := r.resolveRef(c.param("ref"))
	if !ok {
		return notFound()
	}
	all := slices.Clone(r.statuses[sha])
	slices.Reverse(all) // newest first, as GitHub lists them
	out := []map[string]any{}
	for _, st := range paginate(c, all) {
		out = append(out, c.s.statusJSON(c, r, st))
	}
	return http.StatusOK, out
}

// latestStatuses keeps the newest status per context, in first-seen order.
func latestStatuses(list []*status) []*status {
	idx := map[string]int{}
	var out []*status
	for _, st := range list {
		if i, ok := idx[st.context]; ok {
			out[i] = st
			continue
		}
		idx[st.context] = len(out)
		out = append(out, st)
	}
	return out
}

func getCombinedStatus(c *call) (int, any) {
	r := c.repo
	sha, ok := r.resolveRef(c.param("ref"))
	if !ok {
		return fail(http.StatusNotFound, "No commit found for SHA: "+c.param("ref"))
	}
	latest := latestStatuses(r.statuses[sha])
	// GitHub: failure if any context errored or failed, pending if any is
	// pending or there are none, success otherwise.
	state := "success"
	if len(latest) == 0 {
		state = "pending"
	}
	for _, st := range latest {
		switch st.state {
		case "error", "failure":
			state = "failure"
		case "pending":
			if state != "failure" {
				state = "pending"
			}
		}
	}
	list := []map[string]any{}
	for _, st := range latest {
		m := c.s.statusJSON(c, r, st)
		delete(m, "creator")
		list = append(list, m)
	}
	return http.StatusOK, map[string]any{
		"state":       state,
		"statuses":    list,
		"sha":         sha,
		"total_count": len(latest),
		"repository":  c.s.repoJSON(c, r),
		"commit_url":  c.apiURL("/repos/%s/commits/%s", r.fullName(), sha),
		"url":         c.apiURL("/repos/%s/commits/%s/status", r.fullName(), sha),
	}
}

func (s *Server) checkRunJSON(c *call, r *repository, cr *checkRun) map[string]any {
	api := c.apiURL("/repos/%s/check-runs/%d", r.fullName(), cr.id)
	return map[string]any{
		"id":           cr.id,
		"node_id":      nodeID("CR", cr.id),
		"head_sha":     cr.sha,
		"external_id":  cr.externalID,
		"url":          api,
		"html_url":     fmt.Sprintf("%s%s/runs/%d", s.WebURL(), r.fullName(), cr.id),
		"details_url":  nullString(cr.detailsURL),
		"status":       cr.status,
		"conclusion":   nullString(cr.conclusion),
		"started_at":   nullTime(cr.started),
		"completed_at": nullTime(cr.completed),
		"output": map[string]any{
			"title":             nullString(cr.title),
			"summary":           nullString(cr.summary),
			"text":              nullString(cr.text),
			"annotations_count": cr.annotations,
			"annotations_url":   api + "/annotations",
		},
		"name":          cr.name,
		"check_suite":   map[string]any{"id": cr.suite},
		"app":           s.integrationJSON(cr.app),
		"pull_requests": s.checkPullsJSON(c, r, cr.sha),
	}
}

// checkRunRequest is the body of create and update; pointers tell fields
// left out from fields cleared.
type checkRunRequest struct {
	Name        *string `json:"name"`
	HeadSHA     string  `json:"head_sha"`
	DetailsURL  *string `json:"details_url"`
	ExternalID  *string `json:"external_id"`
	Status      *string `json:"status"`
	Conclusion  *string `json:"conclusion"`
	StartedAt   *string `json:"started_at"`
	CompletedAt *string `json:"completed_at"`
	Output      *struct {
		Title       *string `json:"title"`
		Summary     *string `json:"summary"`
		Text        *string `json:"text"`
		Annotations []any   `json:"annotations"`
	} `json:"output"`
}

var (
	checkStatuses    = []string{"queued", "in_progress", "completed", "waiting", "requested", "pending"}
	checkConclusions = []string{"action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"}
)

// apply copies the request onto cr, enforcing GitHub's rules that tie
// status and conclusion together. It returns a 422 message or "".
func (req *checkRunRequest) apply(cr *checkRun, now time.Time) string {
	if req.Name != nil {
		cr.name = *req.Name
	}
	if req.DetailsURL != nil {
		cr.detailsURL = *req.DetailsURL
	}
	if req.ExternalID != nil {
		cr.externalID = *req.ExternalID
	}
	if req.StartedAt != nil {
		if t, err := time.Parse(time.RFC3339, *req.StartedAt); err == nil {
			cr.started = t
		}
	}
	if req.Output != nil {
		if req.Output.Title != nil {
			cr.title = *req.Output.Title
		}
		if req.Output.Summary != nil {
			cr.summary = *req.Output.Summary
		}
		if req.Output.Text != nil {
			cr.text = *req.Output.Text
		}
		cr.annotations += len(req.Output.Annotations)
		if len(cr.summary) > 65535 || len(cr.text) > 65535 {
			return "Only 65535 characters are allowed; " + strconv.Itoa(max(len(cr.summary), len(cr.text))) + " were supplied."
		}
	}
	if req.Status != nil {
		if !slices.Contains(checkStatuses, *req.Status) {
			return "Invalid request.\n\nNo subschema in \"anyOf\" matched."
		}
		cr.status = *req.Status
	}
	if req.Conclusion != nil && *req.Conclusion != "" {
		if !slices.Contains(checkConclusions, *req.Conclusion) {
			return "Invalid request.\n\nNo subschema in \"anyOf\" matched."
		}
		cr.conclusion = *req.Conclusion
		cr.status = "completed"
	}
	if cr.status == "completed" {
		if cr.conclusion == "" {
			return "Invalid request.\n\n\"conclusion\" wasn't supplied."
		}
		cr.completed = now
		if req.CompletedAt != nil {
			if t, err := time.Parse(time.RFC3339, *req.CompletedAt); err == nil {
				cr.completed = t
			}
		}
	} else if cr.conclusion != "" {
		// Moving a completed run back to queued or in_progress clears its
		// result, as GitHub does on re-run.
		cr.conclusion, cr.completed = "", time.Time{}
	}
	return ""
}

func createCheckRun(c *call) (int, any) {
	r := c.repo
	var req checkRunRequest
	if err := c.decode(&req); err != nil {
		return badJSON()
	}
	if req.Name == nil || *req.Name == "" {
		return invalid("CheckRun", "name", "missing_field", "")
	}
	if r.commits[req.HeadSHA] == nil {
		return fail(http.StatusUnprocessableEntity, "No commit found for SHA: "+req.HeadSHA)
	}
	now := c.s.now()
	cr := &checkRun{id: c.s.newID(), sha: req.HeadSHA, app: c.app, status: "queued", started: now}
	if msg := req.apply(cr, now); msg != "" {
		return fail(http.StatusUnprocessableEntity, msg)
	}
	cr.suite = r.suiteID(c.s, cr.sha, cr.app)
	r.checkRuns = append(r.checkRuns, cr)
	return http.StatusCreated, c.s.checkRunJSON(c, r, cr)
}

func findCheckRun(c *call) *checkRun {
	id, ok := c.intParam("check_run_id")
	if !ok {
		return nil
	}
	for _, cr := range c.repo.checkRuns {
		if cr.id == id {
			return cr
		}
	}
	return nil
}

func getCheckRun(c *call) (int, any) {
	cr := findCheckRun(c)
	if cr == nil {
		return notFound()
	}
	return http.StatusOK, c.s.checkRunJSON(c, c.repo, cr)
}

func updateCheckRun(c *call) (int, any) {
	cr := findCheckRun(c)
	if cr == nil {
		return notFound()
	}
	// Only the App that created a check run may change it.
	if cr.app != c.app {
		return fail(http.StatusForbidden, "Invalid app_id `"+c.app+"` - check run can only be modified by the GitHub App that created it.")
	}
	var req checkRunRequest
	if err := c.decode(&req); err != nil {
		return badJSON()
	}
	updated := *cr
	if msg := req.apply(&updated, c.s.now()); msg != "" {
		return fail(http.StatusUnprocessableEntity, msg)
	}
	updated.updates++
	*cr = updated
	return http.StatusOK, c.s.checkRunJSON(c, c.repo, cr)
}

func listCheckRuns(c *call) (int, any) {
	r := c.repo
	sha, ok := r.resolveRef(c.param("ref"))
	if !ok {
		return fail(http.StatusUnprocessableEntity, "No commit found for SHA: "+c.param("ref"))
	}
	var list []*checkRun
	for _, cr := range r.checkRuns {
		if cr.sha != sha {
			continue
		}
		if n := c.query.Get("check_name"); n != "" && cr.name != n {
			continue
		}
		if st := c.query.Get("status"); st != "" && cr.status != st {
			continue
		}
		if a := c.query.Get("app_id"); a != "" && a != strconv.FormatInt(c.s.appIDOf(cr.app), 10) {
			continue
		}
		list = append(list, cr)
	}
	slices.Reverse(list) // newest first
	if f := c.query.Get("filter"); f == "" || strings.EqualFold(f, "latest") {
		// "latest" keeps the most recent run per name and App.
		seen := map[string]bool{}
		kept := list[:0]
		for _, cr := range list {
			if key := cr.name + "\x00" + cr.app; !seen[key] {
				seen[key] = true
				kept = append(kept, cr)
			}
		}
		list = kept
	}
	out := []map[string]any{}
	for _, cr := range paginate(c, list) {
		out = append(out, c.s.checkRunJSON(c, r, cr))
	}
	return http.StatusOK, map[string]any{"total_count": len(list), "check_runs": out}
}

// pendingChecks lists the contexts and check names on sha that are not
// (yet) successful, which is what blocks a deployment without
// required_contexts.
func (r *repository) pendingChecks(sha string) []string {
	var out []string
	for _, st := range latestStatuses(r.statuses[sha]) {
		if st.state != "success" {
			out = append(out, st.context)
		}
	}
	latest := map[string]*checkRun{}
	var order []string
	for _, cr := range r.checkRuns {
		if cr.sha != sha {
			continue
		}
		key := cr.name + "\x00" + cr.app
		if latest[key] == nil {
			order = append(order, key)
		}
		latest[key] = cr
	}
	for _, key := range order {
		cr := latest[key]
		switch {
		case cr.status != "completed":
			out = append(out, cr.name)
		case cr.conclusion == "success", cr.conclusion == "neutral", cr.conclusion == "skipped":
		default:
			out = append(out, cr.name)
		}
	}
	return out
}
