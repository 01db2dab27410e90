package facts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/gate"
)

// maxPages bounds how far a paginated read follows GitHub's Link headers.
// 50 pages of 100 is more reviews, statuses or tags than any one merge
// needs; past it, the read fails loudly instead of running on.
const maxPages = 50

// GitHub reads facts of one repository through an installation client and
// remembers each answer, so concurrent and repeated asks cost one call.
type GitHub struct {
	client      *gh.Client
	owner, name string

	mu    sync.Mutex
	cache map[string]*cached
}

type cached struct {
	once sync.Once
	val  any
	err  error
}

var _ Reader = (*GitHub)(nil)

// NewGitHub returns a Reader for repo ("owner/name").
func NewGitHub(client *gh.Client, repo string) (*GitHub, error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" {
		return nil, fmt.Errorf("repository %q is not owner/name", repo)
	}
	return &GitHub{client: client, owner: owner, name: name, cache: map[string]*cached{}}, nil
}

// memo runs read once per key for the life of g.
func memo[T any](g *GitHub, key string, read func() (T, error)) (T, error) {
	g.mu.Lock()
	c, ok := g.cache[key]
	if !ok {
		c = &cached{}
		g.cache[key] = c
	}
	g.mu.Unlock()
	c.once.Do(func() { c.val, c.err = read() })
	v, _ := c.val.(T)
	return v, c.err
}

func status(resp *gh.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// Config implements Reader.
func (g *GitHub) Config(ctx context.Context, ref string) ([]byte, bool, error) {
	type result struct {
		data  []byte
		found bool
	}
	r, err := memo(g, "config:"+ref, func() (result, error) {
		file, _, resp, err := g.client.Repositories.GetContents(ctx, g.owner, g.name, config.RepoFile, &gh.RepositoryContentGetOptions{Ref: ref})
		if status(resp) == http.StatusNotFound && !unknownRef(err) {
			return result{}, nil
		}
		if err != nil {
			return result{}, fmt.Errorf("read %s at %s: %w", config.RepoFile, short(ref), err)
		}
		if file == nil {
			return result{}, fmt.Errorf("read %s at %s: it is a directory", config.RepoFile, short(ref))
		}
		content, err := file.GetContent()
		if err != nil {
			return result{}, fmt.Errorf("decode %s at %s: %w", config.RepoFile, short(ref), err)
		}
		return result{[]byte(content), true}, nil
	})
	return r.data, r.found, err
}

// unknownRef reports whether a 404 from the contents API means that the ref
// does not exist rather than the file. GitHub answers both with 404, the
// first with "No commit found for the ref …"; a merge commit can be unknown
// to the API for a moment after the merge, and taking that for "no config"
// would skip the merge for good instead of failing it for a retry.
func unknownRef(err error) bool {
	var e *gh.ErrorResponse
	return errors.As(err, &e) && strings.HasPrefix(e.Message, "No commit found")
}

func prFrom(p *gh.PullRequest) PR {
	labels := make([]string, 0, len(p.Labels))
	for _, l := range p.Labels {
		labels = append(labels, l.GetName())
	}
	return PR{
		Number:   p.GetNumber(),
		Title:    p.GetTitle(),
		Body:     p.GetBody(),
		Author:   p.GetUser().GetLogin(),
		URL:      p.GetHTMLURL(),
		HeadSHA:  p.GetHead().GetSHA(),
		BaseRef:  p.GetBase().GetRef(),
		Labels:   labels,
		Open:     p.GetState() == "open",
		Merged:   p.GetMerged() || !p.GetMergedAt().IsZero(),
		MergeSHA: p.GetMergeCommitSHA(),
		MergedAt: p.GetMergedAt().Time,
		Comments: p.Comments,
		// Left out of list answers, where it reads as 0: unknown.
		ChangedFiles: p.GetChangedFiles(),
	}
}

// PRFromEvent maps the pull request a webhook payload carries, which saves
// reading it again.
func PRFromEvent(p *gh.PullRequest) PR { return prFrom(p) }

// PullRequest implements Reader.
func (g *GitHub) PullRequest(ctx context.Context, number int) (PR, error) {
	return memo(g, fmt.Sprint("pr:", number), func() (PR, error) {
		p, _, err := g.client.PullRequests.Get(ctx, g.owner, g.name, number)
		if err != nil {
			return PR{}, fmt.Errorf("read pull request #%d: %w", number, err)
		}
		return prFrom(p), nil
	})
}

// PullRequestForCommit implements Reader.
func (g *GitHub) PullRequestForCommit(ctx context.Context, sha string) (PR, bool, error) {
	type result struct {
		pr PR
		ok bool
	}
	r, err := memo(g, "pr-for:"+sha, func() (result, error) {
		prs, _, err := g.client.PullRequests.ListPullRequestsWithCommit(ctx, g.owner, g.name, sha, &gh.ListOptions{PerPage: 100})
		if err != nil {
			return result{}, fmt.Errorf("pull requests of commit %s: %w", short(sha), err)
		}
		for _, p := range prs {
			// The commit may belong to open pull requests too; only the one
			// whose merge produced it vouches for it.
			if p.GetMergeCommitSHA() == sha && (p.GetMerged() || p.MergedAt != nil) {
				return result{prFrom(p), true}, nil
			}
		}
		return result{}, nil
	})
	return r.pr, r.ok, err
}

// Reviews implements Reader.
func (g *GitHub) Reviews(ctx context.Context, number int) ([]gate.Review, error) {
	return memo(g, fmt.Sprint("reviews:", number), func() ([]gate.Review, error) {
		var all []*gh.PullRequestReview
		opts := &gh.ListOptions{PerPage: 100}
		for page := 0; ; page++ {
			if page == maxPages {
				return nil, fmt.Errorf("reviews of #%d: more than %d pages", number, maxPages)
			}
			rs, resp, err := g.client.PullRequests.ListReviews(ctx, g.owner, g.name, number, opts)
			if err != nil {
				return nil, fmt.Errorf("reviews of #%d: %w", number, err)
			}
			all = append(all, rs...)
			if resp.NextPage == 0 {
				break
			}
			opts.Page = resp.NextPage
		}
		return gate.ReviewsFrom(all), nil
	})
}

// Protection implements Reader: classic branch protection and repository
// rulesets, read concurrently and combined.
func (g *GitHub) Protection(ctx context.Context, branch string) (gate.Protection, error) {
	return memo(g, "protection:"+branch, func() (gate.Protection, error) {
		var (
			wg           sync.WaitGroup
			classic      *gh.Protection
			classicState gate.ProtectionRead
			classicErr   error
			rules        []*gh.RepositoryRule
			rulesRead    bool
			rulesErr     error
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			p, resp, err := g.client.Repositories.GetBranchProtection(ctx, g.owner, g.name, branch)
			switch {
			case err == nil:
				classic, classicState = p, gate.ProtectionOK
			case errors.Is(err, gh.ErrBranchNotProtected) || status(resp) == http.StatusNotFound:
				classicState = gate.ProtectionNotFound
			case status(resp) == http.StatusForbidden:
				// Reading classic protection needs Administration: read; a
				// token without it still has rulesets to go on.
				classicState = gate.ProtectionForbidden
			default:
				classicErr = fmt.Errorf("branch protection of %s: %w", branch, err)
			}
		}()
		go func() {
			defer wg.Done()
			rules, rulesRead, rulesErr = g.branchRules(ctx, branch)
		}()
		wg.Wait()
		if err := errors.Join(classicErr, rulesErr); err != nil {
			return gate.Protection{}, err
		}
		return gate.ProtectionFrom(classic, classicState, rules, rulesRead), nil
	})
}

// branchRules reads the ruleset rules that apply to branch, every page of
// them: the endpoint is paginated (30 rules a page by default), and a rule
// left on a later page would be a requirement the gate never enforces. read
// is false when they could not be read.
func (g *GitHub) branchRules(ctx context.Context, branch string) (rules []*gh.RepositoryRule, read bool, err error) {
	path := fmt.Sprintf("repos/%s/%s/rules/branches/%s", g.owner, g.name, escapeBranch(branch))
	next := 1
	for page := 0; next != 0; page++ {
		if page == maxPages {
			return nil, false, fmt.Errorf("rules of %s: more than %d pages", branch, maxPages)
		}
		req, err := g.client.NewRequest(http.MethodGet, fmt.Sprintf("%s?per_page=100&page=%d", path, next), nil)
		if err != nil {
			return nil, false, fmt.Errorf("rules of %s: %w", branch, err)
		}
		// Raw JSON: go-github v60 fails to decode a response holding any
		// rule type it does not know, and GitHub keeps adding types.
		var raw json.RawMessage
		resp, err := g.client.Do(ctx, req, &raw)
		switch {
		case err == nil:
		case status(resp) == http.StatusNotFound && page == 0:
			return nil, true, nil // no rulesets apply
		default:
			return nil, false, fmt.Errorf("rules of %s: %w", branch, err)
		}
		rs, err := gate.DecodeRules(raw)
		if err != nil {
			return nil, false, fmt.Errorf("rules of %s: %w", branch, err)
		}
		rules = append(rules, rs...)
		next = resp.NextPage
	}
	return rules, true, nil
}

// escapeBranch escapes each segment of a branch name but keeps the slashes
// of a branch like release/1.x, which the rules endpoint takes as path
// segments. A "#" or "%" in a branch name must not cut or change the path.
func escapeBranch(b string) string {
	parts := strings.Split(b, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// Checks implements Reader: commit statuses and check runs, read
// concurrently.
func (g *GitHub) Checks(ctx context.Context, sha string) ([]gate.Check, error) {
	return memo(g, "checks:"+sha, func() ([]gate.Check, error) {
		var (
			wg         sync.WaitGroup
			statuses   []*gh.RepoStatus
			runs       []*gh.CheckRun
			sErr, rErr error
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			opts := &gh.ListOptions{PerPage: 100}
			for page := 0; page < maxPages; page++ {
				ss, resp, err := g.client.Repositories.ListStatuses(ctx, g.owner, g.name, sha, opts)
				if err != nil {
					sErr = fmt.Errorf("statuses of %s: %w", short(sha), err)
					return
				}
				statuses = append(statuses, ss...)
				if resp.NextPage == 0 {
					return
				}
				opts.Page = resp.NextPage
			}
			sErr = fmt.Errorf("statuses of %s: more than %d pages", short(sha), maxPages)
		}()
		go func() {
			defer wg.Done()
			opts := &gh.ListCheckRunsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
			for page := 0; page < maxPages; page++ {
				res, resp, err := g.client.Checks.ListCheckRunsForRef(ctx, g.owner, g.name, sha, opts)
				if err != nil {
					rErr = fmt.Errorf("check runs of %s: %w", short(sha), err)
					return
				}
				runs = append(runs, res.CheckRuns...)
				if resp.NextPage == 0 {
					return
				}
				opts.Page = resp.NextPage
			}
			rErr = fmt.Errorf("check runs of %s: more than %d pages", short(sha), maxPages)
		}()
		wg.Wait()
		if err := errors.Join(sErr, rErr); err != nil {
			return nil, err
		}
		return gate.ChecksFrom(statuses, runs), nil
	})
}

// Tags implements Reader.
func (g *GitHub) Tags(ctx context.Context) ([]Tag, error) {
	return memo(g, "tags", func() ([]Tag, error) {
		var out []Tag
		opts := &gh.ListOptions{PerPage: 100}
		for page := 0; ; page++ {
			if page == maxPages {
				return nil, fmt.Errorf("tags: more than %d pages", maxPages)
			}
			ts, resp, err := g.client.Repositories.ListTags(ctx, g.owner, g.name, opts)
			if err != nil {
				return nil, fmt.Errorf("tags: %w", err)
			}
			for _, t := range ts {
				out = append(out, Tag{Name: t.GetName(), SHA: t.GetCommit().GetSHA()})
			}
			if resp.NextPage == 0 {
				return out, nil
			}
			opts.Page = resp.NextPage
		}
	})
}

// maxListedFiles is how many files GitHub lists for one pull request. It
// leaves the rest out of the list (later pages come back empty) but counts
// them in changed_files.
const maxListedFiles = 3000

// Files implements Reader: every page of the pull request's files, 100 a
// page, so 3,000 files (GitHub's cap) cost 30 calls.
func (g *GitHub) Files(ctx context.Context, number, changedFiles int) ([]string, bool, error) {
	type listing struct {
		names   []string
		entries int // files GitHub listed; a rename is one
	}
	l, err := memo(g, fmt.Sprint("files:", number), func() (listing, error) {
		var out listing
		seen := map[string]bool{}
		add := func(name string) {
			if name != "" && !seen[name] {
				seen[name] = true
				out.names = append(out.names, name)
			}
		}
		opts := &gh.ListOptions{PerPage: 100}
		for page := 0; ; page++ {
			if page == maxPages {
				return listing{}, fmt.Errorf("files of #%d: more than %d pages", number, maxPages)
			}
			fs, resp, err := g.client.PullRequests.ListFiles(ctx, g.owner, g.name, number, opts)
			if err != nil {
				return listing{}, fmt.Errorf("files of #%d: %w", number, err)
			}
			for _, f := range fs {
				out.entries++
				add(f.GetFilename())
				add(f.GetPreviousFilename())
			}
			// At GitHub's cap the list is over whatever the Link header
			// says: a page past it would come back empty, a call for
			// nothing (and 50 such pages an error).
			if resp.NextPage == 0 || out.entries >= maxListedFiles {
				return out, nil
			}
			opts.Page = resp.NextPage
		}
	})
	if err != nil {
		return nil, false, err
	}
	if changedFiles <= 0 {
		if l.entries < maxListedFiles {
			// Short of the cap, GitHub left nothing out.
			return slices.Clone(l.names), true, nil
		}
		pr, err := g.PullRequest(ctx, number)
		if err != nil {
			return nil, false, fmt.Errorf("files of #%d: %w", number, err)
		}
		changedFiles = pr.ChangedFiles
	}
	return slices.Clone(l.names), l.entries >= changedFiles, nil
}
