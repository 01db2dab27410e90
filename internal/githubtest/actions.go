package githubtest

import (
	"fmt"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxDispatchInputs is GitHub's limit on workflow_dispatch inputs (25 since December 2025).
const maxDispatchInputs = 25

// Dispatch is a workflow_dispatch the fake received.
type Dispatch struct {
	// Workflow is the workflow id or file name from the URL.
	Workflow string
	Ref      string
	// Inputs holds the inputs as strings, as the workflow sees them.
	Inputs map[string]string
	Actor  string
	At     time.Time
	// RunID is the workflow run the dispatch started.
	RunID int64
}

type workflowRun struct {
	id         int64
	number     int
	workflow   string
	workflowID int64
	event      string
	branch     string
	sha        string
	status     string
	conclusion string
	actor      string
	title      string // display_title
	created    time.Time
	updated    time.Time
	// A run whose WorkflowSpec has a Conclusion moves as it is served:
	// in_progress at once, and completed with conclude (if not empty) once
	// it has been served in progress after times.
	moves    bool
	conclude string
	after    int
	served   int
}

// WorkflowRun is a workflow run, for assertions and for completing runs.
type WorkflowRun struct {
	ID         int64
	Workflow   string
	Event      string
	HeadBranch string
	HeadSHA    string
	Status     string
	Conclusion string
	// Title is the run's display_title: the workflow's run-name as
	// SetWorkflow describes it, else the workflow's name.
	Title string
	// HTMLURL is the run's page, as html_url says.
	HTMLURL string
}

// WorkflowSpec says what a dispatched workflow does, since the fake cannot
// run its YAML.
type WorkflowSpec struct {
	// RunName is the workflow's run-name: a dispatched run's display_title
	// is RunName with each ${{ inputs.NAME }} (or ${{ github.event.inputs.NAME }})
	// replaced by that input, empty when the dispatch did not give it.
	// Empty RunName: GitHub's default for a dispatched run, the workflow's
	// name.
	RunName string
	// Conclusion, when set, decides how each dispatched run ends: it gets a
	// copy of the dispatch's inputs and returns the run's conclusion
	// (success, failure, cancelled, timed_out, …), or "" to leave the run
	// in progress until SetWorkflowRunStatus. It is called with the fake's
	// lock held and must not call the Server. Without it, runs stay queued.
	Conclusion func(inputs map[string]string) string
	// InProgress is how many times a run with a conclusion is served
	// (listed or fetched) in_progress before it is served completed; 0
	// completes it the first time it is served.
	InProgress int
}

// workflowSpecs holds each Server's WorkflowSpecs, guarded by the Server's
// lock. It lives here rather than on the repository so that the Actions
// fake stays in this file; an entry lasts as long as the process, which
// for a test binary is fine.
var workflowSpecs sync.Map // *Server → map[workflowKey]WorkflowSpec

type workflowKey struct {
	repo string
	id   int64
}

// SetWorkflow says what workflow (a file name such as deploy.yml, or its
// numeric id) in repo does when it is dispatched from now on: how it
// titles its runs (its run-name) and how they end.
func (s *Server) SetWorkflow(repo, workflow string, spec WorkflowSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	m, _ := workflowSpecs.LoadOrStore(s, map[workflowKey]WorkflowSpec{})
	m.(map[workflowKey]WorkflowSpec)[workflowKey{r.fullName(), r.workflowID(s, workflow)}] = spec
}

// workflowSpec is the spec of workflow id in r; the caller holds s.mu.
func (s *Server) workflowSpec(r *repository, id int64) (WorkflowSpec, bool) {
	m, ok := workflowSpecs.Load(s)
	if !ok {
		return WorkflowSpec{}, false
	}
	spec, ok := m.(map[workflowKey]WorkflowSpec)[workflowKey{r.fullName(), id}]
	return spec, ok
}

var inputExpr = regexp.MustCompile(`\$\{\{\s*(?:github\.event\.)?inputs\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}`)

// ExpandRunName evaluates a run-name the way GitHub does for the inputs
// expressions it contains (${{ inputs.NAME }}); other expressions are
// left as they are.
func ExpandRunName(runName string, inputs map[string]string) string {
	return inputExpr.ReplaceAllStringFunc(runName, func(m string) string {
		return inputs[inputExpr.FindStringSubmatch(m)[1]]
	})
}

// workflowName is the name GitHub shows for a workflow file; the fake has
// no YAML to read the name from, so it is the file's base name.
func workflowName(workflow string) string {
	file := workflow
	if _, err := strconv.ParseInt(file, 10, 64); err == nil {
		file = "workflow-" + file + ".yml"
	}
	return strings.TrimSuffix(strings.TrimSuffix(path.Base(file), ".yml"), ".yaml")
}

// serve moves a run with a planned conclusion along as it is served.
func (w *workflowRun) serve(now time.Time) {
	if w.status == "completed" || !w.moves {
		return
	}
	if w.conclude != "" && w.served >= w.after {
		w.status, w.conclusion, w.updated = "completed", w.conclude, now
		return
	}
	w.served++
	if w.status != "in_progress" {
		w.status, w.updated = "in_progress", now
	}
}

// Dispatches lists the workflow dispatches the repository received, oldest
// first.
func (s *Server) Dispatches(repo string) []Dispatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Dispatch
	for _, d := range s.mustRepo(repo).dispatches {
		d.Inputs = cloneMap(d.Inputs)
		out = append(out, d)
	}
	return out
}

// WorkflowRuns lists the repository's workflow runs, oldest first.
func (s *Server) WorkflowRuns(repo string) []WorkflowRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []WorkflowRun
	r := s.mustRepo(repo)
	for _, w := range r.runs {
		out = append(out, WorkflowRun{
			ID: w.id, Workflow: w.workflow, Event: w.event, HeadBranch: w.branch, HeadSHA: w.sha,
			Status: w.status, Conclusion: w.conclusion, Title: w.title,
			HTMLURL: fmt.Sprintf("%s%s/actions/runs/%d", s.WebURL(), r.fullName(), w.id),
		})
	}
	return out
}

// SetWorkflowRunStatus moves a workflow run to status (queued, in_progress,
// completed) with conclusion (success, failure, cancelled, …), as the
// Actions runner would; the run's WorkflowSpec no longer moves it.
func (s *Server) SetWorkflowRunStatus(repo string, runID int64, status, conclusion string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.mustRepo(repo).runs {
		if w.id == runID {
			w.status, w.conclusion, w.updated, w.moves = status, conclusion, s.now(), false
			return
		}
	}
	panic(fmt.Sprintf("githubtest: SetWorkflowRunStatus: no run %d in %s", runID, repo))
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// workflowID gives each workflow file a stable numeric id; a numeric URL
// parameter is taken as the id itself.
func (r *repository) workflowID(s *Server, workflow string) int64 {
	if id, err := strconv.ParseInt(workflow, 10, 64); err == nil {
		return id
	}
	if id, ok := r.workflowIDs[workflow]; ok {
		return id
	}
	id := s.newID()
	r.workflowIDs[workflow] = id
	return id
}

func createDispatch(c *call) (int, any) {
	r := c.repo
	var req struct {
		Ref    string         `json:"ref"`
		Inputs map[string]any `json:"inputs"`
	}
	if err := c.decode(&req); err != nil {
		return badJSON()
	}
	if req.Ref == "" {
		return invalid("WorkflowDispatch", "ref", "missing_field", "")
	}
	if len(req.Inputs) > maxDispatchInputs {
		return fail(http.StatusUnprocessableEntity, fmt.Sprintf("you may only define up to %d `inputs` for a `workflow_dispatch` event", maxDispatchInputs))
	}
	sha, ok := r.resolveRef(req.Ref)
	if !ok {
		return fail(http.StatusUnprocessableEntity, "No ref found for: "+req.Ref)
	}
	inputs := map[string]string{}
	for k, v := range req.Inputs {
		if s, ok := v.(string); ok {
			inputs[k] = s
		} else {
			inputs[k] = fmt.Sprint(v)
		}
	}
	wf := c.param("workflow_id")
	now := c.s.now()
	run := &workflowRun{
		id: c.s.newID(), number: len(r.runs) + 1, workflow: wf, workflowID: r.workflowID(c.s, wf),
		event: "workflow_dispatch", branch: strings.TrimPrefix(strings.TrimPrefix(req.Ref, "refs/heads/"), "refs/tags/"),
		sha: sha, status: "queued", actor: c.actor, created: now, updated: now, title: workflowName(wf),
	}
	if spec, ok := c.s.workflowSpec(r, run.workflowID); ok {
		if spec.RunName != "" {
			run.title = ExpandRunName(spec.RunName, inputs)
		}
		if spec.Conclusion != nil {
			run.moves, run.conclude, run.after = true, spec.Conclusion(cloneMap(inputs)), spec.InProgress
		}
	}
	r.runs = append(r.runs, run)
	r.dispatches = append(r.dispatches, Dispatch{Workflow: wf, Ref: req.Ref, Inputs: inputs, Actor: c.actor, At: now, RunID: run.id})
	return http.StatusNoContent, nil
}

func (s *Server) workflowRunJSON(c *call, r *repository, w *workflowRun) map[string]any {
	api := c.apiURL("/repos/%s/actions/runs/%d", r.fullName(), w.id)
	file := w.workflow
	if _, err := strconv.ParseInt(file, 10, 64); err == nil {
		file = "workflow-" + file + ".yml"
	}
	cm := r.commits[w.sha]
	name, email := gitUser(cm.author)
	who := map[string]string{"name": name, "email": email}
	repo := s.repoJSON(c, r)
	return map[string]any{
		"id":                   w.id,
		"name":                 workflowName(w.workflow),
		"node_id":              nodeID("WFR", w.id),
		"check_suite_id":       w.id + 1,
		"check_suite_node_id":  nodeID("CS", w.id+1),
		"head_branch":          w.branch,
		"head_sha":             w.sha,
		"path":                 ".github/workflows/" + path.Base(file),
		"display_title":        w.title,
		"run_number":           w.number,
		"run_attempt":          1,
		"event":                w.event,
		"status":               w.status,
		"conclusion":           nullString(w.conclusion),
		"workflow_id":          w.workflowID,
		"url":                  api,
		"html_url":             fmt.Sprintf("%s%s/actions/runs/%d", s.WebURL(), r.fullName(), w.id),
		"pull_requests":        []any{},
		"created_at":           timestamp(w.created),
		"updated_at":           timestamp(w.updated),
		"run_started_at":       timestamp(w.created),
		"actor":                s.userJSON(w.actor),
		"triggering_actor":     s.userJSON(w.actor),
		"jobs_url":             api + "/jobs",
		"logs_url":             api + "/logs",
		"check_suite_url":      c.apiURL("/repos/%s/check-suites/%d", r.fullName(), w.id+1),
		"artifacts_url":        api + "/artifacts",
		"cancel_url":           api + "/cancel",
		"rerun_url":            api + "/rerun",
		"previous_attempt_url": nil,
		"workflow_url":         c.apiURL("/repos/%s/actions/workflows/%d", r.fullName(), w.workflowID),
		"head_commit": map[string]any{
			"id": w.sha, "tree_id": treeSHA(cm.files), "message": cm.message, "timestamp": timestamp(cm.time),
			"author": who, "committer": who,
		},
		"repository":         repo,
		"head_repository":    repo,
		"head_repository_id": r.id,
	}
}

// filterRuns applies the list endpoints' query filters.
func filterRuns(c *call, runs []*workflowRun) []*workflowRun {
	q := c.query
	var out []*workflowRun
	for _, w := range slices.Backward(runs) {
		if (q.Has("event") && q.Get("event") != w.event) || (q.Has("branch") && q.Get("branch") != w.branch) ||
			(q.Has("head_sha") && q.Get("head_sha") != w.sha) || (q.Has("actor") && q.Get("actor") != w.actor) {
			continue
		}
		if st := q.Get("status"); st != "" && st != w.status && st != w.conclusion {
			continue
		}
		if cr := q.Get("created"); strings.HasPrefix(cr, ">=") {
			if t, err := time.Parse(time.RFC3339, strings.TrimPrefix(cr, ">=")); err == nil && w.created.Before(t) {
				continue
			}
		}
		out = append(out, w)
	}
	return out
}

func runsPage(c *call, runs []*workflowRun) (int, any) {
	list := filterRuns(c, runs)
	out := []map[string]any{}
	for _, w := range paginate(c, list) {
		w.serve(c.s.now())
		out = append(out, c.s.workflowRunJSON(c, c.repo, w))
	}
	return http.StatusOK, map[string]any{"total_count": len(list), "workflow_runs": out}
}

func listWorkflowRuns(c *call) (int, any) { return runsPage(c, c.repo.runs) }

func listWorkflowRunsForWorkflow(c *call) (int, any) {
	id := c.repo.workflowID(c.s, c.param("workflow_id"))
	var runs []*workflowRun
	for _, w := range c.repo.runs {
		if w.workflowID == id {
			runs = append(runs, w)
		}
	}
	return runsPage(c, runs)
}

func getWorkflowRun(c *call) (int, any) {
	id, _ := c.intParam("run_id")
	for _, w := range c.repo.runs {
		if w.id == id {
			w.serve(c.s.now())
			return http.StatusOK, c.s.workflowRunJSON(c, c.repo, w)
		}
	}
	return notFound()
}
