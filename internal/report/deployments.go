package report

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/truncate"
)

// Deployment status states, as GitHub spells them.
const (
	deploySuccess  = "success"
	deployFailure  = "failure"
	deployInactive = "inactive"
)

// Deployments mirrors each stage execution as a GitHub Deployment
// (environment = the stage, ref = the release tag), created when the
// execution starts and given its final status, success or failure, when it
// ends. The deployment a
// new success replaces becomes inactive: GitHub does that itself
// (auto_inactive) except for production environments, where the bot posts
// it.
type Deployments struct {
	Store store.Deployments
	// PublicURL is the service's external URL: each status's log_url is
	// the run's dashboard page there. Empty leaves log_url out.
	PublicURL string
}

// deploymentPayload is what each deployment carries; the execution id
// finds a deployment again after a crash that lost its id.
type deploymentPayload struct {
	Version     string `json:"version"`
	Tag         string `json:"tag"`
	RunID       string `json:"run_id"`
	Stage       string `json:"stage"`
	Attempt     int    `json:"attempt"`
	Rollback    bool   `json:"rollback,omitempty"`
	Target      string `json:"target,omitempty"`
	ExecutionID string `json:"execution_id"`
}

// environment is the GitHub environment an execution deploys to: the
// stage, or "<stage>/<target>" for a wave's target (each target is a
// place of its own, with its own current deployment), after prefix
// ("<pipeline>/" in the pipelines: form).
func environment(prefix string, ex store.Execution) string {
	if ex.Target != "" {
		return prefix + ex.StageName + "/" + ex.Target
	}
	return prefix + ex.StageName
}

// deploymentState is the final deployment status an execution is shown
// with; "" while it runs. A running execution shows as its deployment,
// created when it started, without a status: an in_progress status would
// be one more write per stage against GitHub's write limits, for what the
// deployment's creation already says.
func deploymentState(ex store.Execution) string {
	if ex.Phase != store.PhaseFinished {
		return ""
	}
	switch ex.Outcome {
	case rollout.Succeeded:
		return deploySuccess
	case rollout.Failed:
		return deployFailure
	}
	return ""
}

// deploymentDescription says in GitHub's 140 characters what the
// execution is doing. It is plain text, not Markdown.
func deploymentDescription(ex store.Execution) string {
	what := "deploy"
	if ex.Rollback {
		what = "rollback"
	}
	var d string
	switch {
	case ex.Phase == store.PhaseBaking:
		d = fmt.Sprintf("%s %s baking until %s", ex.Tag, what, ex.BakeUntil.UTC().Format("15:04 MST"))
	case ex.Phase != store.PhaseFinished:
		d = fmt.Sprintf("%s %s in progress (attempt %d)", ex.Tag, what, ex.Attempt)
	case ex.Outcome == rollout.Succeeded && ex.Reason != "":
		d = fmt.Sprintf("%s %s: %s", ex.Tag, what, ex.Reason)
	case ex.Outcome == rollout.Succeeded:
		d = fmt.Sprintf("%s %s succeeded", ex.Tag, what)
	default:
		d = fmt.Sprintf("%s %s failed: %s", ex.Tag, what, ex.Reason)
	}
	return truncate.Bytes(d, maxDescription, "…")
}

// maxDescription is GitHub's limit on a deployment status's description,
// in characters; counting bytes keeps within it whatever the language.
const maxDescription = 140

// terminal reports whether a deployment status ends the deployment.
func terminal(state string) bool {
	return state == deploySuccess || state == deployFailure || state == deployInactive
}

// Sync brings the deployments of the run's executions up to date.
// prefix starts every environment's name ("<pipeline>/" in the
// pipelines: form).
func (d *Deployments) Sync(ctx context.Context, client *gh.Client, rr store.RolloutRun, execs []store.Execution, prefix string) error {
	for _, ex := range execs {
		if err := d.sync(ctx, client, rr, ex, environment(prefix, ex)); err != nil {
			return err
		}
	}
	return nil
}

func (d *Deployments) sync(ctx context.Context, client *gh.Client, rr store.RolloutRun, ex store.Execution, env string) error {
	want := deploymentState(ex)
	dep, found, err := d.Store.Deployment(ctx, ex.ID)
	if err != nil {
		return err
	}
	created := found && dep.ID != 0
	if created && (want == "" || dep.State == want || terminal(dep.State)) {
		// A deployment that ended stays ended: one a newer deployment
		// retired must not be made current again.
		return nil
	}
	if !created {
		if dep, err = d.create(ctx, client, rr, ex, env, dep, found); err != nil {
			return err
		}
	}
	if want == "" {
		return nil
	}
	owner, name, _ := strings.Cut(rr.Repo, "/")
	req := &gh.DeploymentStatusRequest{State: gh.String(want), Description: gh.String(deploymentDescription(ex))}
	if d.PublicURL != "" {
		req.LogURL = gh.String(strings.TrimSuffix(d.PublicURL, "/") + "/runs/" + rr.ID)
	}
	if _, _, err := client.Repositories.CreateDeploymentStatus(ctx, owner, name, dep.ID, req); err != nil {
		return fmt.Errorf("deployment status %s of %s in %s: %w", want, ex.Tag, env, err)
	}
	dep.State = want
	if err := d.Store.SaveDeployment(ctx, dep); err != nil {
		return err
	}
	if want == deploySuccess {
		return d.retire(ctx, client, dep)
	}
	return nil
}

// create makes the execution's deployment, or adopts the one a crash left
// behind unrecorded (an intent without an id).
func (d *Deployments) create(ctx context.Context, client *gh.Client, rr store.RolloutRun, ex store.Execution, env string, dep store.Deployment, intended bool) (store.Deployment, error) {
	owner, name, _ := strings.Cut(rr.Repo, "/")
	dep = store.Deployment{ExecutionID: ex.ID, Repo: rr.Repo, Environment: env}
	if intended {
		id, ok, err := d.find(ctx, client, owner, name, ex, env)
		if err != nil {
			return dep, err
		}
		if ok {
			dep.ID = id
			return dep, d.Store.SaveDeployment(ctx, dep)
		}
	} else if err := d.Store.SaveDeployment(ctx, dep); err != nil {
		return dep, err
	}
	task := "deploy"
	if ex.Rollback {
		task = "deploy:rollback"
	}
	created, _, err := client.Repositories.CreateDeployment(ctx, owner, name, &gh.DeploymentRequest{
		Ref: gh.String(ex.Tag), Task: gh.String(task), Environment: gh.String(env),
		// GitHub would otherwise merge the default branch into the tag
		// first, and refuse while any check on it is pending, the bot's
		// own rollout check included.
		AutoMerge: gh.Bool(false), RequiredContexts: &[]string{},
		Description: gh.String(fmt.Sprintf("%s to %s", ex.Tag, env)),
		Payload: deploymentPayload{Version: ex.Version, Tag: ex.Tag, RunID: rr.ID, Stage: ex.StageName,
			Attempt: ex.Attempt, Rollback: ex.Rollback, Target: ex.Target, ExecutionID: ex.ID},
	})
	if err != nil {
		return dep, fmt.Errorf("create deployment of %s to %s: %w", ex.Tag, env, err)
	}
	dep.ID = created.GetID()
	return dep, d.Store.SaveDeployment(ctx, dep)
}

// find looks for the execution's deployment among the tag's deployments to
// the stage.
func (d *Deployments) find(ctx context.Context, client *gh.Client, owner, name string, ex store.Execution, env string) (int64, bool, error) {
	list, _, err := client.Repositories.ListDeployments(ctx, owner, name, &gh.DeploymentsListOptions{
		Ref: ex.Tag, Environment: env, ListOptions: gh.ListOptions{PerPage: 100},
	})
	if err != nil {
		return 0, false, fmt.Errorf("look for deployment of %s to %s: %w", ex.Tag, env, err)
	}
	for _, dep := range list {
		var p deploymentPayload
		if json.Unmarshal(dep.Payload, &p) == nil && p.ExecutionID == ex.ID {
			return dep.GetID(), true, nil
		}
	}
	return 0, false, nil
}

// retire marks the deployment that dep replaces in its environment
// inactive. GitHub does it itself (auto_inactive) for every environment
// but a production one; the bot's records follow either way.
func (d *Deployments) retire(ctx context.Context, client *gh.Client, dep store.Deployment) error {
	prev, ok, err := d.Store.ActiveDeployment(ctx, dep.Repo, dep.Environment, dep.ExecutionID)
	if err != nil || !ok {
		return err
	}
	if isProduction(dep.Environment) {
		owner, name, _ := strings.Cut(dep.Repo, "/")
		if _, _, err := client.Repositories.CreateDeploymentStatus(ctx, owner, name, prev.ID, &gh.DeploymentStatusRequest{
			State: gh.String(deployInactive), Description: gh.String("replaced by a newer deployment"),
		}); err != nil {
			return fmt.Errorf("retire deployment %d in %s: %w", prev.ID, dep.Environment, err)
		}
	}
	prev.State = deployInactive
	return d.Store.SaveDeployment(ctx, prev)
}

// isProduction is GitHub's default for production_environment: true for
// the environment named "production" (compared case-insensitively, as
// GitHub compares environment names).
func isProduction(env string) bool { return strings.EqualFold(env, "production") }
