package githubtest

import (
	"net/http"
	"slices"
	"strings"
)

// ancestors is every commit reachable from heads, heads included.
func (r *repository) ancestors(heads ...string) map[string]bool {
	seen := map[string]bool{}
	stack := slices.Clone(heads)
	for len(stack) > 0 {
		sha := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[sha] || r.commits[sha] == nil {
			continue
		}
		seen[sha] = true
		stack = append(stack, r.commits[sha].parents...)
	}
	return seen
}

// rangeCommits is `git log exclude..head` in the order GitHub lists a
// compare or a push: parents before children, and a merge's own first
// parent chain before the branch it merges, so a merge queue's group
// reads "PR 1's commits, merge of PR 1, PR 2's commits, merge of PR 2".
func (r *repository) rangeCommits(exclude map[string]bool, head string) []*commit {
	var out []*commit
	done := map[string]bool{}
	// An explicit stack keeps deep histories off the goroutine stack.
	type frame struct {
		sha  string
		next int // index of the next parent to visit
	}
	stack := []frame{{sha: head}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		cm := r.commits[f.sha]
		if cm == nil || exclude[f.sha] || (done[f.sha] && f.next == 0) {
			stack = stack[:len(stack)-1]
			continue
		}
		done[f.sha] = true
		if f.next < len(cm.parents) {
			p := cm.parents[f.next]
			f.next++
			if !done[p] && !exclude[p] {
				stack = append(stack, frame{sha: p})
			}
			continue
		}
		out = append(out, cm)
		stack = stack[:len(stack)-1]
	}
	return out
}

// mergeBase is the best common ancestor of a and b ("" when they share
// none): a common ancestor that no other common ancestor descends from,
// the nearest to b along first parents when there are several.
func (r *repository) mergeBase(a, b string) string {
	inA := r.ancestors(a)
	common := map[string]bool{}
	for sha := range r.ancestors(b) {
		if inA[sha] {
			common[sha] = true
		}
	}
	hasChild := map[string]bool{}
	for sha := range common {
		for _, p := range r.commits[sha].parents {
			hasChild[p] = true
		}
	}
	// Walk b's history breadth-first so the answer is deterministic.
	seen := map[string]bool{}
	queue := []string{b}
	for len(queue) > 0 {
		sha := queue[0]
		queue = queue[1:]
		if seen[sha] || r.commits[sha] == nil {
			continue
		}
		seen[sha] = true
		if common[sha] && !hasChild[sha] {
			return sha
		}
		queue = append(queue, r.commits[sha].parents...)
	}
	return ""
}

// compareNoPaging is how many commits GitHub lists when a compare is asked
// for without per_page or page: the newest ones.
const compareNoPaging = 250

// maxCompareFiles is how many changed files a compare lists.
const maxCompareFiles = 300

// compareCommits serves GET /repos/{owner}/{repo}/compare/{basehead}:
// basehead is BASE...HEAD (branches, tags or SHAs, optionally
// OWNER:-prefixed). Commits are those reachable from HEAD and not from
// BASE, oldest first; without paging parameters the newest 250 of them,
// with per_page/page GitHub's pages (and Link header), the changed files
// on the first page only.
func compareCommits(c *call) (int, any) {
	r := c.repo
	basehead := c.param("basehead")
	baseRef, headRef, ok := strings.Cut(basehead, "...")
	if !ok {
		return notFound()
	}
	resolve := func(ref string) (string, bool) {
		if owner, rest, ok := strings.Cut(ref, ":"); ok {
			if !strings.EqualFold(owner, r.owner) {
				return "", false // another fork of the network: not modelled
			}
			ref = rest
		}
		return r.resolveRef(ref)
	}
	base, ok := resolve(baseRef)
	if !ok {
		return notFound()
	}
	head, ok := resolve(headRef)
	if !ok {
		return notFound()
	}
	mb := r.mergeBase(base, head)
	if mb == "" {
		return fail(http.StatusNotFound, "No common ancestor between "+baseRef+" and "+headRef+".")
	}
	ahead := r.rangeCommits(r.ancestors(base), head)
	behind := r.rangeCommits(r.ancestors(head), base)
	status := "diverged"
	switch {
	case len(ahead) == 0 && len(behind) == 0:
		status = "identical"
	case len(behind) == 0:
		status = "ahead"
	case len(ahead) == 0:
		status = "behind"
	}
	paged := c.query.Has("per_page") || c.query.Has("page")
	list := ahead
	if !paged {
		list = list[max(len(list)-compareNoPaging, 0):]
	} else {
		list = paginate(c, list)
	}
	commits := []map[string]any{}
	for _, cm := range list {
		commits = append(commits, c.s.listedCommitJSON(c, r, cm))
	}
	api := c.apiURL("/repos/%s/compare/%s", r.fullName(), basehead)
	html := c.s.WebURL() + r.fullName() + "/compare/" + basehead
	out := map[string]any{
		"url":               api,
		"html_url":          html,
		"permalink_url":     c.s.WebURL() + r.fullName() + "/compare/" + r.owner + ":" + base + "..." + r.owner + ":" + head,
		"diff_url":          html + ".diff",
		"patch_url":         html + ".patch",
		"base_commit":       c.s.listedCommitJSON(c, r, r.commits[base]),
		"merge_base_commit": c.s.listedCommitJSON(c, r, r.commits[mb]),
		"status":            status,
		"ahead_by":          len(ahead),
		"behind_by":         len(behind),
		"total_commits":     len(ahead),
		"commits":           commits,
	}
	if page := c.query.Get("page"); page == "" || page == "1" {
		files := []map[string]any{}
		diff := diffTrees(r.commits[mb].files, r.commits[head].files)
		for _, d := range diff[:min(len(diff), maxCompareFiles)] {
			files = append(files, c.s.diffEntryJSON(c, r, d, head, mb))
		}
		out["files"] = files
	}
	return http.StatusOK, out
}

// listedCommitJSON is a commit as lists show it: without its files.
func (s *Server) listedCommitJSON(c *call, r *repository, cm *commit) map[string]any {
	m := s.commitJSON(c, r, cm)
	delete(m, "files")
	return m
}
