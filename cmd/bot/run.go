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
	"sync"
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
	"github.com/shipbot/shipbot/internal/pacing"
	"github.com/shipbot/shipbot/internal/pipeline"
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

// withStageFilter adds the skip label of every stage not in only. In the
// `pipelines:` form that is no-deploy-to-<pipeline>/<stage>, which skips
// the stage in its own pipeline only, so the labels serve every pipeline.
func withStageFilter(cfg config.Repo, only, labels []string) []string {
	if len(only) == 0 {
		return labels
	}
	out := slices.Clone(labels)
	for _, p := range cfg.Pipelines {
		for _, s := range p.Stages {
			if !stageSelected(cfg, p.Name, s.Name, only) {
				out = append(out, filterLabel(cfg, p, s))
			}
		}
	}
	return out
}

// stageSelected reports whether input stages (only; empty: every stage)
// runs stage of pipeline: it names the stage, or in the `pipelines:` form
// <pipeline>/<stage>. A bare name selects the stage in every pipeline that
// has it.
func stageSelected(cfg config.Repo, pipeline, stage string, only []string) bool {
	return len(only) == 0 || slices.Contains(only, stage) || (cfg.Multi && slices.Contains(only, pipeline+"/"+stage))
}

// filterLabel is the label that the stages input puts on a stage it does
// not run: one that skips that stage and no other.
func filterLabel(cfg config.Repo, p config.Pipeline, s config.Stage) string {
	if cfg.Multi {
		return config.DefaultSkipLabel(p.Name + "/" + s.Name)
	}
	return s.SkipLabelName()
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
	// parent is the merge commit's first parent when the event says (a
	// push of one commit that moved the branch forward: its before).
	parent string
	ok     bool
	why    string // when !ok: why there is nothing to do
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
		m := mergeEvent{sha: ev.GetAfter(), branch: branch, ok: true}
		if before := ev.GetBefore(); len(ev.Commits) == 1 && !ev.GetCreated() && !ev.GetForced() && strings.Trim(before, "0") != "" {
			m.parent = before
		}
		return m, nil
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

// noApprovals is why a stage with approval: true fails in a job.
const noApprovals = "needs approval (approval: true), which the Action cannot take: /shipbot approve reaches shipbot only as a GitHub App (bot serve)"

// job is what `bot run` takes from the process it runs in. Passed as a
// value rather than read from the process, so that tests run jobs side by
// side, each with its own environment and clocks.
type job struct {
	// lookupEnv reads the workflow's environment (os.LookupEnv).
	lookupEnv func(string) (string, bool)
	// paceClock is the clock writes are paced on; nil is the wall clock.
	// Tests of long catch-ups use a pacing.VirtualClock, so that minutes
	// of GitHub's write windows pass in the time the writes take.
	paceClock pacing.Clock
	// pollEvery is how often a waiting stage's outcome is polled
	// (Spinnaker's executions, or the dispatched workflow run).
	pollEvery time.Duration
}

// processJob is the job of the process: its environment, the wall clock
// and the engine's default polling.
var processJob = job{lookupEnv: os.LookupEnv, pollEvery: 10 * time.Second}

func (j job) getenv(key string) string {
	v, _ := j.lookupEnv(key)
	return v
}

// runResult is what `bot run` reports.
type runResult struct {
	outcome plan.Outcome
	// pipelines are the pipelines the merge released, each with its
	// rollout: the single-pipeline form's one, or in the `pipelines:` form
	// one per pipeline the merge ran, in file order.
	pipelines []pipelineResult
	timedOut  bool
}

// pipelineResult is one pipeline's release and rollout.
type pipelineResult struct {
	plan plan.PipelinePlan
	run  store.RolloutRun // zero when the pipeline has no stages
	// stages is the rollout as every view sees it.
	stages   []rollout.StageView
	deployed []string
	skipped  []string
	failed   []string // failed or rolled back
	notRun   []string // never reached (after a failure, or still waiting at the timeout)
}

// handedOff reports the stages that passed by handing the deploy off.
func (p pipelineResult) handedOff() []string {
	var out []string
	for _, v := range p.stages {
		if v.HowPassed() == rollout.HandedOff {
			out = append(out, v.Name)
		}
	}
	return out
}

// reason is why stage name failed, or how it passed when it did not
// learn its outcome; "" otherwise.
func (p pipelineResult) reason(name string) string {
	for _, v := range p.stages {
		if v.Name == name && v.Deployed == nil && v.State == schedule.Failed && v.RejectedBy == "" {
			return v.Rejection // failed waiting for an approval (noApprovals)
		}
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

// skipLabel is the label that skips stage name, as the merge saw it.
func (p pipelineResult) skipLabel(name string) string {
	for _, s := range p.plan.Stages {
		if s.Name == name {
			return s.SkipLabel
		}
	}
	return config.DefaultSkipLabel(name)
}

// runOutputs are the step's outputs.
type runOutputs struct {
	// version and tag are the single-pipeline form's release, or in the
	// `pipelines:` form the one pipeline's when the merge ran exactly one.
	version, tag string
	// versions and tags are the `pipelines:` form's, by pipeline name.
	versions, tags    map[string]string
	deployed, skipped []string // stages; <pipeline>/<stage> in the `pipelines:` form
}

// releaseOutputs are the outputs that say what o released.
func releaseOutputs(o plan.Outcome) runOutputs {
	var out runOutputs
	if o.Kind != plan.Release {
		return out
	}
	if !o.Config.Multi {
		out.version, out.tag = o.Version.String(), o.Tag
		return out
	}
	out.versions, out.tags = map[string]string{}, map[string]string{}
	for _, p := range o.Pipelines {
		out.versions[p.Name], out.tags[p.Name] = p.Version.String(), p.Tag
	}
	if len(o.Pipelines) == 1 {
		out.version, out.tag = o.Pipelines[0].Version.String(), o.Pipelines[0].Tag
	}
	return out
}

// stageRef names a stage in the outputs and annotations: <pipeline>/<stage>
// in the `pipelines:` form.
func stageRef(o plan.Outcome, pipeline, stage string) string {
	if o.Config.Multi {
		return pipeline + "/" + stage
	}
	return stage
}

// outputs are the outputs of the run.
func (r runResult) outputs() runOutputs {
	out := releaseOutputs(r.outcome)
	for _, p := range r.pipelines {
		for _, s := range p.deployed {
			out.deployed = append(out.deployed, stageRef(r.outcome, p.plan.Name, s))
		}
		for _, s := range p.skipped {
			out.skipped = append(out.skipped, stageRef(r.outcome, p.plan.Name, s))
		}
	}
	return out
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

func runAction(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return processJob.run(ctx, args, stdout, stderr)
}

func (j job) run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	if err := parseFlags(newFlags("run"), args, 0, runUsage, stdout); err != nil {
		return err
	}
	cmds := action.Commands{W: stdout}
	env, err := action.ReadEnv(j.getenv, os.ReadFile)
	if err != nil {
		cmds.Error("shipbot: invalid environment", err.Error())
		return exitError{2, err}
	}
	// Masks first: nothing may print a secret before the runner knows it.
	cmds.Mask(env.Token)
	kinds := drivers.New()
	var targets config.Targets
	if len(env.Targets) > 0 {
		if targets, err = config.ParseTargets(env.TargetsSrc, env.Targets, j.lookupEnv, kinds.Kinds()); err != nil {
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
		return writeOutputs(env, runOutputs{})
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
	// From here on the job writes (releases, check runs, comments,
	// deployments; a catch-up may have many merges to show): through a
	// client paced under GitHub's secondary limits, its slots in the job's
	// state database. The reads above needed none.
	pacer := &pacing.Pacer{Ledger: st, Clock: j.paceClock}
	client, err = ghclient.NewTokenClient(ghclient.Options{BaseURL: env.APIURL, Logger: log, Pacer: pacer}, env.Token)
	if err != nil {
		return err
	}

	var seen observedMerges
	ended := make(chan struct{}, 1)
	parts := service.Bot{
		Store: st, Clients: tokenClients{client}, Log: log, Owner: "action-" + env.RunID, Targets: targets,
		Drivers: kinds, PublicURL: env.PublicURL, TokenKey: []byte(env.Token), Version: version,
		EngineTick: 500 * time.Millisecond, ReportDelay: 200 * time.Millisecond,
		Observe: seen.add, ObserveRollout: signalEnds(ended), Pressure: pacer,
	}.Build()
	engine := jobEngine{Engine: parts.Engine, ended: ended}
	parts.Coordinator.Rollouts = stageFilter{next: parts.Engine, only: env.Stages}
	parts.Coordinator.PairWait = -1 // one event is all a job gets
	parts.Coordinator.OneShot = true
	callbacks := env.Wait && env.PublicURL != ""
	parts.Engine.PollEvery = j.pollEvery
	// Approvals are /shipbot commands, which reach shipbot only as an App:
	// a stage that needs one fails here at once rather than holding the
	// job to its timeout and telling the PR to comment a command nobody
	// reads.
	parts.Engine.NoApprovals = noApprovals
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
		environment, err := environmentOf(ctx, st, ex)
		if err != nil {
			return "", false, err
		}
		return deployedBefore(ctx, client, repo, environment, ex)
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
	// Merges on the branch whose own job never ran (GitHub's concurrency
	// group cancelled it) are this job's too: recorded first, they are
	// taken before its own merge, oldest first (catchup.go).
	cu, err := findCatchUp(ctx, client, st, env.Repository, m.branch, m.sha, m.parent)
	if err != nil {
		return err
	}
	if err := cu.record(ctx, st, env.Repository, m.branch); err != nil {
		return err
	}
	cu.announce(cmds, m.branch)
	d := store.Delivery{ID: "actions-" + env.RunID + "-" + env.RunAttempt, Event: event, Action: envelope.Action,
		Repo: env.Repository, Payload: payload}
	if err := parts.Coordinator.Handle(ctx, d); err != nil {
		return err
	}
	own, earlier := seen.split(m.sha)
	// One deadline for every rollout the job waits for: input timeout
	// bounds the whole job's waiting.
	deadline := time.Now().Add(env.Timeout)
	var earlierRes []earlierResult
	for _, o := range earlier {
		name := mergeName(o.run)
		res, err := settle(ctx, aboutMerge{cmds, name}, env, engine, parts.Reporter, st, o, deadline)
		if err != nil {
			return err
		}
		earlierRes = append(earlierRes, earlierResult{name: name, res: res})
	}
	// What the job shows on the PR is written before it reports and ends:
	// the engine's last reports first (a finished rollout reports once
	// more in the background), then the reporter's flush.
	flush := func() {
		parts.Engine.Wait()
		parts.Reporter.Wait()
	}
	if own == nil {
		// The merge was handled already: by an earlier job whose state
		// this one kept (the same runner, the same state file).
		flush()
		if err := reportEarlier(cmds, env, earlierRes, redact); err != nil {
			return err
		}
		return handledBefore(ctx, cmds, env, st, m.sha)
	}
	warnUnreadable(cmds, own.outcome.Gate.Notes)
	res, err := settle(ctx, cmds, env, engine, parts.Reporter, st, *own, deadline)
	if err != nil {
		return err
	}
	flush()
	return report(cmds, env, res, earlierRes, redact)
}

// observed is a merge the job took to its verdict.
type observed struct {
	run     store.Run
	outcome plan.Outcome
}

// observedMerges are the merges the job took to their verdicts, in the
// order it did: the earlier merges it caught up with, then its own.
type observedMerges struct {
	mu  sync.Mutex
	all []observed
}

func (s *observedMerges) add(r store.Run, o plan.Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, observed{r, o})
}

// split returns the job's own merge (nil when it was not evaluated: it was
// handled before) and the others, in order.
func (s *observedMerges) split(sha string) (own *observed, earlier []observed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.all {
		if s.all[i].run.SHA == sha {
			own = &s.all[i]
		} else {
			earlier = append(earlier, s.all[i])
		}
	}
	return own, earlier
}

// reporter is the part of the rollout reporter settle uses.
type reporter interface {
	RolloutChanged(ctx context.Context, runID string)
}

// settle waits for the rollouts of a merge the job released (every
// pipeline it released rolls out on its own; the job waits for all of
// them) and has the pull request shown how they ended.
func settle(ctx context.Context, cmds annotator, env action.Env, engine stepper,
	rep reporter, st store.Store, o observed, deadline time.Time) (runResult, error) {
	res := runResult{outcome: o.outcome}
	if o.outcome.Kind != plan.Release {
		return res, nil
	}
	res, err := awaitRollouts(ctx, cmds, env, engine, st, o.run.ID, res, deadline)
	if err != nil {
		return res, err
	}
	for _, p := range res.pipelines {
		if p.run.ID != "" {
			rep.RolloutChanged(ctx, p.run.ID)
		}
	}
	return res, nil
}

// earlierResult is how an earlier merge the job caught up with went.
type earlierResult struct {
	name string // "merge #12 (abc1234)"
	res  runResult
}

// mergeName names a merge in annotations and the step summary.
func mergeName(r store.Run) string {
	if r.PR != 0 {
		return fmt.Sprintf("merge #%d (%s)", r.PR, short(r.SHA))
	}
	return "merge " + short(r.SHA)
}

// environmentOf is the GitHub Deployments environment that ex deploys to,
// as the reporter names it: the stage, "<stage>/<target>" for a wave's
// target, after "<pipeline>/" in the `pipelines:` form.
func environmentOf(ctx context.Context, st store.Store, ex store.Execution) (string, error) {
	environment := ex.StageName
	if ex.Target != "" {
		environment += "/" + ex.Target
	}
	rr, err := st.GetRollout(ctx, ex.RolloutID)
	if err != nil {
		return "", err
	}
	if cfg, err := config.ParseRepo(config.RepoFile, rr.Config, repoShortName(rr.Repo)); err == nil && cfg.Multi {
		environment = rr.Pipeline + "/" + environment
	}
	return environment, nil
}

// deployedBefore reports whether a successful deployment of the
// execution's tag to its environment exists that another execution made.
func deployedBefore(ctx context.Context, client *gh.Client, repo, environment string, ex store.Execution) (string, bool, error) {
	owner, name, _ := strings.Cut(repo, "/")
	deps, _, err := client.Repositories.ListDeployments(ctx, owner, name, &gh.DeploymentsListOptions{
		Ref: ex.Tag, Environment: environment, ListOptions: gh.ListOptions{PerPage: 20},
	})
	if err != nil {
		return "", false, fmt.Errorf("deployments of %s to %s: %w", ex.Tag, environment, err)
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
			return fmt.Sprintf("deployment %d of %s to %s", d.GetID(), ex.Tag, environment), true, nil
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
	var names, unknown []string // names: every stage as the input may name it
	for _, p := range cfg.Pipelines {
		for _, s := range p.Stages {
			names = append(names, cfg.StageRef(p, s))
		}
	}
	for _, want := range env.Stages {
		known := false
		for _, p := range cfg.Pipelines {
			for _, s := range p.Stages {
				known = known || stageSelected(cfg, p.Name, s.Name, []string{want})
			}
		}
		if !known {
			unknown = append(unknown, want)
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

// awaitRollouts steps the engine until the rollout of every pipeline the
// run released is done, or the timeout, and reads how each went.
// stepper is the engine as a job drives it: a step at a time, again when
// woken or when LookEvery has passed.
type stepper interface {
	Step(context.Context)
	Woken() <-chan struct{}
	Finished() <-chan struct{}
	LookEvery() time.Duration
}

// jobEngine is the engine as a job steps it. A rollout ends (its final
// state shown, the run out of its pipeline) in the background after the
// pass that found it done, and wakes nothing: the engine's "done" event,
// signalled on ended, tells the waiting job at once instead of at its
// next look, up to LookEvery later.
type jobEngine struct {
	*pipeline.Engine
	ended chan struct{}
}

func (j jobEngine) Finished() <-chan struct{} { return j.ended }

// LookEvery is how often the job steps the engine while nothing woke it:
// for what only time brings (a bake's end, a timeout), and at least at the
// pace of polling.
func (j jobEngine) LookEvery() time.Duration { return min(500*time.Millisecond, j.PollEvery) }

// signalEnds is an engine observer that signals ended at every rollout's
// "done" event.
func signalEnds(ended chan<- struct{}) func(pipeline.Event) {
	return func(ev pipeline.Event) {
		if ev.What != "done" {
			return
		}
		select {
		case ended <- struct{}{}:
		default: // a signal is waiting already
		}
	}
}

func awaitRollouts(ctx context.Context, cmds annotator, env action.Env, engine stepper,
	st store.Store, runID string, res runResult, deadline time.Time) (runResult, error) {
	o := res.outcome
	res.pipelines = make([]pipelineResult, len(o.Pipelines))
	waits := false
	for i, p := range o.Pipelines {
		res.pipelines[i].plan = p
		waits = waits || len(p.Stages) > 0
	}
	if !waits {
		return res, nil // released only: nothing rolls out
	}
	// The job's context may be cancelled meanwhile; what it reads must
	// still be read.
	rctx := context.WithoutCancel(ctx)
	var rollouts []store.RolloutRun
	for {
		engine.Step(ctx)
		var err error
		if rollouts, err = st.RolloutsOf(rctx, runID); err != nil {
			return res, err
		}
		unfinished := unfinishedTags(res.pipelines, rollouts)
		if len(unfinished) == 0 {
			break
		}
		if ctx.Err() != nil {
			cmds.Error("shipbot: cancelled", fmt.Sprintf("the job was cancelled while %s was rolling out", strings.Join(unfinished, ", ")))
			res.timedOut = true
			break
		}
		if time.Now().After(deadline) {
			cmds.Error("shipbot: timeout", fmt.Sprintf("the rollout of %s did not finish within %s (input timeout)", strings.Join(unfinished, ", "), env.Timeout))
			res.timedOut = true
			break
		}
		select {
		case <-ctx.Done():
		case <-engine.Woken():
		case <-engine.Finished():
		case <-time.After(engine.LookEvery()):
		}
	}
	for i := range res.pipelines {
		p := &res.pipelines[i]
		if len(p.plan.Stages) == 0 {
			continue
		}
		rr, ok := rolloutOf(rollouts, p.plan.Name)
		if !ok {
			// Its rollout never started: none of its stages ran.
			for _, s := range p.plan.Stages {
				p.notRun = append(p.notRun, s.Name)
			}
			continue
		}
		p.run = rr
		execs, err := st.Executions(rctx, rr.ID)
		if err != nil {
			return res, err
		}
		p.stages = rollout.Project(rr.Stages, execs)
		for _, v := range p.stages {
			switch {
			case v.State == schedule.Passed:
				p.deployed = append(p.deployed, v.Name)
			case v.State == schedule.Skipped:
				p.skipped = append(p.skipped, v.Name)
			case v.State == schedule.Failed || v.State == schedule.RolledBack:
				p.failed = append(p.failed, v.Name)
			default:
				p.notRun = append(p.notRun, v.Name)
			}
		}
	}
	return res, nil
}

// rolloutOf finds pipeline's rollout among a run's.
func rolloutOf(rollouts []store.RolloutRun, pipeline string) (store.RolloutRun, bool) {
	for _, rr := range rollouts {
		if rr.Pipeline == pipeline {
			return rr, true
		}
	}
	return store.RolloutRun{}, false
}

// unfinishedTags are the tags of the pipelines with stages whose rollout
// is not done yet.
func unfinishedTags(pipelines []pipelineResult, rollouts []store.RolloutRun) []string {
	var out []string
	for _, p := range pipelines {
		if len(p.plan.Stages) == 0 {
			continue
		}
		if rr, ok := rolloutOf(rollouts, p.plan.Name); !ok || rr.Rollout != store.RolloutDone {
			out = append(out, p.plan.Tag)
		}
	}
	return out
}

// handledBefore reports a merge whose run this job's state already holds.
func handledBefore(ctx context.Context, cmds action.Commands, env action.Env, st *store.SQLite, sha string) error {
	r, err := st.RunBySHA(ctx, env.Repository, sha)
	if err != nil {
		cmds.Notice("shipbot", "this merge was handled already: nothing to do")
		return writeOutputs(env, runOutputs{})
	}
	out := runOutputs{version: r.Version, tag: r.Tag}
	released := r.Tag
	// In the `pipelines:` form each pipeline's release is its rollout's.
	if rollouts, err := st.RolloutsOf(ctx, r.ID); err == nil && len(rollouts) > 0 {
		if cfg, err := config.ParseRepo(config.RepoFile, rollouts[0].Config, repoShortName(r.Repo)); err == nil && cfg.Multi {
			out = runOutputs{versions: map[string]string{}, tags: map[string]string{}}
			var tags []string
			for _, rr := range rollouts {
				out.versions[rr.Pipeline], out.tags[rr.Pipeline] = rr.Version, rr.Tag
				tags = append(tags, rr.Tag)
			}
			if len(rollouts) == 1 {
				out.version, out.tag = rollouts[0].Version, rollouts[0].Tag
			}
			released = strings.Join(tags, ", ")
		}
	}
	cmds.Notice("shipbot", fmt.Sprintf("merge %s was handled already (%s%s): nothing more to do", short(sha), r.State, prefixed(" ", released)))
	return writeOutputs(env, out)
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

// writeOutputs writes every output the action declares (action/action.yml),
// each one always, so a workflow can read any of them.
func writeOutputs(env action.Env, o runOutputs) error {
	versions, err := jsonObject(o.versions)
	if err != nil {
		return err
	}
	tags, err := jsonObject(o.tags)
	if err != nil {
		return err
	}
	return action.WriteOutputs(env.Output, [][2]string{
		{"version", o.version}, {"tag", o.tag},
		{"versions", versions}, {"tags", tags},
		{"deployed", strings.Join(o.deployed, ",")}, {"skipped", strings.Join(o.skipped, ",")},
		{"run-url", env.RunURL()},
	})
}

// jsonObject is m as a one-line JSON object, keys sorted; {} when empty.
func jsonObject(m map[string]string) (string, error) {
	if m == nil {
		m = map[string]string{}
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// report writes outputs, the step summary and annotations, and decides the
// exit code: 0 only when every stage that ran succeeded (or was handed off),
// in every pipeline the merge released, and in every earlier merge the job
// caught up with. The outputs are the job's own merge's.
func report(cmds action.Commands, env action.Env, res runResult, earlier []earlierResult, redact *deploy.Redactor) error {
	if err := writeOutputs(env, res.outputs()); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("## shipbot\n\n")
	if len(earlier) > 0 {
		fmt.Fprintf(&b, "This job also handled %s whose own jobs never ran, before this one (sections below).\n\n",
			plural(len(earlier), "earlier merge"))
	}
	failure := summarize(&b, cmds, env, res, redact)
	if err := summarizeEarlier(&b, cmds, env, earlier, redact); err != nil && failure == nil {
		failure = err
	}
	if err := action.AppendSummary(env.Summary, redact.Redact(b.String())); err != nil {
		return err
	}
	return failure
}

// reportEarlier writes the step summary and annotations of the earlier
// merges alone (the job's own merge was handled before).
func reportEarlier(cmds action.Commands, env action.Env, earlier []earlierResult, redact *deploy.Redactor) error {
	if len(earlier) == 0 {
		return nil
	}
	var b strings.Builder
	failure := summarizeEarlier(&b, cmds, env, earlier, redact)
	if err := action.AppendSummary(env.Summary, redact.Redact(b.String())); err != nil {
		return err
	}
	return failure
}

// summarizeEarlier writes a section per earlier merge, oldest first; each
// annotation names its merge. It returns the first failure.
func summarizeEarlier(b *strings.Builder, cmds action.Commands, env action.Env, earlier []earlierResult, redact *deploy.Redactor) error {
	var failure error
	for _, e := range earlier {
		fmt.Fprintf(b, "\n## shipbot: earlier %s\n\nIts own job never ran; this one handled it.\n\n", e.name)
		if err := summarize(b, aboutMerge{cmds, e.name}, env, e.res, redact); err != nil && failure == nil {
			var ee exitError
			if errors.As(err, &ee) {
				err = exitError{ee.code, fmt.Errorf("earlier %s: %w", e.name, ee.err)}
			}
			failure = err
		}
	}
	return failure
}

// annotator writes annotations: action.Commands, or aboutMerge.
type annotator interface {
	Notice(title, msg string)
	Warning(title, msg string)
	Error(title, msg string)
}

// aboutMerge annotates for an earlier merge the job caught up with: each
// message names it.
type aboutMerge struct {
	cmds annotator
	name string
}

func (a aboutMerge) Notice(title, msg string)  { a.cmds.Notice(title, a.name+": "+msg) }
func (a aboutMerge) Warning(title, msg string) { a.cmds.Warning(title, a.name+": "+msg) }
func (a aboutMerge) Error(title, msg string)   { a.cmds.Error(title, a.name+": "+msg) }

// summarize writes what res's merge did to the step summary and annotates
// it; it returns the exit error when the merge was refused or invalid or a
// stage failed or did not finish.
func summarize(b *strings.Builder, cmds annotator, env action.Env, res runResult, redact *deploy.Redactor) error {
	o := res.outcome
	var failure error
	switch o.Kind {
	case plan.Refused:
		b.WriteString("**Refused by the merge gate: nothing released.**\n\n")
		bullets(b, o.Gate.Reasons)
		cmds.Error("shipbot: merge refused", strings.Join(o.Gate.Reasons, "; "))
		failure = exitError{1, errors.New("the merge gate refused this merge")}
	case plan.Invalid:
		b.WriteString("**Invalid configuration: nothing released.**\n\n")
		bullets(b, o.Problems)
		cmds.Error("shipbot: invalid configuration", strings.Join(o.Problems, "; "))
		failure = exitError{1, errors.New("invalid configuration")}
	case plan.NoConfig:
		fmt.Fprintf(b, "No `%s`: nothing to do.\n", config.RepoFile)
		cmds.Notice("shipbot", "no "+config.RepoFile+": nothing to do")
	case plan.NoRelease:
		b.WriteString("`semver:none`: merged without a release.\n")
		cmds.Notice("shipbot", "semver:none: no release")
	case plan.NoPipeline:
		fmt.Fprintf(b, "No pipeline affected: nothing released (the pull request changed %s, none of which starts a pipeline).\n", files(o.Files))
		cmds.Notice("shipbot", "no pipeline affected: nothing released")
	case plan.Release:
		if !o.Config.Multi && len(res.pipelines) == 1 {
			if err := reportPipeline(b, cmds, env, res, res.pipelines[0], redact); err != nil {
				failure = exitError{1, err}
			}
			break
		}
		tags := make([]string, len(res.pipelines))
		for i, p := range res.pipelines {
			tags[i] = "**" + p.plan.Tag + "**"
		}
		fmt.Fprintf(b, "Released %s.\n\n", strings.Join(tags, ", "))
		bullets(b, o.Notes)
		if len(o.Notes) > 0 {
			b.WriteString("\n")
		}
		var failed []string
		for _, p := range res.pipelines {
			fmt.Fprintf(b, "### %s\n\n", markdown.Escape(p.plan.Name))
			if err := reportPipeline(b, cmds, env, res, p, redact); err != nil {
				failed = append(failed, err.Error())
			}
			b.WriteString("\n")
		}
		if len(failed) > 0 {
			failure = exitError{1, errors.New(strings.Join(failed, "; "))}
		}
	}
	return failure
}

func files(n int) string {
	if n == 1 {
		return "1 file"
	}
	return fmt.Sprintf("%d files", n)
}

// reportPipeline writes one pipeline's release and stage table to the
// step summary and annotates its outcome; it returns an error when a stage
// failed or did not finish.
func reportPipeline(b *strings.Builder, cmds annotator, env action.Env, res runResult, p pipelineResult, redact *deploy.Redactor) error {
	multi := res.outcome.Config.Multi
	tag := p.plan.Tag
	fmt.Fprintf(b, "Released **%s**.\n\n", tag)
	if len(p.run.Stages) > 0 {
		b.WriteString("| stage | state | detail |\n|---|---|---|\n")
		for _, s := range p.stages {
			state, detail := s.State.String(), s.Wait.Text()
			switch {
			case s.HowPassed() == rollout.HandedOff:
				state, detail = "passed (handed off)", s.Deployed.Reason+": the deploy system owns the outcome"
			case s.State == schedule.Skipped:
				detail = "label " + p.skipLabel(s.Name)
				if !stageSelected(res.outcome.Config, p.plan.Name, s.Name, env.Stages) {
					detail = "not in input stages"
				}
			case p.reason(s.Name) != "":
				detail = p.reason(s.Name)
			case slices.Contains(p.notRun, s.Name) && !res.timedOut:
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
			fmt.Fprintf(b, "| %s | %s | %s |\n", markdown.Escape(s.Name), markdown.Escape(state), detail)
			// A wave shows a row per target under its stage.
			for _, x := range s.Targets {
				detail := ""
				if x.URL != "" {
					detail = markdown.Link("execution", x.URL)
				}
				fmt.Fprintf(b, "| ↳ %s | %s | %s |\n", markdown.Escape(x.Target), markdown.Escape(rollout.TargetWords(x)), detail)
			}
		}
	}
	// In the `pipelines:` form every annotation names its pipeline: the
	// tag alone need not (tag_prefix is the file's).
	what := tag
	if multi {
		what = fmt.Sprintf("pipeline %s (%s)", p.plan.Name, tag)
	}
	if len(p.failed) > 0 || len(p.notRun) > 0 {
		var parts []string
		for _, name := range p.failed {
			parts = append(parts, fmt.Sprintf("stage %s failed%s", name, prefixed(": ", p.reason(name))))
		}
		if len(p.notRun) > 0 {
			state := "not reached"
			if res.timedOut {
				state = "unfinished"
			}
			parts = append(parts, state+": "+strings.Join(p.notRun, ", "))
		}
		msg := what + ": " + strings.Join(parts, "; ")
		cmds.Error("shipbot: rollout failed", redact.Redact(msg))
		return errors.New(msg)
	}
	handed := p.handedOff()
	deployed := orNone(p.deployed)
	if len(handed) > 0 {
		deployed += " (handed off: " + strings.Join(handed, ",") + ")"
	}
	released := "released " + tag
	if multi {
		released = "pipeline " + p.plan.Name + ": " + released
	}
	cmds.Notice("shipbot", fmt.Sprintf("%s; deployed: %s; skipped: %s", released, deployed, orNone(p.skipped)))
	return nil
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

	outputs := releaseOutputs(out)
	var b strings.Builder
	b.WriteString("## shipbot (dry run)\n\nNothing was released or deployed.\n\n")
	switch out.Kind {
	case plan.Release:
		tags := make([]string, len(out.Pipelines))
		for i, p := range out.Pipelines {
			tags[i] = p.Tag
		}
		fmt.Fprintf(&b, "A run would release **%s**.\n\n", strings.Join(tags, "**, **"))
		if out.Config.Multi {
			bullets(&b, out.Notes)
			if len(out.Notes) > 0 {
				b.WriteString("\n")
			}
		}
		for _, p := range out.Pipelines {
			if out.Config.Multi {
				fmt.Fprintf(&b, "### %s\n\nA run would release **%s**.\n\n", markdown.Escape(p.Name), p.Tag)
			}
			if len(p.Stages) > 0 {
				b.WriteString("| stage | target | would |\n|---|---|---|\n")
				for _, s := range p.Stages {
					what := "deploy"
					if s.Skipped {
						what = "skip (label " + s.SkipLabel + ")"
						outputs.skipped = append(outputs.skipped, stageRef(out, p.Name, s.Name))
					}
					fmt.Fprintf(&b, "| %s | %s | %s |\n", markdown.Escape(s.Name), markdown.Escape(s.Target), markdown.Escape(what))
				}
				if out.Config.Multi {
					b.WriteString("\n")
				}
			}
		}
		cmds.Notice("shipbot (dry run)", fmt.Sprintf("a run would release %s", strings.Join(tags, ", ")))
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
	case plan.NoPipeline:
		b.WriteString("No pipeline affected: a run would release nothing.\n")
		cmds.Notice("shipbot (dry run)", "no pipeline affected: a run would release nothing")
	}
	if err := action.AppendSummary(env.Summary, redact.Redact(b.String())); err != nil {
		return err
	}
	// deployed stays empty: nothing was; skipped lists what would be.
	return writeOutputs(env, outputs)
}
