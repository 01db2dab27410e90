package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/markdown"
	"github.com/shipbot/shipbot/internal/plan"
)

// MergeOutcome renders shipbot/rollout on a merge commit for what the merge
// evaluation decided. A released merge shows its version and the stages
// it will walk; the rollout engine updates the same check run as they run.
//
// releaseURLs[i] is the URL of the GitHub Release of o.Pipelines[i] (in the
// single-pipeline form, of its one release); a missing or empty one leaves
// the tag unlinked. In the `pipelines:` form (o.Config.Multi) a released
// merge gets a section per pipeline, and a merge that touches none is
// neutral, "no pipeline affected".
func MergeOutcome(o plan.Outcome, releaseURLs ...string) CheckOutput {
	if o.Config.Multi {
		return mergeOutcomeMulti(o, releaseURLs)
	}
	releaseURL := urlAt(releaseURLs, 0)
	c := CheckOutput{Name: RolloutCheck, Status: StatusCompleted}
	var b strings.Builder
	switch o.Kind {
	case plan.NoConfig:
		c.Conclusion, c.Title = Neutral, "Not configured"
		fmt.Fprintf(&b, "This repository has no `%s` at this commit, so shipbot releases and deploys nothing. Add the file to opt in.\n", config.RepoFile)
	case plan.Invalid:
		c.Conclusion, c.Title = Failure, "Invalid configuration: nothing released"
		b.WriteString("Nothing was released or deployed because:\n\n")
		list(&b, o.Problems)
	case plan.Refused:
		c.Conclusion, c.Title = ActionRequired, "Refused by the merge gate: nothing released"
		b.WriteString("This merge was not deployed because:\n\n")
		list(&b, o.Gate.Reasons)
		notes(&b, o.Gate.Notes)
	case plan.NoRelease:
		c.Conclusion, c.Title = Neutral, "No release (semver:none)"
		b.WriteString("The pull request is labelled `semver:none`: merged without a release or rollout.\n")
	case plan.Release:
		c.Title = "Released " + o.Tag
		fmt.Fprintf(&b, "Released %s%s", markdown.Link(o.Tag, releaseURL), because(o.Choice.Reason))
		b.WriteString(".\n\n")
		if len(o.Stages) == 0 {
			c.Conclusion = Success
			b.WriteString("The configuration has no stages: the release is the whole rollout.\n")
		} else {
			c.Status = StatusInProgress
			stageTable(&b, o.Stages, "queued")
		}
		notes(&b, o.Gate.Notes)
	}
	c.Summary = b.String()
	return c
}

// PreviewOutcome renders shipbot/preview on a pull request head: what a
// merge would do now. In the `pipelines:` form, every pipeline the merge
// would run gets a section.
func PreviewOutcome(o plan.Outcome) CheckOutput {
	if o.Config.Multi {
		return previewOutcomeMulti(o)
	}
	c := CheckOutput{Name: PreviewCheck, Status: StatusCompleted}
	var b strings.Builder
	switch o.Kind {
	case plan.NoConfig:
		c.Conclusion, c.Title = Neutral, "Not configured"
		fmt.Fprintf(&b, "No `%s` on this branch: a merge releases and deploys nothing.\n", config.RepoFile)
	case plan.Invalid:
		c.Conclusion, c.Title = Failure, "Invalid configuration"
		b.WriteString("A merge would release nothing until this is fixed:\n\n")
		list(&b, o.Problems)
	case plan.Refused:
		// Neutral, not failure: the preview informs; branch protection and
		// reviews are what block a merge.
		c.Conclusion, c.Title = Neutral, "A merge now would not deploy"
		b.WriteString("A merge now would be refused by the gate:\n\n")
		list(&b, o.Gate.Reasons)
		notes(&b, o.Gate.Notes)
		if len(o.Stages) > 0 {
			b.WriteString("\nOnce the gate passes, a merge would deploy:\n\n")
			stageTable(&b, o.Stages, "would deploy")
		}
	case plan.NoRelease:
		c.Conclusion, c.Title = Neutral, "semver:none: no release"
		b.WriteString("Labelled `semver:none`: a merge would release and deploy nothing.\n")
	case plan.Release:
		c.Conclusion, c.Title = Success, "A merge would release "+o.Tag
		fmt.Fprintf(&b, "A merge now would release **%s**%s", markdown.Escape(o.Tag), because(o.Choice.Reason))
		b.WriteString(".\n\n")
		if len(o.Stages) == 0 {
			b.WriteString("No stages are configured: the release is the whole rollout.\n")
		} else {
			stageTable(&b, o.Stages, "would deploy")
		}
		notes(&b, o.Gate.Notes)
	}
	c.Summary = b.String()
	return c
}

func stageTable(b *strings.Builder, stages []plan.Stage, deploying string) {
	b.WriteString("| stage | target | state |\n|---|---|---|\n")
	for _, s := range stages {
		fmt.Fprintf(b, "| %s | %s | %s |\n", markdown.Escape(s.Name), markdown.Escape(s.Target), markdown.Escape(s.State(deploying)))
	}
}

// list writes items, plain text that may quote outside text (a reviewer's
// login, a check's name, a line of the repository's config), as a bulleted
// list.
func list(b *strings.Builder, items []string) {
	for _, it := range items {
		fmt.Fprintf(b, "- %s\n", markdown.Escape(it))
	}
}

// because is the bump's reason in parentheses, or nothing. The reason
// quotes the PR title.
func because(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + markdown.Escape(reason) + ")"
}

func notes(b *strings.Builder, ns []string) {
	if len(ns) == 0 {
		return
	}
	b.WriteString("\nNotes:\n\n")
	list(b, ns)
}

// urlAt is urls[i], or "" past its end.
func urlAt(urls []string, i int) string {
	if i < len(urls) {
		return urls[i]
	}
	return ""
}

// Titles of the NoPipeline verdict.
const (
	noPipelineTitle        = "Nothing released: no pipeline affected"
	noPipelinePreviewTitle = "A merge would release nothing: no pipeline affected"
)

// mergeOutcomeMulti is MergeOutcome in the `pipelines:` form.
func mergeOutcomeMulti(o plan.Outcome, releaseURLs []string) CheckOutput {
	c := CheckOutput{Name: RolloutCheck, Status: StatusCompleted}
	var b strings.Builder
	switch o.Kind {
	case plan.NoPipeline:
		c.Conclusion, c.Title = Neutral, noPipelineTitle
		b.WriteString("Nothing was released or deployed: ")
		noPipeline(&b, o)
	case plan.Refused:
		c.Conclusion, c.Title = ActionRequired, "Refused by the merge gate: nothing released"
		b.WriteString("This merge was not deployed because:\n\n")
		list(&b, o.Gate.Reasons)
		notes(&b, allNotes(o))
	case plan.NoRelease:
		c.Conclusion, c.Title = Neutral, "No release (semver:none)"
		b.WriteString("The pull request is labelled `semver:none`: merged without a release or rollout")
		touched(&b, o.Pipelines)
		notes(&b, allNotes(o))
	case plan.Release:
		c.Title = "Released " + tags(o.Pipelines)
		c.Conclusion = Success
		for _, p := range o.Pipelines {
			if len(p.Stages) > 0 {
				c.Status, c.Conclusion = StatusInProgress, ""
			}
		}
		fmt.Fprintf(&b, "Released %s:\n", plural(len(o.Pipelines), "pipeline"))
		for i, p := range o.Pipelines {
			pipelineHeading(&b, p)
			fmt.Fprintf(&b, "Released %s%s.\n\n", markdown.Link(p.Tag, urlAt(releaseURLs, i)), pipelineBecause(p))
			pipelineStages(&b, p, "queued", "The pipeline has no stages: the release is the whole rollout.\n")
		}
		notes(&b, allNotes(o))
	default: // NoConfig, Invalid: as in the single form
		single := o
		single.Config.Multi = false
		return MergeOutcome(single, releaseURLs...)
	}
	c.Summary = b.String()
	return c
}

// previewOutcomeMulti is PreviewOutcome in the `pipelines:` form.
func previewOutcomeMulti(o plan.Outcome) CheckOutput {
	c := CheckOutput{Name: PreviewCheck, Status: StatusCompleted}
	var b strings.Builder
	switch o.Kind {
	case plan.NoPipeline:
		c.Conclusion, c.Title = Neutral, noPipelinePreviewTitle
		b.WriteString("A merge would release and deploy nothing: ")
		noPipeline(&b, o)
	case plan.Refused:
		c.Conclusion, c.Title = Neutral, "A merge now would not deploy"
		b.WriteString("A merge now would be refused by the gate:\n\n")
		list(&b, o.Gate.Reasons)
		if len(o.Pipelines) > 0 {
			fmt.Fprintf(&b, "\nOnce the gate passes, a merge would run %s:\n", plural(len(o.Pipelines), "pipeline"))
			for _, p := range o.Pipelines {
				pipelineHeading(&b, p)
				pipelineStages(&b, p, "would deploy", "No stages are configured: a release is the whole rollout.\n")
			}
		}
		notes(&b, allNotes(o))
	case plan.NoRelease:
		c.Conclusion, c.Title = Neutral, "semver:none: no release"
		b.WriteString("Labelled `semver:none`: a merge would release and deploy nothing")
		touched(&b, o.Pipelines)
		notes(&b, allNotes(o))
	case plan.Release:
		c.Conclusion, c.Title = Success, "A merge would release "+tags(o.Pipelines)
		fmt.Fprintf(&b, "A merge now would run %s:\n", plural(len(o.Pipelines), "pipeline"))
		for _, p := range o.Pipelines {
			pipelineHeading(&b, p)
			fmt.Fprintf(&b, "A merge now would release **%s**%s.\n\n", markdown.Escape(p.Tag), pipelineBecause(p))
			pipelineStages(&b, p, "would deploy", "No stages are configured: the release is the whole rollout.\n")
		}
		notes(&b, allNotes(o))
	default: // NoConfig, Invalid: as in the single form
		single := o
		single.Config.Multi = false
		return PreviewOutcome(single)
	}
	c.Summary = b.String()
	return c
}

// noPipeline explains a NoPipeline verdict after its first words: how many
// files changed, and which paths each pipeline watches.
func noPipeline(b *strings.Builder, o plan.Outcome) {
	fmt.Fprintf(b, "none of the %s this pull request changes starts a pipeline.\n\n", plural(o.Files, "file"))
	b.WriteString("| pipeline | paths | ignore |\n|---|---|---|\n")
	for _, p := range o.Config.Pipelines {
		paths := "every file"
		if p.Paths != nil {
			paths = globs(p.Paths)
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", markdown.Escape(p.Name), paths, globs(p.Ignore))
	}
	notes(b, allNotes(o))
}

// globs is a list of glob patterns for a table cell, each escaped.
func globs(patterns []string) string {
	q := make([]string, len(patterns))
	for i, p := range patterns {
		q[i] = markdown.Escape(p)
	}
	return strings.Join(q, ", ")
}

// pipelineHeading starts a pipeline's section; its name comes from the
// repository's file.
func pipelineHeading(b *strings.Builder, p plan.PipelinePlan) {
	fmt.Fprintf(b, "\n#### %s\n\n", markdown.Escape(p.Name))
}

// pipelineStages is a pipeline's stage table, or none when it has none.
func pipelineStages(b *strings.Builder, p plan.PipelinePlan, deploying, none string) {
	if len(p.Stages) == 0 {
		b.WriteString(none)
		return
	}
	stageTable(b, p.Stages, deploying)
}

// pipelineBecause is why a pipeline releases its version, in parentheses.
func pipelineBecause(p plan.PipelinePlan) string {
	if p.Reused {
		return " (already tagged on this commit)"
	}
	return because(p.Choice.Reason)
}

// touched ends a sentence naming the pipelines the merge touches.
func touched(b *strings.Builder, ps []plan.PipelinePlan) {
	if len(ps) == 0 {
		b.WriteString(".\n")
		return
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = markdown.Escape(p.Name)
	}
	fmt.Fprintf(b, " (it touches %s).\n", strings.Join(names, ", "))
}

// tags lists the pipelines' tags for a check run's title, which is plain
// text.
func tags(ps []plan.PipelinePlan) string {
	ts := make([]string, len(ps))
	for i, p := range ps {
		ts[i] = p.Tag
	}
	return strings.Join(ts, ", ")
}

// allNotes are the merge's own notes (why every pipeline runs), then the
// gate's.
func allNotes(o plan.Outcome) []string {
	return append(slices.Clone(o.Notes), o.Gate.Notes...)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
