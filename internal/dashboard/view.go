package dashboard

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/environments"
	"github.com/shipbot/shipbot/internal/facts"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/truncate"
)

type overviewPage struct {
	Now    time.Time
	Failed []failedRow
	Envs   []envPipeline
	Repos  []string // repositories to filter the runs by
	Repo   string   // the filter in force, "" for all
	Runs   []runRow
	Older  string // the next page's query, "" on the last page
	Newest string // the first page's query, "" on the first page
	Stream liveMark
}

// failedRow is a delivery shipbot gave up on.
type failedRow struct {
	ID        string
	Event     string // event.action
	Repo      string
	Attempts  int
	LastError string
	FailedAt  time.Time
	Age       string
}

// recentFailures is how many failed deliveries the front page lists.
const recentFailures = 20

// maxErrorText bounds an error on the page; the log has it whole.
const maxErrorText = 500

// historyLen is how many earlier versions a stage lists.
const historyLen = 6

// envPipeline is a pipeline in the environments view.
type envPipeline struct {
	Key    string
	Freeze *store.Freeze
	Stages []envStage
}

// envStage is what a stage runs and does now.
type envStage struct {
	Name    string
	State   string // idle, deploying, baking, waiting
	Detail  string // in words
	Live    *envDeploy
	RunID   string // the run it is busy with or that waits
	Version string
	Started time.Time
	Until   time.Time
	Earlier []envDeploy
}

// envDeploy is a version a stage ran, with its pull request.
type envDeploy struct {
	Tag      string
	RunID    string
	PR       int
	PRURL    string
	Title    string
	Author   string
	Since    time.Time
	Age      string
	Rollback bool
	From     string
	By       string // who had a say in it reaching the stage
}

// liveMark is the audit log's mark when the page was read: the live
// updates start from it, so a change between the read and their start
// is not missed. On is false where a page has no live updates.
type liveMark struct {
	On   bool
	Mark int64
}

type runRow struct {
	ID     string
	Repo   string
	PR     int
	PRURL  string
	Title  string
	Author string
	// Summary says in words where the run stands; Duration how long it
	// took (or has taken, "so far").
	Summary    string
	Duration   string
	Version    string
	Tag        string
	ReleaseURL string
	State      string
	Rollout    string
	Pipeline   string
	Stages     []stageChip
	Age        string
	CreatedAt  time.Time
}
type stageChip struct {
	Name  string
	State string
	Wait  string
	By    string // who had a person's say in it, in words
}

// byWhom says who had a say in a stage: who sent it past its skip label,
// forced it, approved or rejected it.
func byWhom(st store.StageRow) string {
	var parts []string
	if st.DeployBy != "" {
		parts = append(parts, "deployed at @"+st.DeployBy+"'s request despite its skip label")
	}
	if st.ForceBy != "" {
		parts = append(parts, "forced past window and alarms by @"+st.ForceBy)
	}
	if st.ApprovedBy != "" {
		parts = append(parts, "approved by @"+st.ApprovedBy)
	}
	if st.RejectedBy != "" {
		r := "rejected by @" + st.RejectedBy
		if st.Rejection != "" {
			r += ": " + st.Rejection
		}
		parts = append(parts, r)
	}
	return strings.Join(parts, "; ")
}

// overview reads the front page: the environments, then a page of runs.
func (d *Dashboard) overview(ctx context.Context, repo string, before int64) (overviewPage, error) {
	now := d.now()
	page := overviewPage{Now: now, Repo: repo}
	mark, err := d.Store.LatestEvent(ctx)
	if err != nil {
		return page, err
	}
	page.Stream = liveMark{On: true, Mark: mark}
	pipes, err := environments.Read(ctx, d.Store, historyLen+1)
	if err != nil {
		return page, err
	}
	prs := prCache{d: d, ctx: ctx, seen: map[string]store.RolloutRun{}}
	repos := map[string]bool{}
	for _, p := range pipes {
		repos[p.Repo] = true
		ev := envPipeline{Key: p.Key, Freeze: p.Freeze}
		for _, st := range p.Stages {
			es := envStage{Name: st.Name, State: string(st.State), Detail: st.Detail, RunID: st.RunID, Version: st.Version,
				Started: st.Started, Until: st.Until}
			for i, h := range st.History {
				dep := prs.deployAt(st.Name, h, now)
				if i == 0 {
					es.Live = &dep
					continue
				}
				es.Earlier = append(es.Earlier, dep)
			}
			ev.Stages = append(ev.Stages, es)
		}
		page.Envs = append(page.Envs, ev)
	}
	limit := d.RecentRuns
	if limit <= 0 {
		limit = 30
	}
	runs, err := d.Store.RecentRollouts(ctx, store.RunsQuery{Repo: repo, Before: before, Limit: limit})
	if err != nil {
		return page, err
	}
	var lastSeq int64
	seqs := map[int64]bool{}
	for _, r := range runs {
		page.Runs = append(page.Runs, d.row(r, now))
		lastSeq = r.Seq
		seqs[r.Seq] = true
		repos[r.Repo] = true
	}
	if len(seqs) == limit {
		page.Older = pageQuery(repo, lastSeq)
	}
	if before > 0 {
		page.Newest = pageQuery(repo, 0)
	}
	for r := range repos {
		page.Repos = append(page.Repos, r)
	}
	slices.Sort(page.Repos)
	// Failed deliveries are listed apart from runs: a merge whose delivery
	// failed before it made a run would otherwise leave no trace here.
	failed, err := d.Store.FailedDeliveries(ctx, recentFailures)
	if err != nil {
		return page, err
	}
	for _, f := range failed {
		event := f.Event
		if f.Action != "" {
			event += "." + f.Action
		}
		page.Failed = append(page.Failed, failedRow{ID: f.ID, Event: event, Repo: f.Repo, Attempts: f.Attempts,
			LastError: truncate.Bytes(f.LastError, maxErrorText, "…"), FailedAt: f.FailedAt, Age: short(now.Sub(f.FailedAt))})
	}
	return page, nil
}

// pageQuery is the front page's query for a page of runs.
func pageQuery(repo string, before int64) string {
	v := url.Values{}
	if repo != "" {
		v.Set("repo", repo)
	}
	if before > 0 {
		v.Set("before", strconv.FormatInt(before, 10))
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

// prCache reads each rollout a view names once, for its pull request.
type prCache struct {
	d    *Dashboard
	ctx  context.Context
	seen map[string]store.RolloutRun
}

func (c prCache) deploy(h environments.Deploy, now time.Time) envDeploy {
	dep := envDeploy{Tag: h.Tag, RunID: h.RunID, PR: h.PR, Since: h.Since, Age: short(now.Sub(h.Since)), Rollback: h.Rollback, From: h.From}
	rr, ok := c.seen[h.RunID]
	if !ok {
		var err error
		if rr, err = c.d.Store.GetRollout(c.ctx, h.RunID); err != nil {
			c.d.log().Warn("read the run a stage runs", "run", h.RunID, "err", err)
		}
		c.seen[h.RunID] = rr
	}
	if rr.ID != "" && rr.PR != 0 {
		row := c.d.row(rr, now)
		dep.PRURL, dep.Title, dep.Author = row.PRURL, row.Title, row.Author
	}
	return dep
}

// deployAt is deploy for stage: with who had a say in the version
// reaching it (a rollback is its own story).
func (c prCache) deployAt(stage string, h environments.Deploy, now time.Time) envDeploy {
	dep := c.deploy(h, now)
	if !h.Rollback {
		for _, st := range c.seen[h.RunID].Stages {
			if st.Name == stage {
				dep.By = byWhom(st)
			}
		}
	}
	return dep
}

func (d *Dashboard) row(r store.RolloutRun, now time.Time) runRow {
	row := runRow{ID: r.ID, Repo: r.Repo, PR: r.PR, Version: r.Version, Tag: r.Tag, ReleaseURL: httpURL(r.ReleaseURL),
		State: r.State, Rollout: r.Rollout, Pipeline: r.PipelineKey, Age: short(now.Sub(r.CreatedAt)), CreatedAt: r.CreatedAt}
	if r.PR != 0 {
		var pr facts.PR
		if len(r.PRFacts) > 0 && json.Unmarshal(r.PRFacts, &pr) == nil {
			row.Title, row.PRURL, row.Author = pr.Title, httpURL(pr.URL), pr.Author
		}
		if row.PRURL == "" {
			row.PRURL = d.webURL(r.Run) + r.Repo + "/pull/" + strconv.Itoa(r.PR)
		}
	}
	end := r.UpdatedAt
	for _, st := range r.Stages {
		row.Stages = append(row.Stages, stageChip{Name: st.Name, State: st.State.String(), Wait: st.Wait.Text(), By: byWhom(st)})
		if st.UpdatedAt.After(end) {
			end = st.UpdatedAt
		}
	}
	row.Summary = summary(r)
	if r.Open() || r.Rollout == store.RolloutActive {
		row.Duration = short(now.Sub(r.CreatedAt)) + " so far"
	} else {
		row.Duration = short(end.Sub(r.CreatedAt))
	}
	return row
}

// summary says where a run stands in a few words: its verdict, or what
// its rollout is doing.
func summary(r store.RolloutRun) string {
	switch r.State {
	case store.RunPending, store.RunReleasing:
		if fs := r.Summarized().Refused; len(fs) > 0 && r.Rollout == "" {
			// No rollout of the merge to show yet: say what holds it.
			var refused []string
			for _, f := range fs {
				refused = append(refused, f.Tag+" ("+f.Reason+")")
			}
			return "GitHub refused the release " + strings.Join(refused, ", ") + "; tried again"
		}
		if r.Rollout == "" {
			return "being evaluated"
		}
	case store.RunRefused:
		if reasons := r.Summarized().Reasons; len(reasons) > 0 {
			return "refused: " + strings.Join(reasons, "; ")
		}
		return "refused by the gate"
	case store.RunInvalid:
		return "invalid configuration: nothing released"
	case store.RunSkipped:
		return "nothing to release"
	case store.RunFailed:
		return "failed"
	}
	if r.Rollout == "" {
		return "released"
	}
	if r.Rollout == store.RolloutDone {
		return "rollout done"
	}
	for _, st := range r.Stages {
		switch {
		case st.State == schedule.Active:
			return "deploying to " + st.Name
		case st.State == schedule.Pending && !st.Wait.None():
			return st.Name + ": " + st.Wait.Text()
		case st.State == schedule.Pending:
			return "queued for " + st.Name
		}
	}
	return "rolling out"
}

// webURL is the GitHub web server of a run: where its release lives, or
// the configured one.
func (d *Dashboard) webURL(r store.Run) string {
	if server, _, ok := strings.Cut(r.ReleaseURL, "/"+r.Repo+"/releases/"); ok && httpURL(server) != "" {
		return server + "/"
	}
	if d.GitHubURL != "" {
		return strings.TrimSuffix(d.GitHubURL, "/") + "/"
	}
	return "https://github.com/"
}

// httpURL keeps only http(s) URLs (html/template would defuse others, but
// a link that goes nowhere is better left out).
func httpURL(u string) string {
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return u
	}
	return ""
}

type runPageView struct {
	Stream     liveMark
	Live       bool
	Events     []eventRow
	Run        runRow
	SHA        string
	Branch     string
	MergedAt   time.Time
	FreezeNote string
	// Verdict is what the merge handling said of the run: why a gate
	// refused it, what was wrong with its configuration, notes. These
	// texts are what the PR was already shown.
	Reasons  []string
	Problems []string
	Notes    []string
	// APICalls is what the merge has cost in GitHub API calls so far.
	APICalls    int
	Timeline    timeline
	Legend      []struct{ Kind, Label string }
	Executions  []execRow
	GeneratedAt time.Time
}

// eventRow is one entry of a run's event log.
type eventRow struct {
	At       time.Time
	Kind     string
	Stage    string
	Actor    string
	Detail   string
	Pipeline string
}

type execRow struct {
	ID       string
	Stage    string
	Attempt  int
	Rollback bool
	Version  string
	Tag      string
	Phase    string
	Outcome  string
	Reason   string
	Started  time.Time
	Duration string
	URL      string
}

// runPage reads one run's page.
func (d *Dashboard) runPage(ctx context.Context, id string) (runPageView, error) {
	now := d.now()
	rr, err := d.Store.GetRollout(ctx, id)
	if err != nil {
		return runPageView{}, err
	}
	execs, err := d.Store.Executions(ctx, rr.ID)
	if err != nil {
		return runPageView{}, err
	}
	v := runPageView{Run: d.row(rr, now), SHA: rr.SHA, Branch: rr.Branch, MergedAt: rr.MergedAt,
		Live: rr.Open() || rr.Rollout == store.RolloutActive, Legend: legend, GeneratedAt: now}
	if rr.PipelineKey != "" {
		reason, frozen, err := d.Store.Frozen(ctx, rr.PipelineKey)
		if err != nil {
			return runPageView{}, err
		}
		if frozen {
			v.FreezeNote = "pipeline " + rr.PipelineKey + " is frozen"
			if reason != "" {
				v.FreezeNote += ": " + reason
			}
		}
	}
	sum := rr.Summarized()
	v.Reasons, v.Problems, v.Notes = sum.Reasons, sum.Problems, append(sum.Why, sum.Notes...)
	for _, f := range sum.Refused {
		v.Notes = append(v.Notes, "GitHub refused the release "+f.Tag+": "+f.Reason+"; tried again")
	}
	if v.APICalls, err = d.Store.APICalls(ctx, rr.ID); err != nil {
		return runPageView{}, err
	}
	mark, err := d.Store.LatestEvent(ctx)
	if err != nil {
		return runPageView{}, err
	}
	v.Stream = liveMark{On: true, Mark: mark}
	evs, err := d.Store.ListEvents(ctx, store.EventQuery{Run: rr.ID, Limit: 500})
	if err != nil {
		return runPageView{}, err
	}
	for i := len(evs) - 1; i >= 0; i-- { // oldest first: a log reads down
		ev := evs[i]
		v.Events = append(v.Events, eventRow{At: ev.At, Kind: ev.Kind, Stage: ev.Stage, Actor: ev.Actor, Detail: ev.Detail,
			Pipeline: ev.Pipeline})
	}
	v.Timeline = layout(rr, execs, bakes(rr), now)
	for _, e := range execs {
		end := e.FinishedAt
		running := end.IsZero()
		if running {
			end = now
		}
		dur := short(end.Sub(e.CreatedAt))
		if running {
			dur += " so far"
		}
		stage := e.StageName
		if e.Target != "" {
			stage += " → " + e.Target // one of a wave's targets
		}
		v.Executions = append(v.Executions, execRow{ID: e.ID, Stage: stage, Attempt: e.Attempt, Rollback: e.Rollback,
			Version: e.Version, Tag: e.Tag, Phase: string(e.Phase), Outcome: string(e.Outcome), Reason: e.Reason,
			Started: e.CreatedAt, Duration: dur, URL: httpURL(e.URL)})
	}
	return v, nil
}

// bakes reads each stage's bake duration from the configuration the run
// was released with.
func bakes(rr store.RolloutRun) map[string]time.Duration {
	out := map[string]time.Duration{}
	if len(rr.Config) == 0 {
		return out
	}
	name := rr.Repo[strings.IndexByte(rr.Repo, '/')+1:]
	cfg, err := config.ParseRepo(config.RepoFile, rr.Config, name)
	if err != nil {
		return out
	}
	p, ok := cfg.Pipeline(rr.Pipeline)
	if !ok {
		p = cfg.Pipelines[0]
	}
	for _, s := range p.Stages {
		out[s.Name] = s.Bake
	}
	return out
}
