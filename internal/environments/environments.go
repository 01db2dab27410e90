// Package environments answers the first question of every deploy tool:
// what runs where, since when, and what each stage is doing now. Build is
// the pure core, from the store's facts about one pipeline to its view;
// Read is the shell that fetches those facts. The API
// (GET /api/v1/pipelines) and the dashboard's environments view both show
// what Build says, so they never disagree.
package environments

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

// State is what a stage is doing.
type State string

const (
	Idle      State = "idle"      // nothing deploys; the live version runs
	Deploying State = "deploying" // a deploy or rollback is under way
	Baking    State = "baking"    // a deploy succeeded; alarms are watched before it passes
	Waiting   State = "waiting"   // a version waits to enter, for the reason in Detail
)

// Deploy is a version a stage ran.
type Deploy struct {
	Version string
	Tag     string
	// Since is when its deploy (or rollback) finished.
	Since time.Time
	// RunID is the rollout that released the version, PR its pull request
	// (0 for a direct push).
	RunID string
	PR    int
	// Rollback: the stage got the version back by a rollback, from From.
	Rollback bool
	From     string
}

// Stage is one stage of a pipeline now.
type Stage struct {
	Name string
	// Live is the version the stage runs: its last successful deploy not
	// since rolled back. Nil when nothing was ever deployed there.
	Live  *Deploy
	State State
	// Detail says in words what the stage is doing and why.
	Detail string
	// Version, RunID and PR are of the run the stage is busy with or that
	// waits for it; empty when idle.
	Version string
	RunID   string
	PR      int
	// Started is when the current deploy began; Until when its bake ends or
	// the deploy window the run waits for opens (zero when not known).
	Started, Until time.Time
	// History is what the stage ran before, newest first, the live
	// version first.
	History []Deploy
}

// Pipeline is one pipeline's stages now.
type Pipeline struct {
	Key    string // owner/name:pipeline
	Repo   string
	Name   string
	Freeze *store.Freeze
	Stages []Stage
}

// Build says what each stage of p does: live is the pipeline's unfinished
// executions (oldest first; others are ignored), active its runs still in
// the rollout in order, history what each stage ran (store.History).
func Build(p store.Pipeline, history map[string][]store.Deployed, live []store.LiveExecution, active []store.RolloutRun) Pipeline {
	repo, name, _ := strings.Cut(p.Key, ":")
	out := Pipeline{Key: p.Key, Repo: repo, Name: name, Freeze: p.Freeze}
	names := append([]string(nil), p.Stages...)
	for _, e := range live {
		if e.PipelineKey == p.Key && !contains(names, e.StageName) {
			names = append(names, e.StageName) // a stage the newest configuration dropped, still busy
		}
	}
	for _, n := range names {
		st := Stage{Name: n, State: Idle}
		for _, d := range history[n] {
			st.History = append(st.History, Deploy{Version: d.Version, Tag: d.Tag, Since: d.At, RunID: d.RolloutID, PR: d.PR,
				Rollback: d.Rollback, From: d.From})
		}
		if len(st.History) > 0 {
			l := st.History[0]
			st.Live = &l
		}
		if es := busy(p.Key, n, live); len(es) > 0 {
			describeBusy(&st, es)
		} else if r, wait, ok := waiting(n, active); ok {
			st.State, st.Version, st.RunID, st.PR, st.Until = Waiting, r.Tag, r.ID, r.PR, wait.Until
			st.Detail = r.Tag + " " + wait.Text()
		} else {
			st.Detail = idleDetail(st.Live, p.Freeze)
		}
		out.Stages = append(out.Stages, st)
	}
	return out
}

// busy are the executions that hold the stage: the oldest unfinished one
// and, when it is one target of a wave, its run's other unfinished
// targets there.
func busy(key, stage string, live []store.LiveExecution) []store.LiveExecution {
	var out []store.LiveExecution
	for _, e := range live {
		if e.PipelineKey == key && e.StageName == stage && (len(out) == 0 || e.RolloutID == out[0].RolloutID) {
			out = append(out, e)
		}
	}
	return out
}

// describeBusy says what the stage's executions es (one, or a wave's
// targets) do. A wave is described by its least advanced target, naming
// every target in the same case: "deploying v1.2.0 on eu, us: …", and
// those already baking after it.
func describeBusy(st *Stage, es []store.LiveExecution) {
	e := es[0]
	for _, x := range es {
		if x.Phase != rollout.Baking {
			e = x
			break
		}
	}
	var same, baking []string
	bakeEnd := e.BakeUntil
	for _, x := range es {
		switch {
		case x.Target == "":
		case (x.Phase == rollout.Baking) == (e.Phase == rollout.Baking):
			same = append(same, x.Target)
			if x.BakeUntil.After(bakeEnd) {
				bakeEnd = x.BakeUntil
			}
		default:
			baking = append(baking, x.Target)
		}
	}
	tag := e.Tag
	if tag == "" {
		tag = e.Version
	}
	st.Version, st.RunID, st.PR, st.Started = tag, e.RolloutID, e.PR, e.CreatedAt
	target := ""
	if len(same) > 0 {
		target = " on " + strings.Join(same, ", ")
	}
	switch {
	case e.Phase == rollout.Baking:
		st.State, st.Until = Baking, bakeEnd
		st.Detail = fmt.Sprintf("%s deployed%s, baking until %s while its alarms are watched", tag, target, utc(bakeEnd))
	case e.Rollback:
		st.State = Deploying
		st.Detail = "rolling back to " + tag + target
	case e.Phase == rollout.Triggering && e.Reason != "":
		st.State = Deploying
		st.Detail = fmt.Sprintf("deploying %s%s: the trigger is retried (%s)", tag, target, e.Reason)
	case e.Phase == rollout.Triggering:
		st.State = Deploying
		st.Detail = fmt.Sprintf("deploying %s%s: sending the trigger", tag, target)
	default:
		st.State = Deploying
		st.Detail = fmt.Sprintf("deploying %s%s: waiting for the deploy system's report", tag, target)
	}
	if len(baking) > 0 {
		st.Detail += "; " + strings.Join(baking, ", ") + " deployed, baking"
	}
}

// waiting is the first run in the pipeline that waits at the stage, with
// its wait.
func waiting(stage string, active []store.RolloutRun) (store.RolloutRun, rollout.Wait, bool) {
	for _, r := range active {
		for _, s := range r.Stages {
			if s.Name == stage && s.State == schedule.Pending && !s.Wait.None() {
				return r, s.Wait, true
			}
		}
	}
	return store.RolloutRun{}, rollout.Wait{}, false
}

func idleDetail(live *Deploy, freeze *store.Freeze) string {
	var b strings.Builder
	if live == nil {
		b.WriteString("nothing deployed here yet")
	} else {
		b.WriteString("runs " + live.Tag)
		if live.Rollback {
			b.WriteString(" (rolled back from " + live.From + ")")
		}
	}
	if freeze != nil {
		b.WriteString("; pipeline frozen")
		if freeze.Reason != "" {
			b.WriteString(": " + freeze.Reason)
		}
	}
	return b.String()
}

func utc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Reader is what Read needs of the store.
type Reader interface {
	ListPipelines(ctx context.Context) ([]store.Pipeline, error)
	LiveExecutions(ctx context.Context) ([]store.LiveExecution, error)
	LoadRollout(ctx context.Context, pipelineKey string) ([]store.RolloutRun, error)
	History(ctx context.Context, pipelineKey string, stages []string, perStage int) (map[string][]store.Deployed, error)
}

// Read builds every pipeline's view, with up to history versions per
// stage.
func Read(ctx context.Context, r Reader, history int) ([]Pipeline, error) {
	pipes, err := r.ListPipelines(ctx)
	if err != nil {
		return nil, err
	}
	live, err := r.LiveExecutions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Pipeline, 0, len(pipes))
	for _, p := range pipes {
		var active []store.RolloutRun
		var hist map[string][]store.Deployed
		if len(p.Stages) > 0 {
			if active, err = r.LoadRollout(ctx, p.Key); err != nil {
				return nil, err
			}
			if hist, err = r.History(ctx, p.Key, p.Stages, history); err != nil {
				return nil, err
			}
		}
		out = append(out, Build(p, hist, live, active))
	}
	return out, nil
}
