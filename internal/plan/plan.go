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
	"strconv"
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
	// NoPipeline: the `pipelines:` form, and the merge changed no file that
	// starts a pipeline; nothing is released.
	NoPipeline Kind = "no-pipeline"
)

// MaxListedFiles is how many files of a pull request GitHub lists; past it,
// which pipelines a merge touches cannot be told, so every one runs.
const MaxListedFiles = 3000

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
	// Approve is the stage as /shipbot approve names it when the stage
	// needs a person's approval ("prod", "api/prod"); "" when it does not.
	Approve string
}

// State says what the merge would do at the stage: deploying is the verb
// ("would deploy"), said of a stage that is not skipped.
func (s Stage) State(deploying string) string {
	switch {
	case s.Skipped:
		return "skipped (label " + s.SkipLabel + ")"
	case s.Approve != "":
		return deploying + " once approved (/shipbot approve " + s.Approve + ")"
	}
	return deploying
}

// PipelinePlan is one pipeline as the merge would run it.
type PipelinePlan struct {
	Name    string // the pipeline's name (from the repository's file: escape it)
	Version *semver.Version
	Tag     string
	PrevTag string // the pipeline's release before this one, for the compare link
	// Reused is true when the merge commit already carries this pipeline's
	// release tag: a redelivered or resumed merge takes that version.
	Reused bool
	Choice release.Choice // zero when Reused
	Stages []Stage        // Skipped from the labels of config.Repo.SkipLabels
}

// Outcome is the evaluation's verdict.
//
// Pipelines is the general answer: one entry per pipeline the merge runs,
// in file order. The top-level Choice, Version, Tag, PrevTag, Reused and
// Stages are the single-pipeline form's: there, Pipelines has exactly one
// entry and they repeat it, so callers that know only that form keep
// working. In the `pipelines:` form (Config.Multi) they stay zero: read
// Pipelines.
//
// Pipelines is set whenever the configuration parsed and the merge runs
// some pipeline: for Release (each entry then has a Version), and with
// stages but no versions for Refused (what a merge would deploy once the
// gate passes) and NoRelease. It is empty for NoConfig, Invalid and
// NoPipeline.
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
	// Pipelines are the pipelines the merge runs; see the type's comment.
	Pipelines []PipelinePlan
	// Files is how many files the pull request changed as GitHub listed
	// them, in the `pipelines:` form (they chose Pipelines).
	Files int
	// Notes are about the merge as a whole (the gate's own are in
	// Gate.Notes), e.g. why every pipeline runs.
	Notes []string
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
	out := Outcome{Config: cfg}
	run := cfg.Pipelines
	if cfg.Multi {
		run = affected(cfg, s, &out)
	}
	for _, pl := range run {
		out.Pipelines = append(out.Pipelines, PipelinePlan{Name: pl.Name, Stages: stages(cfg, pl, s.PR.Labels)})
	}
	// single copies the single-pipeline form's one pipeline to the
	// top-level fields on every return below.
	single := func(o Outcome) Outcome {
		if !o.Config.Multi && len(o.Pipelines) == 1 {
			p := o.Pipelines[0]
			o.Choice, o.Version, o.Tag, o.PrevTag, o.Reused, o.Stages = p.Choice, p.Version, p.Tag, p.PrevTag, p.Reused, p.Stages
		}
		return o
	}

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
		return single(out)
	}
	if len(run) == 0 {
		out.Kind, out.Pipelines = NoPipeline, nil
		return out
	}

	tagNames := make([]string, len(s.Tags))
	for i, t := range s.Tags {
		tagNames[i] = t.Name
	}
	var onSHA []string
	for _, t := range s.Tags {
		if t.SHA == in.SHA {
			onSHA = append(onSHA, t.Name)
		}
	}
	// A bad semver:* label is the pull request's, so the same for every
	// pipeline: said once, without a pipeline's name.
	_, labelErr := release.ChooseBump(s.PR.Labels, "", "", release.ModePatch)
	var probs []string
	problem := func(pl config.Pipeline, err error, ofLabels bool) {
		p := err.Error()
		if cfg.Multi && !ofLabels {
			p = "pipeline " + pl.Name + ": " + p
		}
		if !slices.Contains(probs, p) {
			probs = append(probs, p)
		}
	}
	released := 0
	for i, pl := range run {
		pp := &out.Pipelines[i]
		prefix := pl.Release.TagPrefix
		// A tag already on this commit means the merge was released before
		// (a redelivery, or a resume after a crash): reuse it, never cut a
		// second. Each pipeline looks for its own prefix.
		if !in.Preview {
			if v, tag, ok := release.Latest(onSHA, prefix); ok {
				pp.Version, pp.Tag, pp.Reused = v, tag, true
				pp.PrevTag = previousTag(tagNames, prefix, v)
				released++
				continue
			}
		}
		// semver:* labels are the pull request's, so they hold for every
		// pipeline; the bump rule is the pipeline's own.
		choice, err := release.ChooseBump(s.PR.Labels, s.PR.Title, s.PR.Body, pl.Release.Bump)
		if err != nil {
			problem(pl, err, labelErr != nil)
			continue
		}
		pp.Choice = choice
		latest, prevTag, hasLatest := release.Latest(tagNames, prefix)
		next, err := release.Next(latest, hasLatest, pl.Release.Initial, choice)
		switch {
		case errors.Is(err, release.ErrNoRelease):
			continue
		case err != nil:
			problem(pl, err, false)
			continue
		}
		pp.Version, pp.Tag, pp.PrevTag = next, release.Tag(prefix, next), prevTag
		released++
	}
	switch {
	case len(probs) > 0:
		out.Kind, out.Problems = Invalid, probs
		out = single(out) // the single form keeps its stages, as it always did
		out.Pipelines = nil
		return out
	case released == 0:
		out.Kind = NoRelease
		return single(out)
	}
	if released < len(out.Pipelines) {
		// Some pipeline reused its tag while semver:none holds for the
		// rest (the label came after the first delivery): only the
		// released ones run.
		out.Pipelines = slices.DeleteFunc(out.Pipelines, func(p PipelinePlan) bool { return p.Version == nil })
	}
	out.Kind = Release
	return single(out)
}

// affected returns the pipelines of the `pipelines:` form that the merge
// runs, and notes on out why all of them run when the files cannot tell.
func affected(cfg config.Repo, s facts.Snapshot, out *Outcome) []config.Pipeline {
	out.Files = len(s.Files)
	switch {
	case !s.HasPR:
		out.Notes = append(out.Notes, "Without a pull request the changed files are unknown, so every pipeline runs.")
		return cfg.Affected(nil, false)
	case !s.FilesComplete:
		changed := ""
		if s.PR.ChangedFiles > len(s.Files) {
			changed = " and this one changes " + thousands(s.PR.ChangedFiles)
		}
		out.Notes = append(out.Notes, fmt.Sprintf("GitHub lists at most %s files of a pull request%s, so which pipelines it touches cannot be told: every pipeline runs.",
			thousands(MaxListedFiles), changed))
		return cfg.Affected(s.Files, false)
	}
	return cfg.Affected(s.Files, true)
}

// thousands writes n with thousands separators: 3,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
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

// stages are pipeline pl's stages, each skipped when one of its skip labels
// (config.Repo.SkipLabels: no-deploy-to-<stage> or its skip_label, and in
// the `pipelines:` form no-deploy-to-<pipeline>/<stage>) is on the pull
// request. SkipLabel is the label that skips it, or its first.
func stages(cfg config.Repo, pl config.Pipeline, labels []string) []Stage {
	out := make([]Stage, len(pl.Stages))
	for i, st := range pl.Stages {
		skip := cfg.SkipLabels(pl, st)
		label, skipped := skip[0], false
		for _, l := range skip {
			if hasLabel(labels, l) {
				label, skipped = l, true
				break
			}
		}
		out[i] = Stage{Name: st.Name, Target: strings.Join(st.TargetNames(), ", "), SkipLabel: label, Skipped: skipped}
		if st.Approval {
			out[i].Approve = cfg.StageRef(pl, st)
		}
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
		if o.Config.Multi {
			parts := make([]string, len(o.Pipelines))
			for i, p := range o.Pipelines {
				parts[i] = p.String()
			}
			return "release " + strings.Join(parts, ", ")
		}
		if o.Reused {
			return fmt.Sprintf("release %s (already tagged)", o.Tag)
		}
		return fmt.Sprintf("release %s (%s)", o.Tag, o.Choice.Reason)
	case Refused:
		return fmt.Sprintf("refused: %v", o.Gate.Reasons)
	case Invalid:
		return fmt.Sprintf("invalid: %v", o.Problems)
	case NoPipeline:
		return fmt.Sprintf("no pipeline affected (%d files changed)", o.Files)
	}
	return string(o.Kind)
}

// String is a one-line account of a released pipeline, for logs.
func (p PipelinePlan) String() string {
	if p.Reused {
		return fmt.Sprintf("%s (already tagged)", p.Tag)
	}
	return fmt.Sprintf("%s (%s)", p.Tag, p.Choice.Reason)
}
