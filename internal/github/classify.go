package github

import (
	"strings"
)

// routeTemplates are the REST routes shipbot calls, in GitHub's own
// placeholder names so a class reads like the API documentation. A
// placeholder ending in "..." takes one or more segments, because branch
// names, refs, tags and file paths may contain slashes.
//
// The first matching template wins, so a route with a literal suffix must
// come before a shorter one whose greedy placeholder would swallow it
// (branches/{branch...}/protection before branches/{branch...}).
var routeTemplates = []string{
	// The App itself and its installations.
	"/app",
	"/app/installations",
	"/app/installations/{installation_id}",
	"/app/installations/{installation_id}/access_tokens",
	"/installation/repositories",
	"/orgs/{org}/installation",
	"/users/{username}/installation",
	"/rate_limit",

	"/repos/{owner}/{repo}",
	"/repos/{owner}/{repo}/installation",

	// Pull requests and reviews.
	"/repos/{owner}/{repo}/pulls",
	"/repos/{owner}/{repo}/pulls/{pull_number}",
	"/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
	"/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}",
	"/repos/{owner}/{repo}/pulls/{pull_number}/commits",
	"/repos/{owner}/{repo}/pulls/{pull_number}/files",
	"/repos/{owner}/{repo}/pulls/{pull_number}/merge",

	// Commits, statuses and checks.
	"/repos/{owner}/{repo}/commits",
	"/repos/{owner}/{repo}/commits/{commit_sha}/pulls",
	"/repos/{owner}/{repo}/commits/{ref...}/check-runs",
	"/repos/{owner}/{repo}/commits/{ref...}/check-suites",
	"/repos/{owner}/{repo}/commits/{ref...}/status",
	"/repos/{owner}/{repo}/commits/{ref...}/statuses",
	"/repos/{owner}/{repo}/commits/{ref...}",
	"/repos/{owner}/{repo}/statuses/{sha}",
	"/repos/{owner}/{repo}/check-runs",
	"/repos/{owner}/{repo}/check-runs/{check_run_id}",
	"/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations",
	"/repos/{owner}/{repo}/compare/{basehead...}",

	// Issues: labels, comments, reactions.
	"/repos/{owner}/{repo}/issues/comments/{comment_id}",
	"/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
	"/repos/{owner}/{repo}/issues/{issue_number}",
	"/repos/{owner}/{repo}/issues/{issue_number}/labels",
	"/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}",
	"/repos/{owner}/{repo}/issues/{issue_number}/comments",
	"/repos/{owner}/{repo}/issues/{issue_number}/reactions",
	"/repos/{owner}/{repo}/labels",
	"/repos/{owner}/{repo}/labels/{name}",

	// Branch protection and rulesets.
	"/repos/{owner}/{repo}/branches",
	"/repos/{owner}/{repo}/branches/{branch...}/protection/required_status_checks",
	"/repos/{owner}/{repo}/branches/{branch...}/protection",
	"/repos/{owner}/{repo}/branches/{branch...}",
	"/repos/{owner}/{repo}/rules/branches/{branch...}",
	"/repos/{owner}/{repo}/rulesets",
	"/repos/{owner}/{repo}/rulesets/{ruleset_id}",
	"/repos/{owner}/{repo}/collaborators/{username}/permission",

	// Tags, refs and releases.
	"/repos/{owner}/{repo}/tags",
	"/repos/{owner}/{repo}/git/ref/{ref...}",
	"/repos/{owner}/{repo}/git/refs",
	"/repos/{owner}/{repo}/git/refs/{ref...}",
	"/repos/{owner}/{repo}/git/matching-refs/{ref...}",
	"/repos/{owner}/{repo}/git/tags",
	"/repos/{owner}/{repo}/git/tags/{tag_sha}",
	"/repos/{owner}/{repo}/git/commits/{commit_sha}",
	"/repos/{owner}/{repo}/releases",
	"/repos/{owner}/{repo}/releases/latest",
	"/repos/{owner}/{repo}/releases/tags/{tag...}",
	"/repos/{owner}/{repo}/releases/{release_id}",

	// Deployments.
	"/repos/{owner}/{repo}/deployments",
	"/repos/{owner}/{repo}/deployments/{deployment_id}",
	"/repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
	"/repos/{owner}/{repo}/deployments/{deployment_id}/statuses/{status_id}",

	// Repository configuration.
	"/repos/{owner}/{repo}/contents",
	"/repos/{owner}/{repo}/contents/{path...}",

	// Actions (github-dispatch targets).
	"/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
	"/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
	"/repos/{owner}/{repo}/actions/runs",
	"/repos/{owner}/{repo}/actions/runs/{run_id}",
	"/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
}

type segment struct {
	text   string // literal text, or the placeholder as written ("{ref}")
	param  bool
	greedy bool
}

type route struct {
	segs  []segment
	class string // the template with "..." removed
}

var routes = compileRoutes(routeTemplates)

func compileRoutes(templates []string) []route {
	out := make([]route, 0, len(templates))
	for _, t := range templates {
		var r route
		for _, s := range strings.Split(strings.Trim(t, "/"), "/") {
			seg := segment{text: s}
			if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
				seg.param = true
				if strings.HasSuffix(s, "...}") {
					seg.greedy = true
					seg.text = strings.TrimSuffix(s, "...}") + "}"
				}
			}
			r.segs = append(r.segs, seg)
		}
		r.class = strings.ReplaceAll(t, "...}", "}")
		out = append(out, r)
	}
	return out
}

// Classify names the endpoint class of a request, "METHOD /route/template",
// e.g. "GET /repos/{owner}/{repo}/pulls/{pull_number}". Classes keep
// per-call counts and metric labels free of repository names, numbers and
// SHAs, so they can be compared across merges and have bounded cardinality.
//
// path is the URL path (escaped or not; a query is ignored). A GitHub
// Enterprise Server "/api/v3" prefix is removed. A route outside the table
// falls back to the path with owner/repo, numbers and SHAs replaced by
// placeholders.
func Classify(method, path string) string {
	method = strings.ToUpper(method)
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	path = "/" + strings.Trim(path, "/")
	if path == "/api/v3" || strings.HasPrefix(path, "/api/v3/") {
		path = "/" + strings.Trim(strings.TrimPrefix(path, "/api/v3"), "/")
	}
	if path == "/" {
		return method + " /"
	}
	segs := strings.Split(path[1:], "/")
	for _, r := range routes {
		if matchSegments(r.segs, segs) {
			return method + " " + r.class
		}
	}
	return method + " " + fallbackClass(segs)
}

func matchSegments(tpl []segment, segs []string) bool {
	if len(tpl) == 0 {
		return len(segs) == 0
	}
	t := tpl[0]
	switch {
	case t.greedy:
		// Leave at least one path segment for each remaining template
		// segment; the table's greedy placeholders are followed by
		// literals only, so this is all the backtracking there is.
		for k := 1; k <= len(segs)-len(tpl)+1; k++ {
			if !nonEmpty(segs[:k]) {
				return false
			}
			if matchSegments(tpl[1:], segs[k:]) {
				return true
			}
		}
		return false
	case len(segs) == 0 || segs[0] == "":
		return false
	case t.param:
		return matchSegments(tpl[1:], segs[1:])
	default:
		return t.text == segs[0] && matchSegments(tpl[1:], segs[1:])
	}
}

func nonEmpty(segs []string) bool {
	for _, s := range segs {
		if s == "" {
			return false
		}
	}
	return true
}

// fallbackClass templates a route missing from the table. It keeps the
// literal words of the route but hides what identifies a repository or an
// object, so an unexpected endpoint still lands in one class per route.
func fallbackClass(segs []string) string {
	out := make([]string, len(segs))
	for i, s := range segs {
		switch {
		case i == 1 && segs[0] == "repos":
			out[i] = "{owner}"
		case i == 2 && segs[0] == "repos":
			out[i] = "{repo}"
		case i == 1 && segs[0] == "orgs":
			out[i] = "{org}"
		case i == 1 && segs[0] == "users":
			out[i] = "{username}"
		case isNumber(s):
			out[i] = "{id}"
		case isSHA(s):
			out[i] = "{sha}"
		default:
			out[i] = s
		}
	}
	return "/" + strings.Join(out, "/")
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isSHA accepts full SHA-1 and SHA-256 object ids; abbreviated ones are too
// easy to confuse with words.
func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}
