package report

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/keyed"
	"github.com/shipbot/shipbot/internal/markdown"
	"github.com/shipbot/shipbot/internal/plan"
	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/truncate"
)

// Marker is the hidden line that identifies shipbot's sticky comment, so it
// is found again even when the database that remembers its id is not.
const Marker = "<!-- shipbot:sticky-comment -->"

// Comments keeps one sticky comment per pull request, edited in place.
type Comments struct {
	Store store.Comments

	locks keyed.Mutex
}

// Upsert writes body (the marker is added) as the sticky comment of pr.
// noComments says the pull request had no comments at all when it was
// merged (its pull_request delivery counts them): then, unless a creation
// may have been cut short, there is no sticky comment to look for, and the
// lookup's API call is saved.
func (c *Comments) Upsert(ctx context.Context, client *gh.Client, repo string, pr int, body string, noComments bool) error {
	owner, name, _ := strings.Cut(repo, "/")
	defer c.locks.Lock(fmt.Sprint(repo, "#", pr))()
	// The marker comes first, so a cut to the limit never takes it.
	body = truncate.Bytes(Marker+"\n"+body, maxCommentBody, clipped)
	id, known, err := c.Store.CommentID(ctx, repo, pr)
	if err != nil {
		return err
	}
	// An id of 0 is an intent: a creation was started and may have
	// happened without its id being saved (a crash).
	intended := known && id == 0
	found := known && id != 0
	if !found && (intended || !noComments) {
		if id, found, err = c.find(ctx, client, owner, name, pr); err != nil {
			return err
		}
	}
	if found {
		_, resp, err := client.Issues.EditComment(ctx, owner, name, id, &gh.IssueComment{Body: gh.String(body)})
		if err == nil {
			return c.Store.SaveCommentID(ctx, repo, pr, id)
		}
		// Someone deleted it; post a new one below.
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			return fmt.Errorf("edit comment on %s#%d: %w", repo, pr, err)
		}
	}
	if !intended {
		if err := c.Store.SaveCommentID(ctx, repo, pr, 0); err != nil {
			return err
		}
	}
	created, _, err := client.Issues.CreateComment(ctx, owner, name, pr, &gh.IssueComment{Body: gh.String(body)})
	if err != nil {
		return fmt.Errorf("comment on %s#%d: %w", repo, pr, err)
	}
	return c.Store.SaveCommentID(ctx, repo, pr, created.GetID())
}

// find looks through the PR's comments for the marker.
func (c *Comments) find(ctx context.Context, client *gh.Client, owner, name string, pr int) (int64, bool, error) {
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for page := 0; page < 50; page++ {
		cs, resp, err := client.Issues.ListComments(ctx, owner, name, pr, opts)
		if err != nil {
			return 0, false, fmt.Errorf("list comments of %s/%s#%d: %w", owner, name, pr, err)
		}
		for _, cm := range cs {
			// Only a bot's comment: a person quoting the marker is not ours.
			if strings.HasPrefix(cm.GetBody(), Marker) && cm.GetUser().GetType() == "Bot" {
				return cm.GetID(), true, nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return 0, false, nil
}

// MergeComment renders the sticky comment for a merge's verdict.
// releaseURLs are as for MergeOutcome: releaseURLs[i] links o.Pipelines[i]'s
// release. In the `pipelines:` form a released merge gets a section per
// pipeline.
func MergeComment(o plan.Outcome, releaseURLs ...string) string {
	if o.Config.Multi {
		return mergeCommentMulti(o, releaseURLs)
	}
	releaseURL := urlAt(releaseURLs, 0)
	var b strings.Builder
	b.WriteString("### shipbot\n\n")
	switch o.Kind {
	case plan.Refused:
		b.WriteString("**Not deployed**: the merge gate refused this merge.\n\n")
		list(&b, o.Gate.Reasons)
	case plan.Invalid:
		b.WriteString("**Not deployed**: the configuration is invalid.\n\n")
		list(&b, o.Problems)
	case plan.NoRelease:
		b.WriteString("Merged without a release (`semver:none`).\n")
	case plan.NoConfig:
		b.WriteString("This repository is not configured for shipbot: nothing released.\n")
	case plan.Release:
		fmt.Fprintf(&b, "Released **%s**%s", markdown.Link(o.Tag, releaseURL), because(o.Choice.Reason))
		b.WriteString(".\n\n")
		if len(o.Stages) == 0 {
			b.WriteString("No stages are configured: the release is the whole rollout.\n")
		} else {
			stageTable(&b, o.Stages, "queued")
			skips(&b, o.Stages)
		}
	}
	return b.String()
}

// skips says which labels skip which stages, if any do.
func skips(b *strings.Builder, stages []plan.Stage) {
	var skipped []string
	for _, s := range stages {
		if s.Skipped {
			skipped = append(skipped, markdown.Escape(s.SkipLabel)+" skips "+markdown.Escape(s.Name))
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintf(b, "\nLabels: %s. Labels added before a stage starts still count.\n", strings.Join(skipped, ", "))
	}
}

// mergeCommentMulti is MergeComment in the `pipelines:` form.
func mergeCommentMulti(o plan.Outcome, releaseURLs []string) string {
	var b strings.Builder
	switch o.Kind {
	case plan.NoPipeline:
		b.WriteString("### shipbot\n\n**Nothing released**: ")
		noPipeline(&b, o)
	case plan.NoRelease:
		b.WriteString("### shipbot\n\nMerged without a release (`semver:none`)")
		touched(&b, o.Pipelines)
		notes(&b, o.Notes)
	case plan.Release:
		fmt.Fprintf(&b, "### shipbot\n\nReleased %s:\n", plural(len(o.Pipelines), "pipeline"))
		for i, p := range o.Pipelines {
			pipelineHeading(&b, p)
			fmt.Fprintf(&b, "Released **%s**%s.\n\n", markdown.Link(p.Tag, urlAt(releaseURLs, i)), pipelineBecause(p))
			if len(p.Stages) == 0 {
				b.WriteString("No stages are configured: the release is the whole rollout.\n")
				continue
			}
			stageTable(&b, p.Stages, "queued")
			skips(&b, p.Stages)
		}
		notes(&b, o.Notes)
	default: // Refused, Invalid, NoConfig: as in the single form
		single := o
		single.Config.Multi = false
		return MergeComment(single, releaseURLs...) + notesText(o.Notes)
	}
	return b.String()
}

// notesText is notes as a string.
func notesText(ns []string) string {
	var b strings.Builder
	notes(&b, ns)
	return b.String()
}
