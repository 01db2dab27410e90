// Package facts is every GitHub read shipbot makes about a merge or a pull
// request, behind one narrow interface (Reader), in the manner of
// policy-bot's pull.Context. The deciding packages (gate, release, plan)
// never call GitHub: they get the values gathered here, and their tests use
// a plain struct instead of a server.
package facts

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/gate"
)

// PR is what the bot needs of a pull request.
type PR struct {
	Number  int
	Title   string
	Body    string
	Author  string
	URL     string
	HeadSHA string
	BaseRef string
	Labels  []string
	// Open: the pull request is open (not closed, not merged).
	Open     bool `json:",omitempty"`
	Merged   bool
	MergeSHA string
	MergedAt time.Time
	// Comments is how many comments the pull request had, when the payload
	// said (list endpoints do not).
	Comments *int `json:",omitempty"`
	// ChangedFiles is how many files the pull request changes, as GitHub
	// counts them (all of them, also past the 3,000 it lists); 0 when the
	// payload did not say (list endpoints do not). Pass it to Files.
	ChangedFiles int `json:",omitempty"`
}

// Tag is a git tag and the commit it points at.
type Tag struct {
	Name string
	SHA  string
}

// Reader reads one repository's facts. Implementations may cache: one
// evaluation reads each fact once.
type Reader interface {
	// Config returns .github/shipbot.yml at ref; found is false when the
	// file does not exist there.
	Config(ctx context.Context, ref string) (data []byte, found bool, err error)
	PullRequest(ctx context.Context, number int) (PR, error)
	// PullRequestForCommit finds the merged pull request whose merge commit
	// is sha; ok is false for a commit no pull request merged.
	PullRequestForCommit(ctx context.Context, sha string) (pr PR, ok bool, err error)
	Reviews(ctx context.Context, number int) ([]gate.Review, error)
	Protection(ctx context.Context, branch string) (gate.Protection, error)
	Checks(ctx context.Context, sha string) ([]gate.Check, error)
	Tags(ctx context.Context) ([]Tag, error)
	// Files lists the paths pull request number changes, both the new and
	// the previous path of a rename. GitHub lists at most 3,000 files of a
	// pull request; complete is false when it listed fewer than
	// changedFiles, the pull request's PR.ChangedFiles (0 when unknown:
	// then the pull request is read, once, only if the list is at the cap).
	Files(ctx context.Context, number, changedFiles int) (files []string, complete bool, err error)
}

// Input says what to gather.
type Input struct {
	Repo   string
	SHA    string // the commit whose config counts (merge commit, or PR head for a preview)
	Branch string // the protected branch
	// PR, when the delivery carried the pull request, saves reading it.
	PR *PR
	// LookupPR asks for the pull request that merged SHA when PR is nil
	// (a push delivery).
	LookupPR bool
}

// Snapshot is everything one evaluation needs, read once.
type Snapshot struct {
	Config      []byte
	ConfigFound bool
	PR          PR
	HasPR       bool
	Reviews     []gate.Review
	Protection  gate.Protection
	Checks      []gate.Check
	Tags        []Tag
	// Files are the paths the pull request changed (Reader.Files), read
	// only when the configuration uses the `pipelines:` form and there is
	// a pull request: they decide which pipelines the merge runs.
	// FilesComplete is false when GitHub listed fewer than the pull request
	// changed (its cap is 3,000), and when they were not read.
	Files         []string `json:",omitempty"`
	FilesComplete bool     `json:",omitempty"`
}

// Gather reads the facts concurrently. With the pull request in hand it is
// one round of parallel reads; a push delivery needs one more round, since
// reviews and checks hang off the pull request it first has to find.
//
// When the configuration at SHA uses the `pipelines:` form, the pull
// request's files are read too (which pipelines a merge runs depends on
// them), as soon as both the configuration and the pull request are known:
// right after the configuration when the pull request was given, after
// whichever of the two comes last when it is looked up. The
// single-pipeline form never reads them, so it costs no extra call.
func Gather(ctx context.Context, r Reader, in Input) (Snapshot, error) {
	var s Snapshot
	g, gctx := errgroup.WithContext(ctx)
	// multi is set before configRead is closed.
	var multi bool
	configRead := make(chan struct{})
	files := func(pr PR) (err error) {
		s.Files, s.FilesComplete, err = r.Files(gctx, pr.Number, pr.ChangedFiles)
		return err
	}
	g.Go(func() (err error) {
		s.Config, s.ConfigFound, err = r.Config(gctx, in.SHA)
		multi = err == nil && s.ConfigFound && multiForm(in.Repo, s.Config)
		close(configRead)
		if err != nil {
			return err
		}
		if multi && in.PR != nil {
			return files(*in.PR)
		}
		return nil
	})
	g.Go(func() (err error) {
		s.Tags, err = r.Tags(gctx)
		return err
	})
	g.Go(func() (err error) {
		s.Protection, err = r.Protection(gctx, in.Branch)
		return err
	})
	prFacts := func(g *errgroup.Group, gctx context.Context, pr PR) {
		g.Go(func() (err error) {
			s.Reviews, err = r.Reviews(gctx, pr.Number)
			return err
		})
		g.Go(func() (err error) {
			// Required checks run on the PR head: the merge commit has none yet.
			s.Checks, err = r.Checks(gctx, pr.HeadSHA)
			return err
		})
	}
	switch {
	case in.PR != nil:
		s.PR, s.HasPR = *in.PR, true
		prFacts(g, gctx, s.PR)
	case in.LookupPR:
		g.Go(func() (err error) {
			s.PR, s.HasPR, err = r.PullRequestForCommit(gctx, in.SHA)
			if err != nil || !s.HasPR {
				return err
			}
			prFacts(g, gctx, s.PR)
			<-configRead
			if multi {
				return files(s.PR)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Snapshot{}, fmt.Errorf("gather facts for %s@%s: %w", in.Repo, short(in.SHA), err)
	}
	return s, nil
}

// multiForm reports whether data is a valid configuration in the
// `pipelines:` form. An invalid one runs nothing, so its files would be
// read in vain.
func multiForm(repo string, data []byte) bool {
	_, name, _ := strings.Cut(repo, "/")
	cfg, err := config.ParseRepo(config.RepoFile, data, name)
	return err == nil && cfg.Multi
}

// GateFacts shapes a snapshot for gate.Decide.
func (s Snapshot) GateFacts(repo, branch string) gate.Facts {
	return gate.Facts{
		Repo:       repo,
		HasPR:      s.HasPR,
		PRNumber:   s.PR.Number,
		Author:     s.PR.Author,
		HeadSHA:    s.PR.HeadSHA,
		BaseRef:    branch,
		Merged:     s.PR.Merged,
		Reviews:    s.Reviews,
		Protection: s.Protection,
		Checks:     s.Checks,
	}
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
