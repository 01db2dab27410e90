package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

type deployment struct {
	id               int64
	sha              string
	ref              string
	task             string
	environment      string
	description      string
	payload          json.RawMessage
	autoMerge        bool
	requiredContexts []string // nil when the request left it out
	transient        bool
	production       bool
	creator          string
	app              string
	created          time.Time
	statuses         []*deploymentStatus
}

type deploymentStatus struct {
	id             int64
	state          string
	description    string
	environment    string
	targetURL      string
	logURL         string
	environmentURL string
	creator        string
	app            string
	created        time.Time
}

// Deployment is a GitHub deployment with its statuses, for assertions.
type Deployment struct {
	ID          int64
	SHA         string
	Ref         string
	Task        string
	Environment string
	Description string
	// Payload is the payload as sent (a JSON object or string).
	Payload   json.RawMessage
	AutoMerge bool
	// RequiredContexts is nil when the request omitted the field.
	RequiredContexts []string
	Creator          string
	CreatedAt        time.Time
	// Statuses are oldest first.
	Statuses []DeploymentStatus
}

// DeploymentStatus is one status of a deployment.
type DeploymentStatus struct {
	ID             int64
	State          string
	Description    string
	Environment    string
	LogURL         string
	EnvironmentURL string
	Creator        string
	CreatedAt      time.Time
}

var deploymentStates = []string{"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}

// Deployments lists the repository's deployments, oldest first.
func (s *Server) Deployments(repo string) []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Deployment
	for _, d := range s.mustRepo(repo).deployments {
		pd := Deployment{
			ID: d.id, SHA: d.sha, Ref: d.ref, Task: d.task, Environment: d.environment, Description: d.description,
			Payload: slices.Clone(d.payload), AutoMerge: d.autoMerge, RequiredContexts: cloneStrings(d.requiredContexts),
			Creator: d.creator, CreatedAt: d.created,
		}
		for _, st := range d.statuses {
			pd.Statuses = append(pd.Statuses, DeploymentStatus{
				ID: st.id, State: st.state, Description: st.description, Environment: st.environment,
				LogURL: st.logURL, EnvironmentURL: st.environmentURL, Creator: st.creator, CreatedAt: st.created,
			})
		}
		out = append(out, pd)
	}
	return out
}

func (s *Server) deploymentJSON(c *call, r *repository, d *deployment) map[string]any {
	api := c.apiURL("/repos/%s/deployments/%d", r.fullName(), d.id)
	var payload any = map[string]any{}
	if len(d.payload) > 0 {
		_ = json.Unmarshal(d.payload, &payload)
	}
	updated := d.created
	if n := len(d.statuses); n > 0 {
		updated = d.statuses[n-1].created
	}
	return map[string]any{
		"url":                      api,
		"id":                       d.id,
		"node_id":                  nodeID("DE", d.id),
		"sha":                      d.sha,
		"ref":                      d.ref,
		"task":                     d.task,
		"payload":                  payload,
		"original_environment":     d.environment,
		"environment":              d.environment,
		"description":              nullString(d.description),
		"creator":                  s.userJSON(d.creator),
		"created_at":               timestamp(d.created),
		"updated_at":               timestamp(updated),
		"statuses_url":             api + "/statuses",
		"repository_url":           c.apiURL("/repos/%s", r.fullName()),
		"transient_environment":    d.transient,
		"production_environment":   d.production,
		"performed_via_github_app": s.integrationJSON(d.app),
	}
}

func (s *Server) deploymentStatusJSON(c *call, r *repository, d *deployment, st *deploymentStatus) map[string]any {
	dep := c.apiURL("/repos/%s/deployments/%d", r.fullName(), d.id)
	return map[string]any{
		"url":                      fmt.Sprintf("%s/statuses/%d", dep, st.id),
		"id":                       st.id,
		"node_id":                  nodeID("DES", st.id),
		"state":                    st.state,
		"creator":                  s.userJSON(st.creator),
		"description":              st.description,
		"environment":              st.environment,
		"target_url":               st.targetURL,
		"log_url":                  st.logURL,
		"environment_url":          st.environmentURL,
		"created_at":               timestamp(st.created),
		"updated_at":               timestamp(st.created),
		"deployment_url":           dep,
		"repository_url":           c.apiURL("/repos/%s", r.fullName()),
		"performed_via_github_app": s.integrationJSON(st.app),
	}
}

func createDeployment(c *call) (int, any) {
	r := c.repo
	var req struct {
		Ref                   string          `json:"ref"`
		Task                  string          `json:"task"`
		AutoMerge             *bool           `json:"auto_merge"`
		RequiredContexts      *[]string       `json:"required_contexts"`
		Payload               json.RawMessage `json:"payload"`
		Environment           string          `json:"environment"`
		Description           *string         `json:"description"`
		TransientEnvironment  bool            `json:"transient_environment"`
		ProductionEnvironment *bool           `json:"production_environment"`
	}
	if err := c.decode(&req); err != nil {
		return badJSON()
	}
	if req.Ref == "" {
		return invalid("Deployment", "ref", "missing_field", "")
	}
	sha, ok := r.resolveRef(req.Ref)
	if !ok {
		return fail(http.StatusUnprocessableEntity, "No ref found for: "+req.Ref)
	}
	if req.Task == "" {
		req.Task = "deploy"
	}
	if req.Environment == "" {
		req.Environment = "production"
	}
	autoMerge := req.AutoMerge == nil || *req.AutoMerge
	if autoMerge {
		// GitHub tries to merge the default branch into an out-of-date
		// ref first; the fake cannot, so it answers the conflict.
		def := r.refs["refs/heads/"+r.defaultBranch]
		if !r.isAncestor(def, sha) {
			return fail(http.StatusConflict, fmt.Sprintf("Conflict merging %s into %s.", r.defaultBranch, req.Ref))
		}
	}
	var required []string
	if req.RequiredContexts != nil {
		required = nonNil(*req.RequiredContexts)
		var failed []string
		for _, ctx := range required {
			ok := false
			for _, st := range latestStatuses(r.statuses[sha]) {
				ok = ok || (st.context == ctx && st.state == "success")
			}
			for _, cr := range r.checkRuns {
				ok = ok || (cr.sha == sha && cr.name == ctx && cr.conclusion == "success")
			}
			if !ok {
				failed = append(failed, ctx)
			}
		}
		if len(failed) > 0 {
			return conflictChecks(req.Ref, failed)
		}
	} else if pending := r.pendingChecks(sha); len(pending) > 0 {
		// Without required_contexts every check on the ref must have
		// passed, the bot's own in-progress rollout check included.
		return conflictChecks(req.Ref, pending)
	}
	if len(req.Payload) == 0 || string(req.Payload) == "null" {
		req.Payload = json.RawMessage("{}")
	}
	if req.Payload[0] != '{' && req.Payload[0] != '"' {
		return invalid("Deployment", "payload", "invalid", "payload must be an object or a JSON string")
	}
	d := &deployment{
		id: c.s.newID(), sha: sha, ref: req.Ref, task: req.Task, environment: req.Environment,
		payload: slices.Clone(req.Payload), autoMerge: autoMerge, requiredContexts: required,
		transient: req.TransientEnvironment, production: req.Environment == "production",
		creator: c.actor, app: c.app, created: c.s.now(),
	}
	if req.Description != nil {
		d.description = *req.Description
	}
	if req.ProductionEnvironment != nil {
		d.production = *req.ProductionEnvironment
	}
	r.deployments = append(r.deployments, d)
	return http.StatusCreated, c.s.deploymentJSON(c, r, d)
}

func conflictChecks(ref string, contexts []string) (int, any) {
	return http.StatusConflict, map[string]any{
		"message":           "Conflict: Commit status checks failed for " + ref + ".",
		"errors":            []map[string]any{{"contexts": contexts, "resource": "Deployment", "field": "required_contexts", "code": "invalid"}},
		"documentation_url": "https://docs.github.com/rest/deployments/deployments#create-a-deployment",
		"status":            "409",
	}
}

func listDeployments(c *call) (int, any) {
	var list []*deployment
	for _, d := range slices.Backward(c.repo.deployments) {
		q := c.query
		if (q.Has("sha") && q.Get("sha") != d.sha) || (q.Has("ref") && q.Get("ref") != d.ref) ||
			(q.Has("task") && q.Get("task") != d.task) || (q.Has("environment") && q.Get("environment") != d.environment) {
			continue
		}
		list = append(list, d)
	}
	out := []map[string]any{}
	for _, d := range paginate(c, list) {
		out = append(out, c.s.deploymentJSON(c, c.repo, d))
	}
	return http.StatusOK, out
}

func findDeployment(c *call) *deployment {
	id, ok := c.intParam("deployment_id")
	if !ok {
		return nil
	}
	for _, d := range c.repo.deployments {
		if d.id == id {
			return d
		}
	}
	return nil
}

func getDeployment(c *call) (int, any) {
	d := findDeployment(c)
	if d == nil {
		return notFound()
	}
	return http.StatusOK, c.s.deploymentJSON(c, c.repo, d)
}

func createDeploymentStatus(c *call) (int, any) {
	r := c.repo
	d := findDeployment(c)
	if d == nil {
		return notFound()
	}
	var req struct {
		State          string `json:"state"`
		TargetURL      string `json:"target_url"`
		LogURL         string `json:"log_url"`
		Description    string `json:"description"`
		Environment    string `json:"environment"`
		EnvironmentURL string `json:"environment_url"`
		AutoInactive   *bool  `json:"auto_inactive"`
	}
	if err := c.decode(&req); err != nil {
		return badJSON()
	}
	if !slices.Contains(deploymentStates, req.State) {
		return invalid("DeploymentStatus", "state", "invalid", "")
	}
	if len(req.Description) > 140 {
		return invalid("DeploymentStatus", "description", "custom", "description is too long (maximum is 140 characters)")
	}
	// log_url is the newer name of target_url; GitHub mirrors them.
	if req.LogURL == "" {
		req.LogURL = req.TargetURL
	}
	if req.TargetURL == "" {
		req.TargetURL = req.LogURL
	}
	if req.Environment != "" {
		d.environment = req.Environment
	}
	now := c.s.now()
	st := &deploymentStatus{
		id: c.s.newID(), state: req.State, description: req.Description, environment: d.environment,
		targetURL: req.TargetURL, logURL: req.LogURL, environmentURL: req.EnvironmentURL,
		creator: c.actor, app: c.app, created: now,
	}
	d.statuses = append(d.statuses, st)
	// auto_inactive (default true): a new success marks earlier successful
	// deployments to the same non-production, non-transient environment
	// inactive.
	if req.State == "success" && (req.AutoInactive == nil || *req.AutoInactive) {
		for _, other := range r.deployments {
			if other == d || envKey(other.environment) != envKey(d.environment) || other.production || other.transient {
				continue
			}
			if n := len(other.statuses); n > 0 && other.statuses[n-1].state == "success" {
				other.statuses = append(other.statuses, &deploymentStatus{
					id: c.s.newID(), state: "inactive", environment: other.environment, creator: c.actor, app: c.app, created: now,
				})
			}
		}
	}
	return http.StatusCreated, c.s.deploymentStatusJSON(c, r, d, st)
}

func listDeploymentStatuses(c *call) (int, any) {
	d := findDeployment(c)
	if d == nil {
		return notFound()
	}
	list := slices.Clone(d.statuses)
	slices.Reverse(list)
	out := []map[string]any{}
	for _, st := range paginate(c, list) {
		out = append(out, c.s.deploymentStatusJSON(c, c.repo, d, st))
	}
	return http.StatusOK, out
}

// envKey normalises environment names, which GitHub compares
// case-insensitively.
func envKey(s string) string { return strings.ToLower(s) }
