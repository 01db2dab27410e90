package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	gh "github.com/google/go-github/v60/github"
	"golang.org/x/sync/errgroup"

	"github.com/shipbot/shipbot/internal/action"
	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/facts"
	"github.com/shipbot/shipbot/internal/merge"
	rpt "github.com/shipbot/shipbot/internal/report"
	"github.com/shipbot/shipbot/internal/store"
)

// maxCatchUp bounds the first-parent commits one job looks at, its own
// included: at most this many merges are handled by one job. GitHub's
// concurrency group keeps one job running and one pending, and cancels
// the older pending one when a newer merge queues, so a merge's own job
// may never run; the next job that runs handles it. A branch with more
// unhandled commits than this is not a burst of cancelled jobs but history
// the job should not replay: it handles the newest ones and says so.
const maxCatchUp = 50

// earlierMerge is a merge on the branch, before this job's own, that no
// job handled.
type earlierMerge struct {
	sha string
	pr  facts.PR
}

// catchUp is what a job handles before its own merge: every merge on the
// branch's first-parent history after the newest commit already handled,
// oldest first.
type catchUp struct {
	merges []earlierMerge
	// skipped are commits between them that no pull request merged (the
	// inner commits of a rebase merge, a direct push): not merges to
	// release, and left alone.
	skipped []string
	// boundary is the commit the walk stopped at: handled already (a
	// shipbot/rollout check run, a release tag, or this job's own state),
	// from before shipbot (no configuration), or past the cap. "" at the
	// root.
	boundary string
	why      string
	// capped: the walk stopped at the cap with the boundary not handled;
	// it and the merges before it get no release of their own.
	capped bool
}

// findCatchUp walks the first-parent history back from the job's merge
// commit sha (whose first parent is parent, when the event said; else it
// is read) until a commit that was handled already, and returns the
// merges in between, oldest first. The usual case, where the merge before
// was handled by its own job, costs one call (that commit's check runs).
func findCatchUp(ctx context.Context, client *gh.Client, st store.Store, repo, branch, sha, parent string) (catchUp, error) {
	var cu catchUp
	reader, err := facts.NewGitHub(client, repo)
	if err != nil {
		return cu, err
	}
	if parent == "" {
		if parent, err = merge.FirstParent(ctx, client, repo, sha); err != nil {
			return cu, err
		}
	}
	var tags map[string]bool // commits with a release tag, read once when first needed
	p := parent
	for n := 2; ; n++ { // p is the n-th commit back, the job's own being the first
		if p == "" {
			cu.why = "the branch's first commit"
			break
		}
		if why, done, err := handledAlready(ctx, client, st, repo, p); err != nil {
			return cu, err
		} else if done {
			cu.why = why
			break
		}
		if tags == nil {
			if tags, err = releaseTags(ctx, reader); err != nil {
				return cu, err
			}
		}
		if tags[p] {
			cu.why = "released (tagged)"
			break
		}
		var (
			cfgFound bool
			pr       facts.PR
			merged   bool
			next     string
		)
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() (err error) { _, cfgFound, err = reader.Config(gctx, p); return err })
		g.Go(func() (err error) { pr, merged, err = reader.PullRequestForCommit(gctx, p); return err })
		g.Go(func() (err error) { next, err = merge.FirstParent(gctx, client, repo, p); return err })
		if err := g.Wait(); err != nil {
			return cu, err
		}
		if !cfgFound {
			cu.why = "before shipbot (no " + config.RepoFile + ")"
			break
		}
		if n > maxCatchUp {
			cu.capped, cu.why = true, fmt.Sprintf("past the cap of %d commits", maxCatchUp)
			break
		}
		if merged && pr.BaseRef == branch {
			cu.merges = append(cu.merges, earlierMerge{sha: p, pr: pr})
		} else {
			cu.skipped = append(cu.skipped, p)
		}
		p = next
	}
	cu.boundary = p
	slices.Reverse(cu.merges)
	slices.Reverse(cu.skipped)
	return cu, nil
}

// handledAlready reports whether a job (or the App) handled commit sha:
// this job's own state knows it, or shipbot left its verdict on it, a
// shipbot/rollout check run (every merge shipbot handles gets one: the
// rollout's, or the verdict's when nothing is released).
func handledAlready(ctx context.Context, client *gh.Client, st store.Store, repo, sha string) (string, bool, error) {
	if _, err := st.RunBySHA(ctx, repo, sha); err == nil {
		return "handled by this job", true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", false, err
	}
	owner, name, _ := strings.Cut(repo, "/")
	opts := &gh.ListCheckRunsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for page := 0; page < 3; page++ {
		res, resp, err := client.Checks.ListCheckRunsForRef(ctx, owner, name, sha, opts)
		if err != nil {
			return "", false, fmt.Errorf("check runs of %s: %w", short(sha), err)
		}
		for _, cr := range res.CheckRuns {
			if n := cr.GetName(); n == rpt.RolloutCheck || strings.HasPrefix(n, rpt.RolloutCheck+": ") {
				return "handled (" + n + ")", true, nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return "", false, nil
}

// releaseTags are the commits that carry a release tag: one whose name,
// after any pipeline's "<name>/" and tag prefix, is a version. Releases made
// before shipbot, by hand, end the walk as shipbot's own do.
func releaseTags(ctx context.Context, reader *facts.GitHub) (map[string]bool, error) {
	ts, err := reader.Tags(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, t := range ts {
		name := t.Name[strings.LastIndexByte(t.Name, '/')+1:]
		name = strings.TrimLeftFunc(name, func(r rune) bool { return r < '0' || r > '9' })
		if _, err := semver.StrictNewVersion(name); err == nil {
			out[t.SHA] = true
		}
	}
	return out, nil
}

// record puts the earlier merges into the job's state, oldest first, each
// placed after the one before it, so that the merge coordinator takes them
// before the job's own merge and in branch order (each gets its own
// version, rolled out in order). The boundary and the commits no pull
// request merged are recorded as finished: the coordinator looks no
// further back than the job decided to.
func (cu catchUp) record(ctx context.Context, st store.Store, repo, branch string) error {
	for _, sha := range append(slices.Clone(cu.skipped), cu.boundary) {
		if sha == "" {
			continue
		}
		if _, _, err := st.CreateRun(ctx, store.Run{Repo: repo, SHA: sha, Branch: branch, Source: "catch-up", State: store.RunSkipped}); err != nil {
			return err
		}
	}
	parent := cu.boundary
	for _, em := range cu.merges {
		prFacts, err := json.Marshal(em.pr)
		if err != nil {
			return fmt.Errorf("encode pull request: %w", err)
		}
		if _, _, err := st.CreateRun(ctx, store.Run{
			Repo: repo, SHA: em.sha, Branch: branch, PR: em.pr.Number, PRFacts: prFacts,
			Source: "catch-up", MergedAt: em.pr.MergedAt, Parent: parent,
		}); err != nil {
			return err
		}
		parent = em.sha
	}
	return nil
}

// announce says which earlier merges the job takes, and when it stopped at
// the cap, that older ones get no release of their own.
func (cu catchUp) announce(cmds action.Commands, branch string) {
	if len(cu.merges) > 0 {
		names := make([]string, len(cu.merges))
		for i, em := range cu.merges {
			names[i] = fmt.Sprintf("#%d (%s)", em.pr.Number, short(em.sha))
		}
		cmds.Notice("shipbot: earlier merges", fmt.Sprintf(
			"%s on %s before this one had no job that ran (GitHub's concurrency group cancels an older pending job): this job handles %s first, oldest first (before them: %s, %s)",
			plural(len(cu.merges), "earlier merge"), branch, strings.Join(names, ", "), shortOrNone(cu.boundary), cu.why))
	}
	if cu.capped {
		cmds.Warning("shipbot: too many unhandled commits", fmt.Sprintf(
			"more than %d commits on %s since the last one shipbot handled: this job handles the newest of them (its own merge and %s); "+
				"%s and the commits before it were not handled and get no release of their own (their changes ship in the releases this job cut)",
			maxCatchUp, branch, plural(len(cu.merges), "earlier merge"), short(cu.boundary)))
	}
}

func shortOrNone(sha string) string {
	if sha == "" {
		return "nothing"
	}
	return short(sha)
}
