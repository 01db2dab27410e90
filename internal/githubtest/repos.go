package githubtest

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

type repository struct {
	id             int64
	owner, name    string
	defaultBranch  string
	private        bool
	installationID int64
	created        time.Time
	pushed         time.Time

	commits       map[string]*commit
	refs          map[string]string // full ref name ("refs/heads/main") → object SHA
	tagObjects    map[string]*tagObject
	pulls         map[int]*pull
	lastNumber    int
	labels        map[string]*label // by lower-case name
	protections   map[string]*BranchProtection
	rulesets      []*Ruleset
	denyAdminRead bool
	statuses      map[string][]*status // commit SHA → statuses, oldest first
	checkRuns     []*checkRun
	suites        map[string]int64 // SHA + "/" + app → check suite id
	releases      []*release
	comments      []*comment
	deployments   []*deployment
	permissions   map[string]string // login → role name
	dispatches    []Dispatch
	runs          []*workflowRun
	workflowIDs   map[string]int64
	mergeGroups   map[string]*mergeGroup // by head SHA
}

func (r *repository) fullName() string { return r.owner + "/" + r.name }

type commit struct {
	sha     string
	parents []string
	message string
	author  string
	files   map[string]string // the whole tree: path → content
	time    time.Time
	// branch is the branch the commit was made on: a later push of it to
	// another branch (a merge queue's fast-forward) is not distinct.
	branch string
}

// RepoSpec describes a repository for AddRepo. The zero value is a public
// repository with default branch "main" in the default installation.
type RepoSpec struct {
	DefaultBranch  string
	InstallationID int64
	Private        bool
	// Files is the tree of the initial commit; a README.md when empty.
	Files map[string]string
}

// AddRepo creates the repository fullName ("owner/name") with one initial
// commit on its default branch, and returns that commit's SHA.
func (s *Server) AddRepo(fullName string, spec RepoSpec) string {
	owner, name, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		panic(fmt.Sprintf("githubtest: AddRepo(%q): want owner/name", fullName))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.repos[repoKey(owner, name)] != nil {
		panic(fmt.Sprintf("githubtest: AddRepo(%q): repository exists", fullName))
	}
	if spec.DefaultBranch == "" {
		spec.DefaultBranch = "main"
	}
	if spec.InstallationID == 0 {
		spec.InstallationID = s.defaultInstID
	}
	inst := s.installations[spec.InstallationID]
	if inst == nil {
		panic(fmt.Sprintf("githubtest: AddRepo(%q): no installation %d", fullName, spec.InstallationID))
	}
	if inst.account == "" {
		inst.account = owner
	}
	files := spec.Files
	if len(files) == 0 {
		files = map[string]string{"README.md": "# " + name + "\n"}
	}
	r := &repository{
		id:             s.newID(),
		owner:          owner,
		name:           name,
		defaultBranch:  spec.DefaultBranch,
		private:        spec.Private,
		installationID: spec.InstallationID,
		created:        s.now(),
		commits:        map[string]*commit{},
		refs:           map[string]string{},
		tagObjects:     map[string]*tagObject{},
		pulls:          map[int]*pull{},
		labels:         map[string]*label{},
		protections:    map[string]*BranchProtection{},
		statuses:       map[string][]*status{},
		suites:         map[string]int64{},
		permissions:    map[string]string{strings.ToLower(owner): "admin"},
		workflowIDs:    map[string]int64{},
		mergeGroups:    map[string]*mergeGroup{},
		denyAdminRead:  s.denyAdminRead,
	}
	s.repos[repoKey(owner, name)] = r
	return s.addCommitLocked(r, spec.DefaultBranch, "Initial commit", owner, nil, files, nil)
}

// AddBranch creates branch at fromSHA; an empty fromSHA means the default
// branch's head.
func (s *Server) AddBranch(repo, branch, fromSHA string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	if fromSHA == "" {
		fromSHA = r.refs["refs/heads/"+r.defaultBranch]
	}
	if r.commits[fromSHA] == nil {
		panic(fmt.Sprintf("githubtest: AddBranch(%q, %q): no commit %s", repo, branch, fromSHA))
	}
	r.refs["refs/heads/"+branch] = fromSHA
}

// AddCommit adds a commit on branch (created from the default branch if it
// does not exist) whose tree is the parent's with files written over it,
// and returns the commit's 40-hex SHA.
func (s *Server) AddCommit(repo, branch, message string, files map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	return s.addCommitLocked(r, branch, message, r.owner, nil, files, nil)
}

// BranchSHA is the head commit of branch.
func (s *Server) BranchSHA(repo, branch string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := s.mustRepo(repo).refs["refs/heads/"+branch]
	if !ok {
		panic(fmt.Sprintf("githubtest: BranchSHA(%q, %q): no such branch", repo, branch))
	}
	return sha
}

// FileAt returns the content of file path at commit sha.
func (s *Server) FileAt(repo, sha, path string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.mustRepo(repo).commits[sha]
	if c == nil {
		return "", false
	}
	content, ok := c.files[path]
	return content, ok
}

// SetPermission gives user the repository role admin, maintain, write,
// triage or read ("" or "none" removes it). The owner starts as admin.
func (s *Server) SetPermission(repo, user, role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	if role == "" || role == "none" {
		delete(r.permissions, strings.ToLower(user))
		return
	}
	r.permissions[strings.ToLower(user)] = role
}

func (s *Server) mustRepo(fullName string) *repository {
	owner, name, _ := strings.Cut(fullName, "/")
	r := s.repos[repoKey(owner, name)]
	if r == nil {
		panic(fmt.Sprintf("githubtest: no repository %q", fullName))
	}
	return r
}

// addCommitLocked commits files over branch's head (or over parents when
// given, as for merge commits), deleting the paths in removed, and moves
// the branch.
func (s *Server) addCommitLocked(r *repository, branch, message, author string, parents []string, files map[string]string, removed []string) string {
	ref := "refs/heads/" + branch
	if parents == nil {
		head, ok := r.refs[ref]
		if !ok && branch != r.defaultBranch {
			head, ok = r.refs["refs/heads/"+r.defaultBranch]
		}
		if ok {
			parents = []string{head}
		}
	}
	tree := map[string]string{}
	if len(parents) > 0 {
		for k, v := range r.commits[parents[0]].files {
			tree[k] = v
		}
	}
	for _, k := range removed {
		delete(tree, strings.TrimPrefix(k, "/"))
	}
	for k, v := range files {
		tree[strings.TrimPrefix(k, "/")] = v
	}
	now := s.now()
	h := sha1.New()
	fmt.Fprintf(h, "%s\x00%v\x00%s\x00%s\x00%d\x00%d", r.fullName(), parents, message, author, now.UnixNano(), s.newID())
	sha := hex.EncodeToString(h.Sum(nil))
	r.commits[sha] = &commit{sha: sha, parents: parents, message: message, author: author, files: tree, time: now, branch: branch}
	r.refs[ref] = sha
	r.pushed = now
	return sha
}

// resolveRef turns a SHA (full or abbreviated), branch, tag or
// "heads/…"/"tags/…"/"refs/…" name into a commit SHA, peeling annotated
// tags.
func (r *repository) resolveRef(ref string) (string, bool) {
	if ref == "" {
		return "", false
	}
	if r.commits[ref] != nil {
		return ref, true
	}
	name := strings.TrimPrefix(ref, "refs/")
	candidates := []string{"refs/" + name, "refs/heads/" + name, "refs/tags/" + name}
	for _, c := range candidates {
		if sha, ok := r.refs[c]; ok {
			return r.peel(sha)
		}
	}
	if len(ref) >= 7 && len(ref) < 40 && isHex(ref) {
		var found string
		for sha := range r.commits {
			if strings.HasPrefix(sha, ref) {
				if found != "" {
					return "", false // ambiguous, as git says
				}
				found = sha
			}
		}
		return found, found != ""
	}
	return "", false
}

// peel follows annotated tag objects to the commit they name.
func (r *repository) peel(sha string) (string, bool) {
	for range 10 {
		if r.commits[sha] != nil {
			return sha, true
		}
		t := r.tagObjects[sha]
		if t == nil {
			return "", false
		}
		sha = t.object
	}
	return "", false
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// firstParentLog lists commits from head back along first parents, newest
// first, stopping before stop (exclusive) or after limit commits.
func (r *repository) firstParentLog(head, stop string, limit int) []*commit {
	var out []*commit
	for sha := head; sha != "" && sha != stop && len(out) < limit; {
		c := r.commits[sha]
		if c == nil {
			break
		}
		out = append(out, c)
		if len(c.parents) == 0 {
			break
		}
		sha = c.parents[0]
	}
	return out
}

// isAncestor reports whether a is reachable from b (a commit is its own
// ancestor).
func (r *repository) isAncestor(a, b string) bool {
	seen := map[string]bool{}
	stack := []string{b}
	for len(stack) > 0 {
		sha := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if sha == a {
			return true
		}
		if seen[sha] || r.commits[sha] == nil {
			continue
		}
		seen[sha] = true
		stack = append(stack, r.commits[sha].parents...)
	}
	return false
}

func (s *Server) repoJSON(c *call, r *repository) map[string]any {
	api := c.apiURL("/repos/%s", r.fullName())
	html := s.WebURL() + r.fullName()
	visibility := "public"
	if r.private {
		visibility = "private"
	}
	open := 0
	for _, p := range r.pulls {
		if p.state == "open" {
			open++
		}
	}
	m := map[string]any{
		"id":                r.id,
		"node_id":           nodeID("R", r.id),
		"name":              r.name,
		"full_name":         r.fullName(),
		"owner":             s.userJSON(r.owner),
		"private":           r.private,
		"visibility":        visibility,
		"html_url":          html,
		"description":       nil,
		"fork":              false,
		"url":               api,
		"git_url":           "git://" + strings.TrimPrefix(s.WebURL(), "http://") + r.fullName() + ".git",
		"ssh_url":           "git@github.example:" + r.fullName() + ".git",
		"clone_url":         html + ".git",
		"svn_url":           html,
		"mirror_url":        nil,
		"homepage":          nil,
		"language":          "Go",
		"forks":             0,
		"forks_count":       0,
		"stargazers_count":  0,
		"watchers":          0,
		"watchers_count":    0,
		"size":              1,
		"default_branch":    r.defaultBranch,
		"open_issues":       open,
		"open_issues_count": open,
		"is_template":       false,
		"topics":            []string{},
		"has_issues":        true,
		"has_projects":      true,
		"has_wiki":          true,
		"has_pages":         false,
		"has_downloads":     true,
		"has_discussions":   false,
		"archived":          false,
		"disabled":          false,
		"license":           nil,
		"pushed_at":         nullTime(r.pushed),
		"created_at":        timestamp(r.created),
		"updated_at":        timestamp(r.pushed),
		"network_count":     0,
		"subscribers_count": 0,
		"permissions": map[string]bool{
			"admin": true, "maintain": true, "push": true, "triage": true, "pull": true,
		},
		"allow_merge_commit":     true,
		"allow_squash_merge":     true,
		"allow_rebase_merge":     true,
		"allow_auto_merge":       false,
		"delete_branch_on_merge": false,
		"allow_forking":          true,
	}
	for k, v := range map[string]string{
		"archive_url":       "/{archive_format}{/ref}",
		"assignees_url":     "/assignees{/user}",
		"blobs_url":         "/git/blobs{/sha}",
		"branches_url":      "/branches{/branch}",
		"collaborators_url": "/collaborators{/collaborator}",
		"comments_url":      "/comments{/number}",
		"commits_url":       "/commits{/sha}",
		"compare_url":       "/compare/{base}...{head}",
		"contents_url":      "/contents/{+path}",
		"contributors_url":  "/contributors",
		"deployments_url":   "/deployments",
		"downloads_url":     "/downloads",
		"events_url":        "/events",
		"forks_url":         "/forks",
		"git_commits_url":   "/git/commits{/sha}",
		"git_refs_url":      "/git/refs{/sha}",
		"git_tags_url":      "/git/tags{/sha}",
		"hooks_url":         "/hooks",
		"issue_comment_url": "/issues/comments{/number}",
		"issue_events_url":  "/issues/events{/number}",
		"issues_url":        "/issues{/number}",
		"keys_url":          "/keys{/key_id}",
		"labels_url":        "/labels{/name}",
		"languages_url":     "/languages",
		"merges_url":        "/merges",
		"milestones_url":    "/milestones{/number}",
		"notifications_url": "/notifications{?since,all,participating}",
		"pulls_url":         "/pulls{/number}",
		"releases_url":      "/releases{/id}",
		"stargazers_url":    "/stargazers",
		"statuses_url":      "/statuses/{sha}",
		"subscribers_url":   "/subscribers",
		"subscription_url":  "/subscription",
		"tags_url":          "/tags",
		"teams_url":         "/teams",
		"trees_url":         "/git/trees{/sha}",
	} {
		m[k] = api + v
	}
	return m
}

func (s *Server) commitJSON(c *call, r *repository, cm *commit) map[string]any {
	api := c.apiURL("/repos/%s", r.fullName())
	name, email := gitUser(cm.author)
	who := map[string]any{"name": name, "email": email, "date": timestamp(cm.time)}
	parents := []map[string]any{}
	for _, p := range cm.parents {
		parents = append(parents, map[string]any{
			"sha": p, "url": api + "/commits/" + p, "html_url": s.WebURL() + r.fullName() + "/commit/" + p,
		})
	}
	files := []map[string]any{}
	var parentFiles map[string]string
	parentSHA := cm.sha
	if len(cm.parents) > 0 {
		parentSHA = cm.parents[0]
		parentFiles = r.commits[parentSHA].files
	}
	for _, d := range diffTrees(parentFiles, cm.files) {
		files = append(files, s.diffEntryJSON(c, r, d, cm.sha, parentSHA))
	}
	return map[string]any{
		"sha":          cm.sha,
		"node_id":      "C_kwDO" + cm.sha[:24],
		"url":          api + "/commits/" + cm.sha,
		"html_url":     s.WebURL() + r.fullName() + "/commit/" + cm.sha,
		"comments_url": api + "/commits/" + cm.sha + "/comments",
		"commit": map[string]any{
			"url":           api + "/git/commits/" + cm.sha,
			"author":        who,
			"committer":     who,
			"message":       cm.message,
			"comment_count": 0,
			"tree":          map[string]any{"sha": treeSHA(cm.files), "url": api + "/git/trees/" + treeSHA(cm.files)},
		},
		"author":    s.userJSON(cm.author),
		"committer": s.userJSON(cm.author),
		"parents":   parents,
		"files":     files,
	}
}

// blobSHA is git's object id for a blob with content.
func blobSHA(content string) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00%s", len(content), content)
	return hex.EncodeToString(h.Sum(nil))
}

// treeSHA stands in for git's tree id: stable for equal trees.
func treeSHA(files map[string]string) string {
	h := sha1.New()
	for _, k := range sortedKeys(files) {
		fmt.Fprintf(h, "%s\x00%s\x00", k, blobSHA(files[k]))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func getRepo(c *call) (int, any) { return http.StatusOK, c.s.repoJSON(c, c.repo) }

func getCommit(c *call) (int, any) {
	sha, ok := c.repo.resolveRef(c.param("ref"))
	if !ok {
		return fail(http.StatusUnprocessableEntity, "No commit found for SHA: "+c.param("ref"))
	}
	return http.StatusOK, c.s.commitJSON(c, c.repo, c.repo.commits[sha])
}

func getBranch(c *call) (int, any) {
	r := c.repo
	b := c.param("branch")
	sha, ok := r.refs["refs/heads/"+b]
	if !ok {
		return fail(http.StatusNotFound, "Branch not found")
	}
	api := c.apiURL("/repos/%s/branches/%s", r.fullName(), b)
	prot := r.protections[b]
	rules := r.rulesFor(b)
	checks := map[string]any{"enforcement_level": "off", "contexts": []string{}, "checks": []any{}}
	if prot != nil && prot.RequiredStatusChecks != nil {
		checks["enforcement_level"] = "non_admins"
		checks["contexts"] = nonNil(prot.RequiredStatusChecks)
		list := []map[string]any{}
		for _, ctx := range prot.RequiredStatusChecks {
			list = append(list, map[string]any{"context": ctx, "app_id": nil})
		}
		checks["checks"] = list
	}
	return http.StatusOK, map[string]any{
		"name":   b,
		"commit": c.s.commitJSON(c, r, r.commits[sha]),
		"_links": map[string]any{"self": api, "html": c.s.WebURL() + r.fullName() + "/tree/" + b},
		// GitHub reports a branch as protected by classic protection or
		// by any ruleset that targets it.
		"protected": prot != nil || len(rules) > 0,
		"protection": map[string]any{
			"enabled":                prot != nil,
			"required_status_checks": checks,
		},
		"protection_url": api + "/protection",
	}
}

func getContents(c *call) (int, any) {
	r := c.repo
	ref := c.query.Get("ref")
	if ref == "" {
		ref = r.defaultBranch
	}
	sha, ok := r.resolveRef(ref)
	if !ok {
		return fail(http.StatusNotFound, "No commit found for the ref "+ref)
	}
	p := strings.Trim(c.param("path"), "/")
	files := r.commits[sha].files
	if content, ok := files[p]; ok {
		return http.StatusOK, c.s.contentJSON(c, r, ref, p, content, true)
	}
	// A directory: list its immediate children, as GitHub does.
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	seen := map[string]bool{}
	var entries []map[string]any
	for _, f := range sortedKeys(files) {
		rest, ok := strings.CutPrefix(f, prefix)
		if !ok {
			continue
		}
		child, _, isDir := strings.Cut(rest, "/")
		if seen[child] {
			continue
		}
		seen[child] = true
		if isDir {
			e := c.s.contentJSON(c, r, ref, prefix+child, "", false)
			entries = append(entries, e)
		} else {
			e := c.s.contentJSON(c, r, ref, prefix+child, files[prefix+child], false)
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 {
		return notFound()
	}
	return http.StatusOK, entries
}

// contentJSON is a content-file (withContent) or a directory-listing entry.
func (s *Server) contentJSON(c *call, r *repository, ref, p, content string, withContent bool) map[string]any {
	api := c.apiURL("/repos/%s/contents/%s?ref=%s", r.fullName(), p, ref)
	_, isFile := r.commits[mustResolve(r, ref)].files[p]
	typ, sha := "dir", treeSHA(map[string]string{p: ""})
	if isFile {
		typ, sha = "file", blobSHA(content)
	}
	html := fmt.Sprintf("%s%s/blob/%s/%s", s.WebURL(), r.fullName(), ref, p)
	git := c.apiURL("/repos/%s/git/blobs/%s", r.fullName(), sha)
	m := map[string]any{
		"type":         typ,
		"size":         len(content),
		"name":         path.Base(p),
		"path":         p,
		"sha":          sha,
		"url":          api,
		"git_url":      git,
		"html_url":     html,
		"download_url": nil,
		"_links":       map[string]any{"self": api, "git": git, "html": html},
	}
	if isFile {
		m["download_url"] = fmt.Sprintf("%sraw/%s/%s/%s", s.WebURL(), r.fullName(), ref, p)
	}
	if withContent {
		m["encoding"] = "base64"
		m["content"] = wrapBase64(base64.StdEncoding.EncodeToString([]byte(content)))
	}
	return m
}

func mustResolve(r *repository, ref string) string {
	sha, _ := r.resolveRef(ref)
	return sha
}

// wrapBase64 breaks base64 into 60-column lines as GitHub's contents API
// does; clients that forget to strip newlines before decoding fail here
// just as they would against GitHub.
func wrapBase64(s string) string {
	var b strings.Builder
	for len(s) > 60 {
		b.WriteString(s[:60])
		b.WriteByte('\n')
		s = s[60:]
	}
	b.WriteString(s)
	b.WriteByte('\n')
	return b.String()
}

func getPermission(c *call) (int, any) {
	user := c.param("username")
	role := c.repo.permissions[strings.ToLower(user)]
	if role == "" {
		role = "none"
		if !c.repo.private {
			role = "read"
		}
	}
	// The legacy permission field folds maintain into write and triage
	// into read; role_name carries the real role. Code that compares
	// permission to "maintain" is wrong against GitHub too.
	legacy := map[string]string{"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}[role]
	if legacy == "" {
		legacy = "none"
	}
	u := c.s.userJSON(user)
	u["role_name"] = role
	u["permissions"] = map[string]bool{
		"admin":    role == "admin",
		"maintain": role == "admin" || role == "maintain",
		"push":     role == "admin" || role == "maintain" || role == "write",
		"triage":   role != "read" && role != "none",
		"pull":     role != "none",
	}
	return http.StatusOK, map[string]any{"permission": legacy, "role_name": role, "user": u}
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// sortedRefs lists the full ref names under prefix, in order.
func (r *repository) sortedRefs(prefix string) []string {
	var out []string
	for name := range r.refs {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
