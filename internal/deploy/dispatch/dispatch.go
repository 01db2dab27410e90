// Package dispatch is the github-dispatch target kind: a stage runs a
// GitHub Actions workflow through workflow_dispatch, and its outcome is
// the conclusion of the workflow run it started.
//
// GitHub answers a workflow_dispatch with 204 and no run id, and has no
// idempotency key for it: a dispatch is sent once per Trigger, since after
// a 5xx or a dropped connection nobody can tell whether a run was
// created, and a blind retry could deploy twice. The client from
// deploy.Env.GitHub (internal/github) already retries what GitHub
// certainly did not act on: rate limits and connection failures before
// sending. The dispatch carries a fixed set of string inputs (Inputs) and
// never the constraint secrets, which belong to a target's URL only.
//
// The dispatched workflow puts the idempotency key in its run's title
// (run-name). Poll, one request per call, first searches the workflow's
// workflow_dispatch runs created since the execution began for the title
// carrying the key (TitleHasKey), then, given the run's id, reads that
// run until it completes; MapRun maps its conclusion (success succeeds,
// anything else fails). The engine keeps the run's id on the execution,
// so a restart reads the same run.
package dispatch

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
)

// Kind is the kind's name in the targets file.
const Kind = "github-dispatch"

// MaxInputs is GitHub's limit on workflow_dispatch inputs (10 until
// December 2025, 25 since); a dispatch with more is rejected with 422.
// shipbot sends at most 12.
const MaxInputs = 25

// Settings are a github-dispatch target's own keys.
type Settings struct {
	Workflow   string // workflow file name or id
	Repository string // owner/name; empty means the merged repository
	Ref        string // ref to run the workflow on; empty means the tag
}

func settings(t config.Target) Settings {
	s, _ := t.Settings.(Settings)
	return s
}

// Driver is the github-dispatch kind. Its zero value is ready.
type Driver struct{}

var _ deploy.Poller = Driver{}

// Kind implements deploy.Driver.
func (Driver) Kind() string { return Kind }

// Keys implements deploy.Driver: no url, no signing secret (GitHub is
// reached through the installation's client).
func (Driver) Keys() []string { return []string{"workflow", "repository", "ref"} }

// ReadSettings implements deploy.Driver.
func (Driver) ReadSettings(s *config.Section) any {
	var out Settings
	var ok bool
	if !s.Has("workflow") {
		s.Errorf("workflow", "required for kind %q (a workflow file name such as deploy.yml, or its id)", Kind)
	} else if out.Workflow, ok = s.String("workflow"); ok && strings.TrimSpace(out.Workflow) == "" {
		s.Errorf("workflow", "must not be empty")
	}
	if out.Repository, ok = s.String("repository"); ok && !config.IsRepoName(out.Repository) {
		s.Errorf("repository", "must be owner/name, got %q", s.Raw("repository"))
	}
	if out.Ref, ok = s.String("ref"); ok && (out.Ref == "" || strings.ContainsAny(out.Ref, " \t\n")) {
		s.Errorf("ref", "must be a branch or tag name, got %q", s.Raw("ref"))
	}
	return out
}

// Learns implements deploy.Driver: the dispatched run's conclusion, when
// there is a GitHub client to read it with.
func (Driver) Learns(env *deploy.Env, _ config.Target) deploy.Learning {
	if env.GitHub == nil {
		return deploy.ByCallback
	}
	return deploy.ByPolling
}

// Trigger implements deploy.Driver: one workflow_dispatch (see the package
// documentation for why it is not retried).
func (Driver) Trigger(ctx context.Context, env *deploy.Env, t config.Target, p deploy.Payload) (deploy.Result, error) {
	set := settings(t)
	op, red := deploy.TriggerOp(t, p), deploy.Scrubber(t, p)
	repo := cmp.Or(set.Repository, p.Repository)
	ref := cmp.Or(set.Ref, p.Tag)
	log := env.Logger().With(
		slog.String("target", t.Name), slog.String("kind", t.Kind), slog.String("repository", repo),
		slog.String("workflow", set.Workflow), slog.String("stage", p.Stage), slog.String("run_id", p.RunID),
		slog.Int("attempt", p.Attempt), slog.Bool("rollback", p.Rollback))
	permanent := func(msg string) (deploy.Result, error) {
		return deploy.Result{}, &deploy.Error{Op: op, Target: t.Name, Kind: t.Kind, Permanent: true, Msg: msg}
	}
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" {
		return permanent(fmt.Sprintf("dispatch repository %q is not owner/name", repo))
	}
	if set.Workflow == "" {
		return permanent("target has no workflow")
	}
	inputs, err := Inputs(p)
	if err != nil {
		return permanent(err.Error())
	}

	client, fail := env.GitHubClient(ctx, op, t, repo, red)
	if fail != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "trigger failed", slog.String("reason", "no client"), slog.Bool("permanent", fail.Permanent))
		return deploy.Result{}, fail
	}
	req := gh.CreateWorkflowDispatchEventRequest{Ref: ref, Inputs: inputs}
	if id, perr := strconv.ParseInt(set.Workflow, 10, 64); perr == nil {
		_, err = client.Actions.CreateWorkflowDispatchEventByID(ctx, owner, name, id, req)
	} else {
		_, err = client.Actions.CreateWorkflowDispatchEventByFileName(ctx, owner, name, set.Workflow, req)
	}
	if err != nil {
		fail := deploy.GitHubError(op, t, err, red)
		fail.Msg = fmt.Sprintf("dispatch %s in %s on %s: %s", set.Workflow, repo, ref, fail.Msg)
		log.LogAttrs(ctx, slog.LevelWarn, "trigger failed",
			slog.Int("status", fail.StatusCode), slog.Bool("permanent", fail.Permanent))
		return deploy.Result{}, fail
	}
	log.LogAttrs(ctx, slog.LevelInfo, "trigger accepted", slog.String("ref", ref))
	return deploy.Result{Attempts: 1}, nil
}

// Inputs are the workflow_dispatch inputs for p, all strings: repository,
// sha, version, tag, stage, run_id, attempt, callback_url, rollback
// ("true"/"false") and, when there is a PR, pull_request; in a wave stage
// target, and in a repository of several pipelines pipeline. The set is
// fixed because GitHub rejects inputs the workflow does not declare, so the
// deploy workflow declares these ten (pull_request not required), plus
// target and pipeline where it is used so.
// Constraint secrets are never inputs: they belong to the target's own URL,
// and GitHub shows inputs to anyone who can read the workflow run.
func Inputs(p deploy.Payload) (map[string]any, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	in := map[string]any{
		"repository":   p.Repository,
		"sha":          p.SHA,
		"version":      p.Version,
		"tag":          p.Tag,
		"stage":        p.Stage,
		"run_id":       p.RunID,
		"attempt":      strconv.Itoa(p.Attempt),
		"callback_url": p.CallbackURL,
		"rollback":     strconv.FormatBool(p.Rollback),
	}
	if p.PullRequest != 0 {
		in["pull_request"] = strconv.Itoa(p.PullRequest)
	}
	if p.Target != "" {
		in["target"] = p.Target
	}
	if p.Pipeline != "" {
		in["pipeline"] = p.Pipeline
	}
	if len(in) > MaxInputs {
		// A guard for whoever adds too many: GitHub would answer 422.
		return nil, fmt.Errorf("dispatch: more than %d inputs", MaxInputs)
	}
	return in, nil
}
