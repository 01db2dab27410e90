package report

import (
	"fmt"
	"strings"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/markdown"
	"github.com/shipbot/shipbot/internal/plan"
)

// MergeOutcome renders shipbot/rollout on a merge commit for what the merge
// evaluation decided. A released merge shows its version and the stages
// it will walk; the rollout engine updates the same check run as they run.
func MergeOutcome(o plan.Outcome, releaseURL string) CheckOutput {
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
// merge would do now.
func PreviewOutcome(o plan.Outcome) CheckOutput {
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
		state := deploying
		if s.Skipped {
			state = "skipped (label " + s.SkipLabel + ")"
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", markdown.Escape(s.Name), markdown.Escape(s.Target), markdown.Escape(state))
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
