package githubtest

import (
	"net/http"
	"path"
	"strings"
)

// BranchProtection is classic branch protection for one branch.
type BranchProtection struct {
	// RequiredApprovingReviewCount > 0 (or DismissStaleReviews or
	// RequireCodeOwnerReviews) turns on required pull request reviews.
	RequiredApprovingReviewCount int
	DismissStaleReviews          bool
	RequireCodeOwnerReviews      bool
	RequireLastPushApproval      bool
	// RequiredStatusChecks non-nil turns on required status checks with
	// these contexts; Strict requires the branch to be up to date.
	RequiredStatusChecks []string
	Strict               bool
	EnforceAdmins        bool
}

// Ruleset is a repository ruleset's branch rules, as
// GET /repos/{owner}/{repo}/rules/branches/{branch} reports them.
type Ruleset struct {
	Name string
	// Branches are fnmatch-style patterns of branch names ("main",
	// "release/*") or "~DEFAULT_BRANCH" or "~ALL"; empty means all.
	Branches []string
	// PullRequest, when set, adds a pull_request rule.
	PullRequest *PullRequestRule
	// RequiredStatusChecks, when non-empty, adds a required_status_checks
	// rule with these contexts.
	RequiredStatusChecks []string
	id                   int64
}

// PullRequestRule is the parameters of a ruleset's pull_request rule.
type PullRequestRule struct {
	RequiredApprovingReviewCount   int
	DismissStaleReviewsOnPush      bool
	RequireCodeOwnerReview         bool
	RequireLastPushApproval        bool
	RequiredReviewThreadResolution bool
}

// SetBranchProtection turns on classic protection for branch.
func (s *Server) SetBranchProtection(repo, branch string, p BranchProtection) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.RequiredStatusChecks = cloneStrings(p.RequiredStatusChecks)
	s.mustRepo(repo).protections[branch] = &p
}

// RemoveBranchProtection turns classic protection for branch off.
func (s *Server) RemoveBranchProtection(repo, branch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mustRepo(repo).protections, branch)
}

// SetAdministrationReadDenied makes the classic branch protection endpoint
// answer 403 "Resource not accessible by integration" for repo, as for an
// App without the Administration: read permission.
func (s *Server) SetAdministrationReadDenied(repo string, denied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustRepo(repo).denyAdminRead = denied
}

// AddRuleset adds a repository ruleset and returns its id.
func (s *Server) AddRuleset(repo string, rs Ruleset) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo(repo)
	rs.id = s.newID()
	rs.Branches = cloneStrings(rs.Branches)
	rs.RequiredStatusChecks = cloneStrings(rs.RequiredStatusChecks)
	if rs.PullRequest != nil {
		pr := *rs.PullRequest
		rs.PullRequest = &pr
	}
	r.rulesets = append(r.rulesets, &rs)
	return rs.id
}

func cloneStrings(ss []string) []string {
	if ss == nil {
		return nil
	}
	return append([]string{}, ss...)
}

// rulesFor lists the rulesets that target branch.
func (r *repository) rulesFor(branch string) []*Ruleset {
	var out []*Ruleset
	for _, rs := range r.rulesets {
		if len(rs.Branches) == 0 {
			out = append(out, rs)
			continue
		}
		for _, pat := range rs.Branches {
			pat = strings.TrimPrefix(pat, "refs/heads/")
			ok := false
			switch pat {
			case "~ALL":
				ok = true
			case "~DEFAULT_BRANCH":
				ok = branch == r.defaultBranch
			default:
				ok, _ = path.Match(pat, branch)
			}
			if ok {
				out = append(out, rs)
				break
			}
		}
	}
	return out
}

func getBranchProtection(c *call) (int, any) {
	r := c.repo
	if r.denyAdminRead {
		return fail(http.StatusForbidden, "Resource not accessible by integration")
	}
	b := c.param("branch")
	if _, ok := r.refs["refs/heads/"+b]; !ok {
		return fail(http.StatusNotFound, "Branch not found")
	}
	p := r.protections[b]
	if p == nil {
		return fail(http.StatusNotFound, "Branch not protected")
	}
	api := c.apiURL("/repos/%s/branches/%s/protection", r.fullName(), b)
	enabled := func(on bool) map[string]bool { return map[string]bool{"enabled": on} }
	out := map[string]any{
		"url":                              api,
		"required_signatures":              map[string]any{"url": api + "/required_signatures", "enabled": false},
		"enforce_admins":                   map[string]any{"url": api + "/enforce_admins", "enabled": p.EnforceAdmins},
		"required_linear_history":          enabled(false),
		"allow_force_pushes":               enabled(false),
		"allow_deletions":                  enabled(false),
		"block_creations":                  enabled(false),
		"required_conversation_resolution": enabled(false),
		"lock_branch":                      enabled(false),
		"allow_fork_syncing":               enabled(false),
	}
	// GitHub leaves the sections out entirely when they are off.
	if p.RequiredStatusChecks != nil {
		checks := []map[string]any{}
		for _, ctx := range p.RequiredStatusChecks {
			checks = append(checks, map[string]any{"context": ctx, "app_id": nil})
		}
		out["required_status_checks"] = map[string]any{
			"url":          api + "/required_status_checks",
			"strict":       p.Strict,
			"contexts":     nonNil(p.RequiredStatusChecks),
			"contexts_url": api + "/required_status_checks/contexts",
			"checks":       checks,
		}
	}
	if p.RequiredApprovingReviewCount > 0 || p.DismissStaleReviews || p.RequireCodeOwnerReviews {
		out["required_pull_request_reviews"] = map[string]any{
			"url":                             api + "/required_pull_request_reviews",
			"dismiss_stale_reviews":           p.DismissStaleReviews,
			"require_code_owner_reviews":      p.RequireCodeOwnerReviews,
			"required_approving_review_count": p.RequiredApprovingReviewCount,
			"require_last_push_approval":      p.RequireLastPushApproval,
		}
	}
	return http.StatusOK, out
}

func getBranchRules(c *call) (int, any) {
	r := c.repo
	var rules []map[string]any
	for _, rs := range r.rulesFor(c.param("branch")) {
		meta := func(m map[string]any) map[string]any {
			m["ruleset_source_type"] = "Repository"
			m["ruleset_source"] = r.fullName()
			m["ruleset_id"] = rs.id
			return m
		}
		if pr := rs.PullRequest; pr != nil {
			rules = append(rules, meta(map[string]any{
				"type": "pull_request",
				"parameters": map[string]any{
					"required_approving_review_count":   pr.RequiredApprovingReviewCount,
					"dismiss_stale_reviews_on_push":     pr.DismissStaleReviewsOnPush,
					"require_code_owner_review":         pr.RequireCodeOwnerReview,
					"require_last_push_approval":        pr.RequireLastPushApproval,
					"required_review_thread_resolution": pr.RequiredReviewThreadResolution,
					"allowed_merge_methods":             []string{"merge", "squash", "rebase"},
				},
			}))
		}
		if len(rs.RequiredStatusChecks) > 0 {
			checks := []map[string]any{}
			for _, ctx := range rs.RequiredStatusChecks {
				checks = append(checks, map[string]any{"context": ctx})
			}
			rules = append(rules, meta(map[string]any{
				"type": "required_status_checks",
				"parameters": map[string]any{
					"required_status_checks":               checks,
					"strict_required_status_checks_policy": false,
				},
			}))
		}
	}
	if rules == nil {
		rules = []map[string]any{}
	}
	return http.StatusOK, paginate(c, rules)
}
