package githubtest

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

type pull struct {
	id          int64
	number      int
	title, body string
	author      string
	base, head  string // branch names
	// forkPoint is the base branch's head when the PR was opened: the
	// merge base the fake uses to tell the PR's own commits apart.
	forkPoint string
	state     string
	draft     bool
	labels    []string
	// lastLabel is the label most recently added or removed, which a
	// labeled/unlabeled webhook names.
	lastLabel string
	reviews   []*review
	created   time.Time
	updated   time.Time
	closed    time.Time
	merged    time.Time
	mergedBy  string
	mergeSHA  string
	// frozenHead and frozenBase hold head.sha and base.sha once the PR is
	// closed; while open they follow the branches, as on GitHub.
	frozenHead string
	frozenBase string
}

type review struct {
	id        int64
	user      string
	state     string
	body      string
	commitID  string
	submitted time.Time
}

type label struct {
	id          int64
	name        string
	color       string
	description string
}

// PullRequestSpec describes a pull request for OpenPullRequest.
type PullRequestSpec struct {
	Title, Body string
	// Author defaults to the repository owner.
	Author string
	// Base defaults to the default branch; Head to "change-<number>".
	// A missing head branch is created from the base.
	Base, Head string
	// Files are committed on the head branch (authored by Author); when
	// empty and the head branch is new, a placeholder file is, because
	// GitHub refuses a pull request without commits. A pull request with
	// thousands of files is one map: the fake commits it in one go.
	Files map[string]string
	// Remove deletes these paths of the head branch's tree, and Rename
	// moves files of it (old path → new path, content kept), in the same
	// commit as Files. The pull request's files list them as removed and
	// renamed: like git, the fake takes a path removed and another added
	// with the same (non-empty) content for a rename.
	Remove []string
	Rename map[string]string
	Labels []string
	Draft  bool
}

// PullRequest is the fake's view of a pull request, for assertions.
type PullRequest struct {
	Number         int
	Title, Body    string
	Author         string
	State          string // open or closed
	Draft          bool
	Base, Head     string
	BaseSHA        string
	HeadSHA        string
	Labels         []string
	Merged         bool
	MergeCommitSHA string
	MergedBy       string
	MergedAt       time.Time
}

// OpenPullRequest opens a pull request and returns its number.
func (s *Server) OpenPullRequest(repo string, spec PullRequestSpec) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	if spec.Base == "" {
		spec.Base = r.defaultBranch
	}
	baseSHA, ok := r.refs["refs/heads/"+spec.Base]
	if !ok {
		panic(fmt.Sprintf("githubtest: OpenPullRequest(%q): no base branch %q", repo, spec.Base))
	}
	if spec.Author == "" {
		spec.Author = r.owner
	}
	if spec.Title == "" {
		spec.Title = "Update"
	}
	r.lastNumber++
	n := r.lastNumber
	if spec.Head == "" {
		spec.Head = fmt.Sprintf("change-%d", n)
	}
	headRef := "refs/heads/" + spec.Head
	_, exists := r.refs[headRef]
	if !exists {
		r.refs[headRef] = baseSHA
	}
	files := maps.Clone(spec.Files)
	removed := slices.Clone(spec.Remove)
	if len(spec.Rename) > 0 {
		tree := r.commits[r.refs[headRef]].files
		if files == nil {
			files = map[string]string{}
		}
		for _, from := range sortedKeys(spec.Rename) {
			content, ok := tree[from]
			if !ok {
				panic(fmt.Sprintf("githubtest: OpenPullRequest(%q): Rename: no file %q on %s", repo, from, spec.Head))
			}
			files[spec.Rename[from]] = content
			removed = append(removed, from)
		}
	}
	if len(files) == 0 && len(removed) == 0 && !exists {
		files = map[string]string{fmt.Sprintf("changes/%d.txt", n): spec.Title + "\n"}
	}
	if len(files) > 0 || len(removed) > 0 {
		s.addCommitLocked(r, spec.Head, spec.Title, spec.Author, nil, files, removed)
	}
	now := s.now()
	p := &pull{
		id: s.newID(), number: n, title: spec.Title, body: spec.Body, author: spec.Author,
		base: spec.Base, head: spec.Head, forkPoint: baseSHA, state: "open", draft: spec.Draft,
		created: now, updated: now,
	}
	for _, l := range spec.Labels {
		p.addLabel(r, s, l)
	}
	r.pulls[n] = p
	return n
}

// PushToPullRequest adds a commit by the PR's author to its head branch,
// as a push that GitHub reports as "synchronize", and returns its SHA.
func (s *Server) PushToPullRequest(repo string, number int, message string, files map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.mustPull(repo, number)
	if p.state != "open" {
		panic(fmt.Sprintf("githubtest: PushToPullRequest(%q, %d): pull request is closed", repo, number))
	}
	p.updated = s.now()
	return s.addCommitLocked(r, p.head, message, p.author, nil, files, nil)
}

// AddReview submits a review by user with state APPROVED,
// CHANGES_REQUESTED, COMMENTED or DISMISSED on commitID ("" for the current
// head) and returns its id.
func (s *Server) AddReview(repo string, number int, user, state, commitID string) int64 {
	state = strings.ToUpper(state)
	switch state {
	case "APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED":
	default:
		panic(fmt.Sprintf("githubtest: AddReview: unknown state %q", state))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.mustPull(repo, number)
	if commitID == "" {
		commitID = p.headSHA(r)
	}
	rv := &review{id: s.newID(), user: user, state: state, commitID: commitID, submitted: s.now()}
	if state != "COMMENTED" {
		rv.body = strings.ToLower(strings.ReplaceAll(state, "_", " "))
	}
	p.reviews = append(p.reviews, rv)
	return rv.id
}

// DismissReview marks a review DISMISSED, as a maintainer or a stale-review
// rule would.
func (s *Server) DismissReview(repo string, number int, reviewID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p := s.mustPull(repo, number)
	for _, rv := range p.reviews {
		if rv.id == reviewID {
			rv.state = "DISMISSED"
			return
		}
	}
	panic(fmt.Sprintf("githubtest: DismissReview: no review %d on #%d", reviewID, number))
}

// AddLabels puts labels on a pull request, creating repository labels as
// needed.
func (s *Server) AddLabels(repo string, number int, labels ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.mustPull(repo, number)
	for _, l := range labels {
		p.addLabel(r, s, l)
	}
}

// RemoveLabel takes a label off a pull request.
func (s *Server) RemoveLabel(repo string, number int, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p := s.mustPull(repo, number)
	p.removeLabel(name)
}

// Labels are the names of the labels on a pull request, in the order added.
func (s *Server) Labels(repo string, number int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p := s.mustPull(repo, number)
	return slices.Clone(p.labels)
}

// PullRequest returns the current state of a pull request.
func (s *Server) PullRequest(repo string, number int) PullRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.mustPull(repo, number)
	return PullRequest{
		Number: p.number, Title: p.title, Body: p.body, Author: p.author, State: p.state, Draft: p.draft,
		Base: p.base, Head: p.head, BaseSHA: p.baseSHA(r), HeadSHA: p.headSHA(r),
		Labels: slices.Clone(p.labels), Merged: !p.merged.IsZero(), MergeCommitSHA: p.mergeSHA,
		MergedBy: p.mergedBy, MergedAt: p.merged,
	}
}

// Merge merges a pull request with a merge commit on its base branch (the
// base's tree with the head's changes written over it), records who merged
// it and when, and returns the merge commit's SHA.
func (s *Server) Merge(repo string, number int, mergedBy string) string {
	return s.merge(repo, number, mergedBy, false)
}

// SquashMerge merges a pull request as one single-parent commit titled
// "<title> (#<number>)", as GitHub's squash merge does, and returns its SHA.
func (s *Server) SquashMerge(repo string, number int, mergedBy string) string {
	return s.merge(repo, number, mergedBy, true)
}

func (s *Server) merge(repo string, number int, mergedBy string, squash bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.mustPull(repo, number)
	if p.state != "open" {
		panic(fmt.Sprintf("githubtest: Merge(%q, %d): pull request is not open", repo, number))
	}
	baseHead := r.refs["refs/heads/"+p.base]
	head := p.headSHA(r)
	changed, removed := p.changes(r)
	var sha string
	if squash {
		msg := fmt.Sprintf("%s (#%d)", p.title, p.number)
		if p.body != "" {
			msg += "\n\n" + p.body
		}
		sha = s.addCommitLocked(r, p.base, msg, p.author, []string{baseHead}, changed, removed)
	} else {
		sha = s.addCommitLocked(r, p.base, p.mergeMessage(r), mergedBy, []string{baseHead, head}, changed, removed)
	}
	p.markMerged(r, s.now(), baseHead, sha, mergedBy)
	return sha
}

// changes is what merging the pull request writes over its base: the
// files it adds or changes, and the paths it removes (renamed files'
// old paths among them).
func (p *pull) changes(r *repository) (changed map[string]string, removed []string) {
	changed = map[string]string{}
	for _, d := range p.diff(r) {
		if d.status == "removed" || d.status == "renamed" {
			removed = append(removed, cmp.Or(d.previous, d.path))
		}
		if d.status != "removed" {
			changed[d.path] = d.content
		}
	}
	return changed, removed
}

// mergeMessage is the message of the merge commit GitHub makes for p.
func (p *pull) mergeMessage(r *repository) string {
	return fmt.Sprintf("Merge pull request #%d from %s/%s\n\n%s", p.number, r.owner, p.head, p.title)
}

// markMerged closes p as merged by mergedBy into sha, made on baseSHA.
func (p *pull) markMerged(r *repository, now time.Time, baseSHA, sha, mergedBy string) {
	p.frozenHead, p.frozenBase = p.headSHA(r), baseSHA
	p.state = "closed"
	p.closed, p.merged, p.updated = now, now, now
	p.mergedBy = mergedBy
	p.mergeSHA = sha
}

// ClosePullRequest closes a pull request without merging it.
func (s *Server) ClosePullRequest(repo string, number int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.mustPull(repo, number)
	p.frozenHead, p.frozenBase = p.headSHA(r), p.baseSHA(r)
	p.state = "closed"
	p.closed, p.updated = s.now(), s.now()
}

func (s *Server) mustPull(repo string, number int) (*repository, *pull) {
	r := s.mustRepo(repo)
	p := r.pulls[number]
	if p == nil {
		panic(fmt.Sprintf("githubtest: %s has no pull request #%d", repo, number))
	}
	return r, p
}

func (p *pull) headSHA(r *repository) string {
	if p.frozenHead != "" {
		return p.frozenHead
	}
	return r.refs["refs/heads/"+p.head]
}

func (p *pull) baseSHA(r *repository) string {
	if p.frozenBase != "" {
		return p.frozenBase
	}
	return r.refs["refs/heads/"+p.base]
}

// diff is what the pull request changes: its head's tree against the
// tree it forked from, as GitHub diffs a pull request against its merge
// base.
func (p *pull) diff(r *repository) []fileDiff {
	hc := r.commits[p.headSHA(r)]
	if hc == nil {
		return nil
	}
	return diffTrees(r.commits[p.forkPoint].files, hc.files)
}

// commitSHAs are the PR's own commits, newest first.
func (p *pull) commitSHAs(r *repository) []string {
	var out []string
	for _, c := range r.firstParentLog(p.headSHA(r), p.forkPoint, 250) {
		out = append(out, c.sha)
	}
	return out
}

func (p *pull) addLabel(r *repository, s *Server, name string) {
	l := r.ensureLabel(s, name)
	p.lastLabel = l.name
	for _, have := range p.labels {
		if strings.EqualFold(have, l.name) {
			return
		}
	}
	p.labels = append(p.labels, l.name)
}

func (p *pull) removeLabel(name string) bool {
	for i, have := range p.labels {
		if strings.EqualFold(have, name) {
			p.lastLabel = have
			p.labels = slices.Delete(p.labels, i, i+1)
			return true
		}
	}
	return false
}

func (r *repository) ensureLabel(s *Server, name string) *label {
	key := strings.ToLower(name)
	if l := r.labels[key]; l != nil {
		return l
	}
	l := &label{id: s.newID(), name: name, color: "ededed"}
	r.labels[key] = l
	return l
}

func (s *Server) labelJSON(c *call, r *repository, name string) map[string]any {
	l := r.ensureLabel(s, name)
	return map[string]any{
		"id":      l.id,
		"node_id": nodeID("LA", l.id),
		"url":     c.apiURL("/repos/%s/labels/%s", r.fullName(), l.name),
		"name":    l.name,
		// GitHub sends null for a label without a description, but its
		// description types the field as a non-nullable string in the
		// pull-request-simple shape; "" satisfies both readings.
		"description": l.description,
		"color":       l.color,
		"default":     false,
	}
}

func (s *Server) labelsJSON(c *call, r *repository, names []string) []map[string]any {
	out := []map[string]any{}
	for _, n := range names {
		out = append(out, s.labelJSON(c, r, n))
	}
	return out
}

// association is GitHub's author_association of user in r.
func (r *repository) association(user string) string {
	switch {
	case strings.EqualFold(user, r.owner):
		return "OWNER"
	case r.permissions[strings.ToLower(user)] != "":
		return "COLLABORATOR"
	default:
		return "CONTRIBUTOR"
	}
}

func (s *Server) prJSON(c *call, r *repository, p *pull) map[string]any {
	api := c.apiURL("/repos/%s/pulls/%d", r.fullName(), p.number)
	issue := c.apiURL("/repos/%s/issues/%d", r.fullName(), p.number)
	html := fmt.Sprintf("%s%s/pull/%d", s.WebURL(), r.fullName(), p.number)
	head, base := p.headSHA(r), p.baseSHA(r)
	statuses := c.apiURL("/repos/%s/statuses/%s", r.fullName(), head)
	side := func(branch, sha string) map[string]any {
		return map[string]any{
			"label": r.owner + ":" + branch, "ref": branch, "sha": sha,
			"user": s.userJSON(r.owner), "repo": s.repoJSON(c, r),
		}
	}
	var mergeable any = true
	mergeableState := "clean"
	if p.state != "open" {
		mergeable, mergeableState = nil, "unknown"
	}
	commits := p.commitSHAs(r)
	// GitHub counts every changed file here, also past the 3,000 its
	// files endpoint lists.
	diff := p.diff(r)
	additions, deletions := 0, 0
	for _, d := range diff {
		additions += d.additions
		deletions += d.deletions
	}
	comments := 0
	for _, cm := range r.comments {
		if cm.issue == p.number {
			comments++
		}
	}
	link := func(href string) map[string]string { return map[string]string{"href": href} }
	return map[string]any{
		"url":                 api,
		"id":                  p.id,
		"node_id":             nodeID("PR", p.id),
		"html_url":            html,
		"diff_url":            html + ".diff",
		"patch_url":           html + ".patch",
		"issue_url":           issue,
		"commits_url":         api + "/commits",
		"review_comments_url": api + "/comments",
		"review_comment_url":  c.apiURL("/repos/%s/pulls/comments{/number}", r.fullName()),
		"comments_url":        issue + "/comments",
		"statuses_url":        statuses,
		"number":              p.number,
		"state":               p.state,
		"locked":              false,
		"active_lock_reason":  nil,
		"title":               p.title,
		"user":                s.userJSON(p.author),
		"body":                nullString(p.body),
		"labels":              s.labelsJSON(c, r, p.labels),
		"milestone":           nil,
		"created_at":          timestamp(p.created),
		"updated_at":          timestamp(p.updated),
		"closed_at":           nullTime(p.closed),
		"merged_at":           nullTime(p.merged),
		"merge_commit_sha":    nullString(p.mergeSHA),
		"assignee":            nil,
		"assignees":           []any{},
		"requested_reviewers": []any{},
		"requested_teams":     []any{},
		"head":                side(p.head, head),
		"base":                side(p.base, base),
		"_links": map[string]any{
			"self": link(api), "html": link(html), "issue": link(issue),
			"comments": link(issue + "/comments"), "review_comments": link(api + "/comments"),
			"review_comment": link(c.apiURL("/repos/%s/pulls/comments{/number}", r.fullName())),
			"commits":        link(api + "/commits"), "statuses": link(statuses),
		},
		"author_association":    r.association(p.author),
		"auto_merge":            nil,
		"draft":                 p.draft,
		"merged":                !p.merged.IsZero(),
		"mergeable":             mergeable,
		"rebaseable":            mergeable,
		"mergeable_state":       mergeableState,
		"merged_by":             s.nullUser(p.mergedBy),
		"comments":              comments,
		"review_comments":       0,
		"maintainer_can_modify": false,
		"commits":               len(commits),
		"additions":             additions,
		"deletions":             deletions,
		"changed_files":         len(diff),
	}
}

func (s *Server) reviewJSON(c *call, r *repository, p *pull, rv *review) map[string]any {
	html := fmt.Sprintf("%s%s/pull/%d#pullrequestreview-%d", s.WebURL(), r.fullName(), p.number, rv.id)
	prURL := c.apiURL("/repos/%s/pulls/%d", r.fullName(), p.number)
	return map[string]any{
		"id":                 rv.id,
		"node_id":            nodeID("PRR", rv.id),
		"user":               s.userJSON(rv.user),
		"body":               rv.body,
		"state":              rv.state,
		"html_url":           html,
		"pull_request_url":   prURL,
		"_links":             map[string]any{"html": map[string]string{"href": html}, "pull_request": map[string]string{"href": prURL}},
		"submitted_at":       timestamp(rv.submitted),
		"commit_id":          rv.commitID,
		"author_association": r.association(rv.user),
	}
}

// pullParam finds the pull request named by the route's number parameter.
func pullParam(c *call, name string) *pull {
	n, err := strconv.Atoi(c.param(name))
	if err != nil {
		return nil
	}
	return c.repo.pulls[n]
}

func sortedPulls(r *repository) []*pull {
	out := make([]*pull, 0, len(r.pulls))
	for _, p := range r.pulls {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].number > out[j].number })
	return out
}

func listPulls(c *call) (int, any) {
	r := c.repo
	state := c.query.Get("state")
	if state == "" {
		state = "open"
	}
	var list []*pull
	for _, p := range sortedPulls(r) {
		if state != "all" && p.state != state {
			continue
		}
		if h := c.query.Get("head"); h != "" && h != r.owner+":"+p.head && h != p.head {
			continue
		}
		if b := c.query.Get("base"); b != "" && b != p.base {
			continue
		}
		list = append(list, p)
	}
	if c.query.Get("direction") == "asc" {
		slices.Reverse(list)
	}
	out := []map[string]any{}
	for _, p := range paginate(c, list) {
		out = append(out, simplePR(c.s.prJSON(c, r, p)))
	}
	return http.StatusOK, out
}

// simplePR cuts a pull request down to GitHub's "pull-request-simple", the
// shape list endpoints answer with: no merge state, no counts. Code that
// relied on those from a list would work against the fake and not against
// GitHub.
func simplePR(full map[string]any) map[string]any {
	for _, k := range []string{"merged", "mergeable", "rebaseable", "mergeable_state", "merged_by", "comments",
		"review_comments", "maintainer_can_modify", "commits", "additions", "deletions", "changed_files"} {
		delete(full, k)
	}
	return full
}

func getPull(c *call) (int, any) {
	p := pullParam(c, "pull_number")
	if p == nil {
		return notFound()
	}
	return http.StatusOK, c.s.prJSON(c, c.repo, p)
}

// listCommitPulls returns the PRs a commit belongs to: the PR it merged, or
// the PRs whose commits include it.
func listCommitPulls(c *call) (int, any) {
	r := c.repo
	sha, ok := r.resolveRef(c.param("commit_sha"))
	if !ok {
		return fail(http.StatusUnprocessableEntity, "No commit found for SHA: "+c.param("commit_sha"))
	}
	var list []*pull
	for _, p := range sortedPulls(r) {
		if p.mergeSHA == sha || slices.Contains(p.commitSHAs(r), sha) {
			list = append(list, p)
		}
	}
	out := []map[string]any{}
	for _, p := range paginate(c, list) {
		out = append(out, simplePR(c.s.prJSON(c, r, p)))
	}
	return http.StatusOK, out
}

// maxPullFiles is how many files GitHub lists for a pull request; the
// rest are left out (later pages are empty) while changed_files still
// counts them.
const maxPullFiles = 3000

func listPullFiles(c *call) (int, any) {
	p := pullParam(c, "pull_number")
	if p == nil {
		return notFound()
	}
	r := c.repo
	diff := p.diff(r)
	diff = diff[:min(len(diff), maxPullFiles)]
	out := []map[string]any{}
	for _, d := range paginate(c, diff) {
		out = append(out, c.s.diffEntryJSON(c, r, d, p.headSHA(r), p.forkPoint))
	}
	return http.StatusOK, out
}

func listReviews(c *call) (int, any) {
	p := pullParam(c, "pull_number")
	if p == nil {
		return notFound()
	}
	out := []map[string]any{}
	for _, rv := range paginate(c, p.reviews) {
		out = append(out, c.s.reviewJSON(c, c.repo, p, rv))
	}
	return http.StatusOK, out
}

func listIssueLabels(c *call) (int, any) {
	p := pullParam(c, "issue_number")
	if p == nil {
		return notFound()
	}
	return http.StatusOK, c.s.labelsJSON(c, c.repo, paginate(c, p.labels))
}

func addIssueLabels(c *call) (int, any) {
	p := pullParam(c, "issue_number")
	if p == nil {
		return notFound()
	}
	// GitHub takes {"labels": [...]} or a bare array, of names or
	// {"name": ...} objects.
	var names []string
	var wrapped struct {
		Labels []any `json:"labels"`
	}
	var bare []any
	if err := c.decode(&wrapped); err == nil && wrapped.Labels != nil {
		bare = wrapped.Labels
	} else if err := c.decode(&bare); err != nil {
		return badJSON()
	}
	for _, v := range bare {
		switch v := v.(type) {
		case string:
			names = append(names, v)
		case map[string]any:
			if n, ok := v["name"].(string); ok {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		return invalid("Label", "labels", "missing_field", "")
	}
	for _, n := range names {
		p.addLabel(c.repo, c.s, n)
	}
	p.updated = c.s.now()
	return http.StatusOK, c.s.labelsJSON(c, c.repo, p.labels)
}

func removeIssueLabel(c *call) (int, any) {
	p := pullParam(c, "issue_number")
	if p == nil {
		return notFound()
	}
	if !p.removeLabel(c.param("name")) {
		return fail(http.StatusNotFound, "Label does not exist")
	}
	p.updated = c.s.now()
	return http.StatusOK, c.s.labelsJSON(c, c.repo, p.labels)
}
