// Package plan decides what a merge does, as a pure function of the facts
// gathered for it: whether the configuration is valid, whether the gate
// allows it, which version it cuts and which stages it would deploy. The
// merge handler, the preview check run and `bot plan` all call Evaluate, so
// what the preview forecasts is what the merge does.
package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/facts"
	"github.com/shipbot/shipbot/internal/gate"
	"github.com/shipbot/shipbot/internal/release"
)

// Kind is what the evaluation concluded.
type Kind string

const (
	Release   Kind = "release"    // allowed: cut Version and roll out
	Refused   Kind = "refused"    // the gate refused; nothing happens
	Invalid   Kind = "invalid"    // configuration or labels are wrong; nothing happens
	NoConfig  Kind = "no-config"  // no .github/shipbot.yml: the repository is not opted in
	NoRelease Kind = "no-release" // semver:none: merged without a release or rollout
)

// Input is an evaluation's facts.
type Input struct {
	Repo   string // owner/name
	Branch string // the branch merged into
	SHA    string // the merge commit; for a preview, the PR head
	// Preview evaluates an open pull request as if merged now.
	Preview  bool
	Snapshot facts.Snapshot
}

// Stage is a stage as the merge would take it.
type Stage struct {
	Name      string
	Target    string // a wave's targets are listed comma-separated
	SkipLabel string
	Skipped   bool // its skip label is on the PR (now; the label counts again when the stage is reached)
}

// Outcome is the evaluation's verdict.
type Outcome struct {
	Kind    Kind
	Config  config.Repo
	Gate    gate.Decision
	Choice  release.Choice
	Version *semver.Version
	Tag     string
	PrevTag string // the release before this one, for the compare link
	// Reused is true when SHA already carries a release tag: a redelivered
	// or resumed merge takes that version instead of cutting another.
	Reused bool
	Stages []Stage
	// Problems are why Kind is Invalid: each a line a person can act on
	// (config errors carry file, line and column).
	Problems []string
}

// Evaluate decides. It does no I/O.
func Evaluate(in Input) Outcome {
	s := in.Snapshot
	if !s.ConfigFound {
		return Outcome{Kind: NoConfig}
	}
	cfg, err := config.ParseRepo(config.RepoFile, s.Config, repoName(in.Repo))
	if err != nil {
		return Outcome{Kind: Invalid, Problems: problems(err)}
	}
	// Only the single-pipeline form runs for now: its one pipeline.
	pl := cfg.Pipelines[0]
	out := Outcome{Config: cfg, Stages: stages(pl, s.PR.Labels)}

	policy := gate.Policy{
		Approvals:              cfg.Gate.Approvals,
		RequireProtectedBranch: cfg.Gate.RequireProtectedBranch,
		RequireChecks:          cfg.Gate.RequireChecks,
	}
	facts := s.GateFacts(in.Repo, in.Branch)
	if !s.HasPR {
		// Without a pull request the commit under judgement is SHA itself
		// (see gate.Facts.HeadSHA), which the refusal names.
		facts.HeadSHA = in.SHA
	}
	if in.Preview {
		out.Gate = gate.Forecast(policy, facts)
	} else {
		out.Gate = gate.Decide(policy, facts)
	}

	// The gate comes first, also for a commit that already carries a
	// release tag: a tag pushed by hand onto an unreviewed commit must not
	// deploy it. A redelivered or resumed merge passes the gate again on
	// the same facts.
	if !out.Gate.Allowed {
		out.Kind = Refused
		return out
	}

	tagNames := make([]string, len(s.Tags))
	for i, t := range s.Tags {
		tagNames[i] = t.Name
	}
	// A tag already on this commit means the merge was released before (a
	// redelivery, or a resume after a crash): reuse it, never cut a second.
	if !in.Preview {
		var onSHA []string
		for _, t := range s.Tags {
			if t.SHA == in.SHA {
				onSHA = append(onSHA, t.Name)
			}
		}
		if v, tag, ok := release.Latest(onSHA, pl.Release.TagPrefix); ok {
			out.Kind, out.Version, out.Tag, out.Reused = Release, v, tag, true
			out.PrevTag = previousTag(tagNames, pl.Release.TagPrefix, v)
			return out
		}
	}

	choice, err := release.ChooseBump(s.PR.Labels, s.PR.Title, s.PR.Body, pl.Release.Bump)
	if err != nil {
		out.Kind, out.Problems = Invalid, []string{err.Error()}
		return out
	}
	out.Choice = choice
	latest, prevTag, hasLatest := release.Latest(tagNames, pl.Release.TagPrefix)
	next, err := release.Next(latest, hasLatest, pl.Release.Initial, choice)
	switch {
	case errors.Is(err, release.ErrNoRelease):
		out.Kind = NoRelease
		return out
	case err != nil:
		out.Kind, out.Problems = Invalid, []string{err.Error()}
		return out
	}
	out.Kind, out.Version, out.Tag, out.PrevTag = Release, next, release.Tag(pl.Release.TagPrefix, next), prevTag
	return out
}

// previousTag is the highest release tag below v.
func previousTag(tags []string, prefix string, v *semver.Version) string {
	var below []string
	for _, t := range tags {
		if tv, _, ok := release.Latest([]string{t}, prefix); ok && tv.LessThan(v) {
			below = append(below, t)
		}
	}
	_, tag, _ := release.Latest(below, prefix)
	return tag
}

func stages(pl config.Pipeline, labels []string) []Stage {
	out := make([]Stage, len(pl.Stages))
	for i, st := range pl.Stages {
		label := st.SkipLabelName()
		out[i] = Stage{Name: st.Name, Target: strings.Join(st.TargetNames(), ", "), SkipLabel: label, Skipped: hasLabel(labels, label)}
	}
	return out
}

// hasLabel compares as GitHub does: label names are unique regardless of
// case, so "No-Deploy-To-Prod" is the same label.
func hasLabel(labels []string, name string) bool {
	return slices.ContainsFunc(labels, func(l string) bool { return strings.EqualFold(l, name) })
}

func problems(err error) []string {
	var list config.ErrorList
	if errors.As(err, &list) {
		out := make([]string, len(list))
		for i, e := range list {
			out[i] = e.Error()
		}
		return out
	}
	return []string{err.Error()}
}

func repoName(full string) string {
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] == '/' {
			return full[i+1:]
		}
	}
	return full
}

// String is a one-line account of the outcome, for logs.
func (o Outcome) String() string {
	switch o.Kind {
	case Release:
		if o.Reused {
			return fmt.Sprintf("release %s (already tagged)", o.Tag)
		}
		return fmt.Sprintf("release %s (%s)", o.Tag, o.Choice.Reason)
	case Refused:
		return fmt.Sprintf("refused: %v", o.Gate.Reasons)
	case Invalid:
		return fmt.Sprintf("invalid: %v", o.Problems)
	}
	return string(o.Kind)
}
