package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/action"
	"github.com/shipbot/shipbot/internal/api"
	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/deploy/drivers"
	"github.com/shipbot/shipbot/internal/facts"
	"github.com/shipbot/shipbot/internal/gate"
	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/markdown"
	"github.com/shipbot/shipbot/internal/plan"
	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/service"
	"github.com/shipbot/shipbot/internal/store"
)

// tokenClients serves every installation with the workflow's token: in a
// workflow run there is one repository and one token.
type tokenClients struct{ c *gh.Client }

func (t tokenClients) Installation(int64) (*gh.Client, error) { return t.c, nil }
func (t tokenClients) ForRepository(context.Context, string) (*gh.Client, error) {
	return t.c, nil
}

// stageFilter runs only the stages the workflow asked for: the others get
// their skip label, so they are skipped exactly as a label would skip them.
type stageFilter struct {
	next interface {
		Start(ctx context.Context, r store.Run, pipeline string, rel store.Release, cfg config.Repo, cfgYAML []byte, labels []string) error
	}
	only []string
}

func (f stageFilter) Start(ctx context.Context, r store.Run, pipeline string, rel store.Release, cfg config.Repo, cfgYAML []byte, labels []string) error {
	return f.next.Start(ctx, r, pipeline, rel, cfg, cfgYAML, withStageFilter(cfg, f.only, labels))
}

// withStageFilter adds the skip label of every stage not in only.
func withStageFilter(cfg config.Repo, only, labels []string) []string {
	if len(only) == 0 {
		return labels
	}
	out := slices.Clone(labels)
	for _, s := range cfg.Pipelines[0].Stages {
		if !slices.Contains(only, s.Name) {
			out = append(out, s.SkipLabelName())
		}
	}
	return out
}

func repoShortName(full string) string {
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[i+1:]
	}
	return full
}

// mergeEvent is what the workflow's event says about a merge. The rules
// are the merge coordinator's (internal/merge), which decides for real;
// they are repeated here only to say clearly why an event is ignored, and
// so that a dry run judges the same merges.
type mergeEvent struct {
	sha, branch string
	pr          *gh.PullRequest // pull_request events
	ok          bool
	why         string // when !ok: why there is nothing to do
}

func readMergeEvent(event string, payload []byte) (mergeEvent, error) {
	switch event {
	case "push":
		var ev gh.PushEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return mergeEvent{}, err
		}
		branch, isBranch := strings.CutPrefix(ev.GetRef(), "refs/heads/")
		def := ev.GetRepo().GetDefaultBranch()
		switch {
		case !isBranch:
			return mergeEvent{why: fmt.Sprintf("a push of %s is not a merge to a branch", ev.GetRef())}, nil
		case ev.GetDeleted():
			return mergeEvent{why: fmt.Sprintf("a push that deleted %s", branch)}, nil
		case branch != def:
			return mergeEvent{why: fmt.Sprintf("a push to %s, not to the default branch %s", branch, def)}, nil
		case ev.GetAfter() == "":
			return mergeEvent{}, errors.New("push event without after")
		}
		return mergeEvent{sha: ev.GetAfter(), branch: branch, ok: true}, nil
	case "pull_request":
		var ev gh.PullRequestEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return mergeEvent{}, err
		}
		p := ev.GetPullRequest()
		switch {
		case ev.GetAction() != "closed":
			return mergeEvent{why: fmt.Sprintf("a pull_request %s event is not a merge", ev.GetAction())}, nil
		case !p.GetMerged():
			return mergeEvent{why: fmt.Sprintf("pull request #%d was closed without merging", p.GetNumber())}, nil
		case p.GetMergeCommitSHA() == "":
			return mergeEvent{}, errors.New("merged pull request without merge_commit_sha")
		}
		return mergeEvent{sha: p.GetMergeCommitSHA(), branch: p.GetBase().GetRef(), pr: p, ok: true}, nil
	}
	return mergeEvent{why: fmt.Sprintf("a %s event is not a merge: shipbot runs on push, or pull_request closed", event)}, nil
}

// pollEvery is how often a waiting stage's outcome is polled (Spinnaker's
// executions, or the dispatched workflow run): the engine's default; tests
// shorten it.
var pollEvery = 10 * time.Second

// runResult is what `bot run` reports.
type runResult struct {
	outcome plan.Outcome
	run     store.RolloutRun
	// stages is the run's rollout as every view sees it.
	stages   []rollout.StageView
	deployed []string
	skipped  []string
	failed   []string // failed or rolled back
	notRun   []string // never reached (after a failure, or still waiting at the timeout)
	timedOut bool
}

// handedOff reports the stages that passed by handing the deploy off.
func (r runResult) handedOff() []string {
	var out []string
	for _, v := range r.stages {
		if v.HowPassed() == rollout.HandedOff {
			out = append(out, v.Name)
		}
	}
	return out
}

// reason is why stage name failed, or how it passed when it did not
// learn its outcome; "" otherwise.
func (r runResult) reason(name string) string {
	for _, v := range r.stages {
		if v.Name != name || v.Deployed == nil {
			continue
		}
		ex := v.Deployed
		switch {
		case ex.Pass == rollout.DeployedBefore:
			return ex.Reason + " (an earlier job)"
		case ex.Outcome == rollout.Failed:
			return ex.Reason
		}
	}
	return ""
}

const runUsage = `usage: bot run

One-shot mode for the GitHub Action (action/action.yml runs it): performs
gate -> release -> rollout for the merge that started this workflow run, with
the same code as bot serve, and exits with the outcome (0 deployed or nothing
to do, 1 refused or failed, 2 a bad environment or input).

It takes no arguments. It reads the workflow's environment: GITHUB_EVENT_NAME,
GITHUB_EVENT_PATH, GITHUB_TOKEN (or INPUT_GITHUB-TOKEN), GITHUB_API_URL,
GITHUB_REPOSITORY, GITHUB_SHA, GITHUB_RUN_ID, GITHUB_OUTPUT and
GITHUB_STEP_SUMMARY; the action's inputs INPUT_TARGETS (or
SHIPBOT_TARGETS_FILE), INPUT_STAGES, INPUT_DRY-RUN, INPUT_WAIT and
INPUT_TIMEOUT; and SHIPBOT_PUBLIC_URL and SHIPBOT_LISTEN to take callbacks on
a self-hosted runner. See README.md, "Use as a GitHub Action".`

func runAction(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	if err := parseFlags(newFlags("run"), args, 0, runUsage, stdout); err != nil {
		return err
	}
	cmds := action.Commands{W: stdout}
	env, err := action.ReadEnv(os.Getenv, os.ReadFile)
	if err != nil {
		cmds.Error("shipbot: invalid environment", err.Error())
		return exitError{2, err}
	}
	// Masks first: nothing may print a secret before the runner knows it.
	cmds.Mask(env.Token)
	kinds := drivers.New()
	var targets config.Targets
	if len(env.Targets) > 0 {
		if targets, err = config.ParseTargets(env.TargetsSrc, env.Targets, os.LookupEnv, kinds.Kinds()); err != nil {
			cmds.Error("shipbot: invalid targets", err.Error())
			return exitError{2, err}
		}
		for _, s := range targets.Secrets() {
			cmds.Mask(s)
		}
		for _, w := range targets.Warnings {
			cmds.Warning("shipbot: targets", w.String())
		}
	}
	redact := deploy.NewRedactor(append(targets.Secrets(), env.Token)...)
	// Whatever goes wrong shows as an annotation (the failures foreseen
	// below are exitErrors, annotated where they happen), and the line main
	// prints must not carry a secret.
	defer func() {
		if err == nil {
			return
		}
		code := 1
		var ee exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else {
			cmds.Error("shipbot", redact.Redact(err.Error()))
		}
		if redact.Contains(err.Error()) {
			err = exitError{code, errors.New(redact.Redact(err.Error()))}
		}
	}()
	log := slog.New(deploy.RedactHandler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: readableDurations}), redact))

	payload, err := os.ReadFile(env.EventPath)
	if err != nil {
		cmds.Error("shipbot: GITHUB_EVENT_PATH", err.Error())
		return exitError{2, fmt.Errorf("GITHUB_EVENT_PATH: %w", err)}
	}
	var envelope struct {
		Action string `json:"action"`
	}
	if err := json.Unmarshal(payload, &envelope); err != nil {
		cmds.Error("shipbot: GITHUB_EVENT_PATH", "malformed event: "+err.Error())
		return exitError{2, fmt.Errorf("GITHUB_EVENT_PATH: malformed event: %w", err)}
	}
	event := env.EventName
	if event == "" {
		// Guess from the shape, for hand-run tests.
		event = "push"
		if envelope.Action != "" {
			event = "pull_request"
		}
	}
	if env.Config != "" && filepath.Clean(env.Config) != config.RepoFile {
		cmds.Warning("shipbot: input config", fmt.Sprintf("input config is %q, but shipbot reads %s at the merge commit (the reviewed one); the input is informational", env.Config, config.RepoFile))
	}
	m, err := readMergeEvent(event, payload)
	if err != nil {
		cmds.Error("shipbot: GITHUB_EVENT_PATH", err.Error())
		return exitError{2, fmt.Errorf("GITHUB_EVENT_PATH: %w", err)}
	}
	if !m.ok {
		cmds.Notice("shipbot", m.why+": nothing to do")
		return writeOutputs(env, plan.Outcome{}, nil, nil)
	}

	client, err := ghclient.NewTokenClient(ghclient.Options{BaseURL: env.APIURL, Logger: log}, env.Token)
	if err != nil {
		return err
	}
	if err := checkStages(ctx, cmds, env, client, m.sha); err != nil {
		return err
	}
	if env.DryRun {
		return dryRun(ctx, stdout, cmds, env, client, m, redact)
	}

	st, err := openActionStore(ctx, env.StateDir, log)
	if err != nil {
		return err
	}
	defer st.Close()

	var verdict *plan.Outcome
	var verdictRun store.Run
	parts := service.Bot{
		Store: st, Clients: tokenClients{client}, Log: log, Owner: "action-" + env.RunID, Targets: targets,
		Drivers: kinds, PublicURL: env.PublicURL, TokenKey: []byte(env.Token), Version: version,
		EngineTick: 500 * time.Millisecond, ReportDelay: 200 * time.Millisecond,
		Observe: func(r store.Run, o plan.Outcome) { verdict, verdictRun = &o, r },
	}.Build()
	parts.Coordinator.Rollouts = stageFilter{next: parts.Engine, only: env.Stages}
	parts.Coordinator.PairWait = -1 // one event is all a job gets
	callbacks := env.Wait && env.PublicURL != ""
	parts.Engine.PollEvery = pollEvery
	parts.Engine.HandOff = func(t config.Target) bool {
		if !env.Wait {
			return true
		}
		// Wait only where the outcome can be learned from here: the
		// target's driver polls for it (a Spinnaker execution, a dispatched
		// workflow run), or callbacks reach this process.
		return parts.Engine.Trigger.Learns(t) != deploy.ByPolling && !callbacks
	}
	// A job keeps its state in a fresh database; GitHub's deployments are
	// what survives it. A re-run job, or a second trigger of the same
	// merge, finds the stages the first one deployed there and does not
	// deploy them again.
	parts.Engine.DeployedBefore = func(ctx context.Context, repo string, ex store.Execution) (string, bool, error) {
		return deployedBefore(ctx, client, repo, ex)
	}
	if callbacks {
		// SHIPBOT_PUBLIC_URL promises that the downstream can reach this
		// job (a self-hosted runner): take its callbacks for as long as
		// the job runs.
		stop, err := serveCallbacks(env.Listen, st, parts.Engine, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	d := store.Delivery{ID: "actions-" + env.RunID + "-" + env.RunAttempt, Event: event, Action: envelope.Action,
		Repo: env.Repository, Payload: payload}
	if err := parts.Coordinator.Handle(ctx, d); err != nil {
		return err
	}
	if verdict == nil {
		// The merge was handled already: by an earlier job whose state
		// this one kept (the same runner, the same state file).
		return handledBefore(ctx, cmds, env, st, m.sha)
	}
	warnUnreadable(cmds, verdict.Gate.Notes)
	res := runResult{outcome: *verdict}
	if verdict.Kind == plan.Release && len(verdict.Stages) > 0 {
		res, err = awaitRollout(ctx, cmds, env, parts.Engine, st, verdictRun.ID, res)
		if err != nil {
			return err
		}
		parts.Reporter.RolloutChanged(ctx, verdictRun.ID)
		parts.Reporter.Wait()
	}
	return report(cmds, env, res, redact)
}

// deployedBefore reports whether a successful deployment of the
// execution's tag to its stage exists that another execution made.
func deployedBefore(ctx context.Context, client *gh.Client, repo string, ex store.Execution) (string, bool, error) {
	owner, name, _ := strings.Cut(repo, "/")
	deps, _, err := client.Repositories.ListDeployments(ctx, owner, name, &gh.DeploymentsListOptions{
		Ref: ex.Tag, Environment: ex.StageName, ListOptions: gh.ListOptions{PerPage: 20},
	})
	if err != nil {
		return "", false, fmt.Errorf("deployments of %s to %s: %w", ex.Tag, ex.StageName, err)
	}
	for _, d := range deps {
		var p struct {
			ExecutionID string `json:"execution_id"`
		}
		if json.Unmarshal(d.Payload, &p) == nil && p.ExecutionID == ex.ID {
			continue // this execution's own
		}
		sts, _, err := client.Repositories.ListDeploymentStatuses(ctx, owner, name, d.GetID(), &gh.ListOptions{PerPage: 1})
		if err != nil {
			return "", false, fmt.Errorf("statuses of deployment %d: %w", d.GetID(), err)
		}
		// Newest first. In progress is not enough: a cancelled job leaves
		// its deployment in progress for ever.
		if len(sts) > 0 && (sts[0].GetState() == "success" || sts[0].GetState() == "inactive") {
			return fmt.Sprintf("deployment %d of %s to %s", d.GetID(), ex.Tag, ex.StageName), true, nil
		}
	}
	return "", false, nil
}

// checkStages fails early, before anything is released, when input stages
// names a stage the merge commit's configuration does not have: a typo
// would otherwise skip every stage and still pass.
func checkStages(ctx context.Context, cmds action.Commands, env action.Env, client *gh.Client, sha string) error {
	if len(env.Stages) == 0 {
		return nil
	}
	reader, err := facts.NewGitHub(client, env.Repository)
	if err != nil {
		return err
	}
	data, found, err := reader.Config(ctx, sha)
	if err != nil {
		return err
	}
	cfg, perr := config.ParseRepo(config.RepoFile, data, repoShortName(env.Repository))
	if !found || perr != nil {
		return nil // the merge's own verdict says so
	}
	var names, unknown []string
	for _, s := range cfg.Pipelines[0].Stages {
		names = append(names, s.Name)
	}
	for _, s := range env.Stages {
		if !slices.Contains(names, s) {
			unknown = append(unknown, s)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	msg := fmt.Sprintf("input stages names %s, which %s at %s does not have (its stages: %s)",
		strings.Join(unknown, ", "), config.RepoFile, short(sha), orNone(names))
	cmds.Error("shipbot: input stages", msg)
	return exitError{2, errors.New(msg)}
}

// openActionStore opens the job's state file in dir, or in a fresh
// temporary directory when dir cannot be used: a container action may see a
// RUNNER_TEMP that is not mounted into it, or is owned by another user.
func openActionStore(ctx context.Context, dir string, log *slog.Logger) (*store.SQLite, error) {
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		var st *store.SQLite
		if st, err = openStore(ctx, filepath.Join(dir, "shipbot.db"), log); err == nil {
			return st, nil
		}
	}
	tmp, terr := os.MkdirTemp("", "shipbot-")
	if terr != nil {
		return nil, fmt.Errorf("state in %s: %w", dir, err)
	}
	log.Warn("state dir not usable; using a temporary one", "dir", dir, "err", err, "using", tmp)
	return openStore(ctx, filepath.Join(tmp, "shipbot.db"), log)
}

// serveCallbacks takes deploy systems' outcome reports (POST
// /api/v1/callbacks/{token}) on addr until stop is called.
func serveCallbacks(addr string, st store.Store, engine api.Callbacks, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("SHIPBOT_LISTEN: %w", err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	(&api.API{Store: st, Callbacks: engine}).Register(e)
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("taking callbacks", "listen", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// awaitRollout steps the engine until the run's rollout is done, or the
// timeout.
func awaitRollout(ctx context.Context, cmds action.Commands, env action.Env, engine interface{ Step(context.Context) },
	st store.Store, runID string, res runResult) (runResult, error) {
	deadline := time.Now().Add(env.Timeout)
	for {
		engine.Step(ctx)
		rr, err := st.GetRollout(ctx, runID)
		if err != nil {
			return res, err
		}
		res.run = rr
		if rr.Rollout == store.RolloutDone {
			break
		}
		if ctx.Err() != nil {
			cmds.Error("shipbot: cancelled", fmt.Sprintf("the job was cancelled while %s was rolling out", rr.Tag))
			res.timedOut = true
			break
		}
		if time.Now().After(deadline) {
			cmds.Error("shipbot: timeout", fmt.Sprintf("the rollout of %s did not finish within %s (input timeout)", rr.Tag, env.Timeout))
			res.timedOut = true
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	// The job's context may be cancelled by now; what it reads last must
	// still be read.
	execs, _ := st.Executions(context.WithoutCancel(ctx), runID)
	res.stages = rollout.Project(res.run.Stages, execs)
	for _, v := range res.stages {
		switch {
		case v.State == schedule.Passed:
			res.deployed = append(res.deployed, v.Name)
		case v.State == schedule.Skipped:
			res.skipped = append(res.skipped, v.Name)
		case v.State == schedule.Failed || v.State == schedule.RolledBack:
			res.failed = append(res.failed, v.Name)
		default:
			res.notRun = append(res.notRun, v.Name)
		}
	}
	return res, nil
}

// handledBefore reports a merge whose run this job's state already holds.
func handledBefore(ctx context.Context, cmds action.Commands, env action.Env, st *store.SQLite, sha string) error {
	r, err := st.RunBySHA(ctx, env.Repository, sha)
	if err != nil {
		cmds.Notice("shipbot", "this merge was handled already: nothing to do")
		return writeOutputs(env, plan.Outcome{}, nil, nil)
	}
	cmds.Notice("shipbot", fmt.Sprintf("merge %s was handled already (%s%s): nothing more to do", short(sha), r.State, prefixed(" ", r.Tag)))
	return action.WriteOutputs(env.Output, [][2]string{
		{"version", r.Version}, {"tag", r.Tag}, {"deployed", ""}, {"skipped", ""}, {"run-url", env.RunURL()},
	})
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// warnUnreadable turns what the gate could not read into warnings that
// name the missing permission. A workflow's GITHUB_TOKEN can never read
// classic branch protection (it needs Administration: read, which no
// workflow permission grants); the gate then relies on rulesets.
func warnUnreadable(cmds action.Commands, notes []string) {
	for _, n := range notes {
		switch n {
		case gate.WarnClassicForbidden:
			cmds.Warning("shipbot: branch protection unreadable",
				"the token cannot read classic branch protection: that needs the Administration: read permission, which GITHUB_TOKEN cannot be granted. "+
					"shipbot fell back to repository rulesets: their required approvals and checks are enforced, classic protection's are not known. "+
					"Protect the branch with a ruleset, or run shipbot as a GitHub App with Administration: read")
		case gate.WarnClassicUnread, gate.WarnRulesUnread:
			cmds.Warning("shipbot: protection unreadable", n)
		}
	}
}

func writeOutputs(env action.Env, o plan.Outcome, deployed, skipped []string) error {
	version, tag := "", ""
	if o.Kind == plan.Release {
		version, tag = o.Version.String(), o.Tag
	}
	return action.WriteOutputs(env.Output, [][2]string{
		{"version", version}, {"tag", tag},
		{"deployed", strings.Join(deployed, ",")}, {"skipped", strings.Join(skipped, ",")},
		{"run-url", env.RunURL()},
	})
}

// report writes outputs, the step summary and annotations, and decides the
// exit code: 0 only when every stage that ran succeeded (or was handed off).
func report(cmds action.Commands, env action.Env, res runResult, redact *deploy.Redactor) error {
	o := res.outcome
	if err := writeOutputs(env, o, res.deployed, res.skipped); err != nil {
		return err
	}
	tag := o.Tag
	var b strings.Builder
	b.WriteString("## shipbot\n\n")
	var failure error
	switch o.Kind {
	case plan.Refused:
		b.WriteString("**Refused by the merge gate: nothing released.**\n\n")
		bullets(&b, o.Gate.Reasons)
		cmds.Error("shipbot: merge refused", strings.Join(o.Gate.Reasons, "; "))
		failure = exitError{1, errors.New("the merge gate refused this merge")}
	case plan.Invalid:
		b.WriteString("**Invalid configuration: nothing released.**\n\n")
		bullets(&b, o.Problems)
		cmds.Error("shipbot: invalid configuration", strings.Join(o.Problems, "; "))
		failure = exitError{1, errors.New("invalid configuration")}
	case plan.NoConfig:
		fmt.Fprintf(&b, "No `%s`: nothing to do.\n", config.RepoFile)
		cmds.Notice("shipbot", "no "+config.RepoFile+": nothing to do")
	case plan.NoRelease:
		b.WriteString("`semver:none`: merged without a release.\n")
		cmds.Notice("shipbot", "semver:none: no release")
	case plan.Release:
		fmt.Fprintf(&b, "Released **%s**.\n\n", tag)
		if len(res.run.Stages) > 0 {
			b.WriteString("| stage | state | detail |\n|---|---|---|\n")
			for _, s := range res.stages {
				state, detail := s.State.String(), s.Wait.Text()
				switch {
				case s.HowPassed() == rollout.HandedOff:
					state, detail = "passed (handed off)", s.Deployed.Reason+": the deploy system owns the outcome"
				case s.State == schedule.Skipped:
					detail = "label " + skipLabel(o, s.Name)
					if len(env.Stages) > 0 && !slices.Contains(env.Stages, s.Name) {
						detail = "not in input stages"
					}
				case res.reason(s.Name) != "":
					detail = res.reason(s.Name)
				case slices.Contains(res.notRun, s.Name) && !res.timedOut:
					state = "not reached"
				case s.State == schedule.Active && detail == "":
					detail = "triggered; no outcome reported yet"
				}
				// The step summary is GitHub Markdown: the detail quotes
				// a target's error and the link is the downstream's.
				detail = markdown.Escape(detail)
				if s.Deployed != nil && s.Deployed.URL != "" {
					detail = strings.TrimSpace(detail + " " + markdown.Link("execution", s.Deployed.URL))
				}
				fmt.Fprintf(&b, "| %s | %s | %s |\n", markdown.Escape(s.Name), markdown.Escape(state), detail)
				// A wave shows a row per target under its stage.
				for _, x := range s.Targets {
					detail := ""
					if x.URL != "" {
						detail = markdown.Link("execution", x.URL)
					}
					fmt.Fprintf(&b, "| ↳ %s | %s | %s |\n", markdown.Escape(x.Target), markdown.Escape(rollout.TargetWords(x)), detail)
				}
			}
		}
		if len(res.failed) > 0 || len(res.notRun) > 0 {
			var parts []string
			for _, name := range res.failed {
				parts = append(parts, fmt.Sprintf("stage %s failed%s", name, prefixed(": ", res.reason(name))))
			}
			if len(res.notRun) > 0 {
				what := "not reached"
				if res.timedOut {
					what = "unfinished"
				}
				parts = append(parts, what+": "+strings.Join(res.notRun, ", "))
			}
			msg := tag + ": " + strings.Join(parts, "; ")
			cmds.Error("shipbot: rollout failed", redact.Redact(msg))
			failure = exitError{1, errors.New(msg)}
		} else {
			handed := res.handedOff()
			deployed := orNone(res.deployed)
			if len(handed) > 0 {
				deployed += " (handed off: " + strings.Join(handed, ",") + ")"
			}
			cmds.Notice("shipbot", fmt.Sprintf("released %s; deployed: %s; skipped: %s", tag, deployed, orNone(res.skipped)))
		}
	}
	if err := action.AppendSummary(env.Summary, redact.Redact(b.String())); err != nil {
		return err
	}
	return failure
}

func skipLabel(o plan.Outcome, stage string) string {
	for _, s := range o.Stages {
		if s.Name == stage {
			return s.SkipLabel
		}
	}
	return config.DefaultSkipLabel(stage)
}

// bullets writes items, plain text that may quote outside text (a
// reviewer's login, a line of the repository's config), as a Markdown list.
func bullets(b *strings.Builder, items []string) {
	for _, it := range items {
		fmt.Fprintf(b, "- %s\n", markdown.Escape(it))
	}
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	return strings.Join(ss, ",")
}

// dryRun prints what the merge would do and writes the outputs it would
// have, touching nothing: GitHub is only read, no target is called and no
// state is kept.
func dryRun(ctx context.Context, w io.Writer, cmds action.Commands, env action.Env, client *gh.Client, m mergeEvent, redact *deploy.Redactor) error {
	reader, err := facts.NewGitHub(client, env.Repository)
	if err != nil {
		return err
	}
	in := facts.Input{Repo: env.Repository, SHA: m.sha, Branch: m.branch, LookupPR: true}
	if m.pr != nil {
		pr := facts.PRFromEvent(m.pr)
		in.PR = &pr
	}
	snap, err := facts.Gather(ctx, reader, in)
	if err != nil {
		return err
	}
	if snap.ConfigFound && len(env.Stages) > 0 {
		// The stages input skips the others as their labels would.
		if cfg, err := config.ParseRepo(config.RepoFile, snap.Config, repoShortName(env.Repository)); err == nil {
			snap.PR.Labels = withStageFilter(cfg, env.Stages, snap.PR.Labels)
		}
	}
	out := plan.Evaluate(plan.Input{Repo: env.Repository, Branch: m.branch, SHA: m.sha, Snapshot: snap})
	warnUnreadable(cmds, out.Gate.Notes)
	printPlan(w, env.Repository, snap.PR, out)

	var skipped []string
	var b strings.Builder
	b.WriteString("## shipbot (dry run)\n\nNothing was released or deployed.\n\n")
	switch out.Kind {
	case plan.Release:
		fmt.Fprintf(&b, "A run would release **%s**.\n\n", out.Tag)
		if len(out.Stages) > 0 {
			b.WriteString("| stage | target | would |\n|---|---|---|\n")
			for _, s := range out.Stages {
				what := "deploy"
				if s.Skipped {
					what = "skip (label " + s.SkipLabel + ")"
					skipped = append(skipped, s.Name)
				}
				fmt.Fprintf(&b, "| %s | %s | %s |\n", markdown.Escape(s.Name), markdown.Escape(s.Target), markdown.Escape(what))
			}
		}
		cmds.Notice("shipbot (dry run)", fmt.Sprintf("a run would release %s", out.Tag))
	case plan.Refused:
		b.WriteString("The merge gate would refuse it:\n\n")
		bullets(&b, out.Gate.Reasons)
		cmds.Warning("shipbot (dry run)", "the merge gate would refuse this merge: "+strings.Join(out.Gate.Reasons, "; "))
	case plan.Invalid:
		b.WriteString("The configuration is invalid:\n\n")
		bullets(&b, out.Problems)
		cmds.Warning("shipbot (dry run)", "invalid configuration: "+strings.Join(out.Problems, "; "))
	case plan.NoConfig:
		fmt.Fprintf(&b, "No `%s`: a run would do nothing.\n", config.RepoFile)
	case plan.NoRelease:
		b.WriteString("`semver:none`: a run would release nothing.\n")
	}
	if err := action.AppendSummary(env.Summary, redact.Redact(b.String())); err != nil {
		return err
	}
	// deployed stays empty: nothing was; skipped lists what would be.
	return writeOutputs(env, out, nil, skipped)
}
