package dashboard

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/facts"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/truncate"
)

type overviewPage struct {
	Refresh   int
	Now       time.Time
	Failed    []failedRow
	Pipelines []pipelineView
	Runs      []runRow
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

type pipelineView struct {
	Key    string
	Freeze *store.Freeze
	Stages []stageNow
	// Rolling counts the runs still rolling out (entering, deploying or
	// queued at some stage).
	Rolling int
	LastRun string // age of the newest run
}

// stageNow is what a pipeline's stage runs now.
type stageNow struct {
	Name     string
	Busy     bool
	RunID    string
	Version  string
	Phase    string
	Rollback bool
	Since    string // how long the execution has run
	Waiting  string // a run waiting for this stage, and why
}

type runRow struct {
	ID         string
	Repo       string
	PR         int
	PRURL      string
	Title      string
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
}

// overview reads the front page.
func (d *Dashboard) overview(ctx context.Context) (overviewPage, error) {
	now := d.now()
	page := overviewPage{Now: now}
	pipes, err := d.Store.ListPipelines(ctx)
	if err != nil {
		return page, err
	}
	live, err := d.Store.LiveExecutions(ctx)
	if err != nil {
		return page, err
	}
	for _, p := range pipes {
		pv := pipelineView{Key: p.Key, Freeze: p.Freeze}
		if !p.LastRunAt.IsZero() {
			pv.LastRun = short(now.Sub(p.LastRunAt))
		}
		names := append([]string(nil), p.Stages...)
		idx := map[string]int{}
		for i, n := range names {
			idx[n] = i
		}
		pv.Stages = make([]stageNow, len(names))
		for i, n := range names {
			pv.Stages[i] = stageNow{Name: n}
		}
		for _, e := range live {
			if e.PipelineKey != p.Key {
				continue
			}
			i, ok := idx[e.StageName]
			if !ok {
				i = len(pv.Stages)
				idx[e.StageName] = i
				pv.Stages = append(pv.Stages, stageNow{Name: e.StageName})
			}
			if pv.Stages[i].Busy {
				continue // one at a time; the oldest is the one that holds the stage
			}
			version := e.Tag
			if version == "" {
				version = e.Version
			}
			pv.Stages[i] = stageNow{Name: e.StageName, Busy: true, RunID: e.RunID, Version: version,
				Phase: string(e.Phase), Rollback: e.Rollback, Since: short(now.Sub(e.CreatedAt))}
		}
		if p.LastRunAt.IsZero() {
			page.Pipelines = append(page.Pipelines, pv)
			continue
		}
		runs, err := d.Store.LoadRollout(ctx, p.Key)
		if err != nil {
			return page, err
		}
		pv.Rolling = len(runs)
		for _, r := range runs {
			for _, st := range r.Stages {
				i, ok := idx[st.Name]
				if !ok || st.Wait.None() || pv.Stages[i].Waiting != "" {
					continue
				}
				pv.Stages[i].Waiting = orDash(r.Tag) + ": " + st.Wait.Text()
			}
		}
		page.Pipelines = append(page.Pipelines, pv)
	}
	limit := d.RecentRuns
	if limit <= 0 {
		limit = 30
	}
	runs, err := d.Store.RecentRollouts(ctx, limit)
	if err != nil {
		return page, err
	}
	for _, r := range runs {
		page.Runs = append(page.Runs, d.row(r, now))
	}
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

func (d *Dashboard) row(r store.RolloutRun, now time.Time) runRow {
	row := runRow{ID: r.ID, Repo: r.Repo, PR: r.PR, Version: r.Version, Tag: r.Tag, ReleaseURL: httpURL(r.ReleaseURL),
		State: r.State, Rollout: r.Rollout, Pipeline: r.PipelineKey, Age: short(now.Sub(r.CreatedAt)), CreatedAt: r.CreatedAt}
	if r.PR != 0 {
		var pr facts.PR
		if len(r.PRFacts) > 0 && json.Unmarshal(r.PRFacts, &pr) == nil {
			row.Title, row.PRURL = pr.Title, httpURL(pr.URL)
		}
		if row.PRURL == "" {
			row.PRURL = d.webURL(r.Run) + r.Repo + "/pull/" + strconv.Itoa(r.PR)
		}
	}
	for _, st := range r.Stages {
		row.Stages = append(row.Stages, stageChip{Name: st.Name, State: st.State.String(), Wait: st.Wait.Text()})
	}
	return row
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

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

type runPageView struct {
	Refresh    int
	Live       bool
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
	if len(rr.Summary) > 0 {
		var sum struct {
			Reasons  []string `json:"reasons"`
			Problems []string `json:"problems"`
			Notes    []string `json:"notes"`
		}
		if json.Unmarshal(rr.Summary, &sum) == nil {
			v.Reasons, v.Problems, v.Notes = sum.Reasons, sum.Problems, sum.Notes
		}
	}
	if v.APICalls, err = d.Store.APICalls(ctx, rr.ID); err != nil {
		return runPageView{}, err
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
