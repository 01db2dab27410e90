package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/facts"
	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/plan"
	"github.com/shipbot/shipbot/internal/preview"
)

const planUsage = `usage: bot plan (--repo OWNER/NAME --pr N | --event FILE) [--config FILE] [--api URL]

Prints what merging the pull request would do now: the gate's decision, the
version it would cut and the stages it would deploy or skip; with several
pipelines (pipelines:), each pipeline the pull request's files touch, with
its own version and stages. Reads GitHub,
writes nothing. The token comes from GITHUB_TOKEN; the API from --api,
SHIPBOT_GITHUB_API_URL or GITHUB_API_URL (default https://api.github.com/).
--config evaluates a local .github/shipbot.yml instead of the pull request's;
an invalid one is reported, with line and column, before GitHub is read.`

// configOverride answers Config from a local file and everything else from
// GitHub, so `bot plan --config` tries a change before it is pushed.
type configOverride struct {
	facts.Reader
	data []byte
}

func (c configOverride) Config(context.Context, string) ([]byte, bool, error) {
	return c.data, true, nil
}

func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("plan")
	repo := fs.String("repo", "", "repository, `OWNER/NAME`")
	number := fs.Int("pr", 0, "pull request number")
	eventFile := fs.String("event", "", "a pull_request event `FILE` (as GITHUB_EVENT_PATH) naming the repository and pull request")
	configFile := fs.String("config", "", "a local .github/shipbot.yml `FILE` to evaluate instead of the pull request's")
	api := fs.String("api", firstNonEmpty(os.Getenv(config.EnvGitHubAPIURL), os.Getenv("GITHUB_API_URL"), ghclient.DefaultBaseURL), "GitHub REST base `URL`")
	if err := parseFlags(fs, args, 0, planUsage, stdout); err != nil {
		return err
	}
	if *eventFile != "" {
		data, err := os.ReadFile(*eventFile)
		if err != nil {
			return err
		}
		var ev gh.PullRequestEvent
		if err := json.Unmarshal(data, &ev); err != nil || ev.PullRequest == nil {
			return fmt.Errorf("%s: not a pull_request event", *eventFile)
		}
		*repo, *number = ev.GetRepo().GetFullName(), ev.GetPullRequest().GetNumber()
	}
	if !strings.Contains(*repo, "/") || *number <= 0 {
		return usageError{errors.New("need --repo OWNER/NAME and --pr N, or --event FILE"), usageText(fs, planUsage)}
	}
	var localConfig []byte
	if *configFile != "" {
		// Before anything is read from GitHub: a broken file is the answer
		// on its own, and needs no token, network or rate limit to give.
		data, err := os.ReadFile(*configFile)
		if err != nil {
			return err
		}
		if _, err := config.ParseRepo(*configFile, data, repoShortName(*repo)); err != nil {
			return fmt.Errorf("invalid configuration:\n%w", err)
		}
		localConfig = data
	}
	token := os.Getenv("GITHUB_TOKEN")
	if token == "" {
		return errors.New("GITHUB_TOKEN: required to read the pull request")
	}
	client, err := ghclient.NewTokenClient(ghclient.Options{BaseURL: *api}, token)
	if err != nil {
		return err
	}
	gitHub, err := facts.NewGitHub(client, *repo)
	if err != nil {
		return err
	}
	var reader facts.Reader = gitHub
	if localConfig != nil {
		reader = configOverride{Reader: gitHub, data: localConfig}
	}
	pr, err := reader.PullRequest(ctx, *number)
	if err != nil {
		return err
	}
	var out plan.Outcome
	if pr.Merged {
		// Already merged: what the merge itself was decided (or would be).
		snap, err := facts.Gather(ctx, reader, facts.Input{Repo: *repo, SHA: pr.MergeSHA, Branch: pr.BaseRef, PR: &pr})
		if err != nil {
			return err
		}
		out = plan.Evaluate(plan.Input{Repo: *repo, Branch: pr.BaseRef, SHA: pr.MergeSHA, Snapshot: snap})
	} else if out, err = preview.Forecast(ctx, reader, *repo, pr); err != nil {
		return err
	}
	printPlan(stdout, *repo, pr, out)
	return nil
}

func printPlan(w io.Writer, repo string, pr facts.PR, o plan.Outcome) {
	state := "open"
	if pr.Merged {
		state = "merged as " + short(pr.MergeSHA)
	}
	fmt.Fprintf(w, "%s PR #%d %q (%s, head %s -> %s)\n", repo, pr.Number, pr.Title, state, short(pr.HeadSHA), pr.BaseRef)
	switch o.Kind {
	case plan.NoConfig:
		fmt.Fprintf(w, "config:   no %s: the repository is not opted in; a merge does nothing\n", config.RepoFile)
		return
	case plan.Invalid:
		fmt.Fprintln(w, "config:   INVALID, a merge would release nothing:")
		for _, p := range o.Problems {
			fmt.Fprintf(w, "          %s\n", p)
		}
		return
	}
	if o.Gate.Allowed || o.Reused {
		fmt.Fprintf(w, "gate:     allowed (%s", plural(o.Gate.Approvals, "approval"))
		if len(o.Gate.Approvers) > 0 {
			fmt.Fprintf(w, " by %s", strings.Join(o.Gate.Approvers, ", "))
		}
		fmt.Fprintf(w, "; %d required)\n", o.Gate.RequiredApprovals)
	} else {
		fmt.Fprintln(w, "gate:     REFUSED")
		for _, r := range o.Gate.Reasons {
			fmt.Fprintf(w, "          - %s\n", r)
		}
	}
	for _, n := range o.Gate.Notes {
		fmt.Fprintf(w, "          note: %s\n", n)
	}
	if o.Config.Multi {
		printPipelines(w, o)
		return
	}
	printPipelinePlan(w, o.Kind, plan.PipelinePlan{Tag: o.Tag, PrevTag: o.PrevTag, Reused: o.Reused, Choice: o.Choice, Stages: o.Stages})
}

// printPipelinePlan prints one pipeline's version and stages.
func printPipelinePlan(w io.Writer, kind plan.Kind, p plan.PipelinePlan) {
	switch kind {
	case plan.Release:
		prev := "first release"
		if p.PrevTag != "" {
			prev = "previous " + p.PrevTag
		}
		why := p.Choice.Reason
		if p.Reused {
			why = "already tagged on this commit"
		}
		fmt.Fprintf(w, "version:  %s (%s; %s)\n", p.Tag, why, prev)
	case plan.NoRelease:
		fmt.Fprintln(w, "version:  none (semver:none): no release, no rollout")
	case plan.Refused:
		fmt.Fprintln(w, "version:  none while the gate refuses")
	}
	if len(p.Stages) == 0 {
		fmt.Fprintln(w, "stages:   none configured: the release is the whole rollout")
		return
	}
	printPlanStages(w, p.Stages)
}

func printPlanStages(w io.Writer, stages []plan.Stage) {
	for i, s := range stages {
		head := "stages:  "
		if i > 0 {
			head = "         "
		}
		fmt.Fprintf(w, "%s %-8s -> %-20s %s\n", head, s.Name, s.Target, s.State("would deploy"))
	}
}

// printPipelines prints the `pipelines:` form's answer: which pipelines
// the pull request's files touch and, for each, its version and stages.
func printPipelines(w io.Writer, o plan.Outcome) {
	names := make([]string, len(o.Pipelines))
	for i, p := range o.Pipelines {
		names[i] = p.Name
	}
	switch {
	case o.Kind == plan.NoPipeline:
		fmt.Fprintf(w, "files:    %s changed, none starts a pipeline: a merge releases nothing (no pipeline affected)\n", plural(o.Files, "file"))
		for _, p := range o.Config.Pipelines {
			paths := "every file"
			if p.Paths != nil {
				paths = strings.Join(p.Paths, ", ")
			}
			if len(p.Ignore) > 0 {
				paths += " (ignoring " + strings.Join(p.Ignore, ", ") + ")"
			}
			fmt.Fprintf(w, "          %s: %s\n", p.Name, paths)
		}
	case len(o.Notes) > 0:
		fmt.Fprintf(w, "files:    %s listed; every pipeline runs: %s\n", plural(o.Files, "file"), strings.Join(names, ", "))
	default:
		fmt.Fprintf(w, "files:    %s changed; pipelines touched: %s\n", plural(o.Files, "file"), strings.Join(names, ", "))
	}
	for _, n := range o.Notes {
		fmt.Fprintf(w, "          note: %s\n", n)
	}
	for _, p := range o.Pipelines {
		fmt.Fprintf(w, "pipeline: %s\n", p.Name)
		printPipelinePlan(w, o.Kind, p)
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
