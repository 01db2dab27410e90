package githubtest

import (
	"net/url"
	"sort"
	"strings"
)

type authKind int

const (
	// authToken needs an installation token or a static token.
	authToken authKind = iota
	// authJWT needs a JWT signed with the App's private key.
	authJWT
)

type route struct {
	// pattern is "METHOD /template" with the template exactly as in
	// GitHub's OpenAPI description, so recordings, Count and the schema
	// subset all share one key.
	pattern    string
	method     string
	segs       []string
	auth       authKind
	repoScoped bool
	handler    func(*call) (int, any)
}

// The route table. A segment written {name...} takes one or more path
// segments (file paths, git refs); everything else takes exactly one.
var routes = buildRoutes([]struct {
	spec    string
	auth    authKind
	handler func(*call) (int, any)
}{
	{"GET /app", authJWT, getApp},
	{"GET /app/installations/{installation_id}", authJWT, getInstallation},
	{"POST /app/installations/{installation_id}/access_tokens", authJWT, createAccessToken},
	{"GET /repos/{owner}/{repo}/installation", authJWT, getRepoInstallation},

	{"GET /orgs/{org}/teams/{team_slug}/memberships/{username}", authToken, getTeamMembership},

	{"GET /repos/{owner}/{repo}", authToken, getRepo},
	{"GET /repos/{owner}/{repo}/branches/{branch...}", authToken, getBranch},
	{"GET /repos/{owner}/{repo}/branches/{branch...}/protection", authToken, getBranchProtection},
	{"GET /repos/{owner}/{repo}/rules/branches/{branch...}", authToken, getBranchRules},
	{"GET /repos/{owner}/{repo}/commits/{ref...}", authToken, getCommit},
	{"GET /repos/{owner}/{repo}/compare/{basehead...}", authToken, compareCommits},
	{"GET /repos/{owner}/{repo}/contents/{path...}", authToken, getContents},
	{"GET /repos/{owner}/{repo}/collaborators/{username}/permission", authToken, getPermission},

	{"GET /repos/{owner}/{repo}/pulls", authToken, listPulls},
	{"GET /repos/{owner}/{repo}/pulls/{pull_number}", authToken, getPull},
	{"GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls", authToken, listCommitPulls},
	{"GET /repos/{owner}/{repo}/pulls/{pull_number}/files", authToken, listPullFiles},
	{"GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews", authToken, listReviews},
	{"GET /repos/{owner}/{repo}/issues/{issue_number}/labels", authToken, listIssueLabels},
	{"POST /repos/{owner}/{repo}/issues/{issue_number}/labels", authToken, addIssueLabels},
	{"DELETE /repos/{owner}/{repo}/issues/{issue_number}/labels/{name}", authToken, removeIssueLabel},

	{"POST /repos/{owner}/{repo}/statuses/{sha}", authToken, createStatus},
	{"GET /repos/{owner}/{repo}/commits/{ref}/statuses", authToken, listStatuses},
	{"GET /repos/{owner}/{repo}/commits/{ref}/status", authToken, getCombinedStatus},
	{"POST /repos/{owner}/{repo}/check-runs", authToken, createCheckRun},
	{"GET /repos/{owner}/{repo}/check-runs/{check_run_id}", authToken, getCheckRun},
	{"PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}", authToken, updateCheckRun},
	{"GET /repos/{owner}/{repo}/commits/{ref}/check-runs", authToken, listCheckRuns},

	{"GET /repos/{owner}/{repo}/tags", authToken, listTags},
	{"GET /repos/{owner}/{repo}/git/ref/{ref...}", authToken, getRef},
	{"GET /repos/{owner}/{repo}/git/matching-refs/{ref...}", authToken, listMatchingRefs},
	{"POST /repos/{owner}/{repo}/git/refs", authToken, createRef},
	{"POST /repos/{owner}/{repo}/git/tags", authToken, createTagObject},
	{"GET /repos/{owner}/{repo}/git/tags/{tag_sha}", authToken, getTagObject},

	{"POST /repos/{owner}/{repo}/releases", authToken, createRelease},
	{"GET /repos/{owner}/{repo}/releases", authToken, listReleases},
	{"GET /repos/{owner}/{repo}/releases/latest", authToken, getLatestRelease},
	{"GET /repos/{owner}/{repo}/releases/tags/{tag}", authToken, getReleaseByTag},
	{"GET /repos/{owner}/{repo}/releases/{release_id}", authToken, getRelease},

	{"GET /repos/{owner}/{repo}/issues/{issue_number}/comments", authToken, listComments},
	{"POST /repos/{owner}/{repo}/issues/{issue_number}/comments", authToken, createComment},
	{"PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}", authToken, updateComment},
	{"POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions", authToken, createReaction},

	{"POST /repos/{owner}/{repo}/deployments", authToken, createDeployment},
	{"GET /repos/{owner}/{repo}/deployments", authToken, listDeployments},
	{"GET /repos/{owner}/{repo}/deployments/{deployment_id}", authToken, getDeployment},
	{"POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", authToken, createDeploymentStatus},
	{"GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", authToken, listDeploymentStatuses},

	{"POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", authToken, createDispatch},
	{"GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs", authToken, listWorkflowRunsForWorkflow},
	{"GET /repos/{owner}/{repo}/actions/runs", authToken, listWorkflowRuns},
	{"GET /repos/{owner}/{repo}/actions/runs/{run_id}", authToken, getWorkflowRun},
})

func buildRoutes(specs []struct {
	spec    string
	auth    authKind
	handler func(*call) (int, any)
}) []*route {
	out := make([]*route, 0, len(specs))
	for _, sp := range specs {
		method, tmpl, _ := strings.Cut(sp.spec, " ")
		segs := strings.Split(strings.TrimPrefix(tmpl, "/"), "/")
		out = append(out, &route{
			pattern:    method + " " + strings.ReplaceAll(tmpl, "...}", "}"),
			method:     method,
			segs:       segs,
			auth:       sp.auth,
			repoScoped: len(segs) >= 3 && segs[0] == "repos" && segs[1] == "{owner}" && segs[2] == "{repo}",
			handler:    sp.handler,
		})
	}
	return out
}

// Routes lists the patterns the fake implements ("METHOD /template"),
// sorted. The OpenAPI subset extractor and the conformance test use it.
func Routes() []string {
	out := make([]string, 0, len(routes))
	for _, r := range routes {
		out = append(out, r.pattern)
	}
	sort.Strings(out)
	return out
}

// matchRoute finds the route for method and escaped path. When several
// templates match, the one with the most literal segments wins, so
// /commits/{sha}/pulls beats /commits/{ref...}.
func matchRoute(method, escapedPath string) (*route, map[string]string) {
	raw := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	if len(raw) > 0 && raw[len(raw)-1] == "" {
		raw = raw[:len(raw)-1] // tolerate a trailing slash
	}
	segs := make([]string, len(raw))
	for i, r := range raw {
		u, err := url.PathUnescape(r)
		if err != nil {
			return nil, nil
		}
		segs[i] = u
	}
	method = strings.ToUpper(method)
	if method == "HEAD" {
		method = "GET"
	}
	var best *route
	var bestParams map[string]string
	bestLiterals := -1
	for _, rt := range routes {
		if rt.method != method {
			continue
		}
		params := map[string]string{}
		if !matchSegs(rt.segs, segs, params) {
			continue
		}
		if n := literalCount(rt.segs); n > bestLiterals {
			best, bestParams, bestLiterals = rt, params, n
		}
	}
	return best, bestParams
}

func matchSegs(tmpl, segs []string, params map[string]string) bool {
	if len(tmpl) == 0 {
		return len(segs) == 0
	}
	t := tmpl[0]
	if !strings.HasPrefix(t, "{") {
		return len(segs) > 0 && segs[0] == t && matchSegs(tmpl[1:], segs[1:], params)
	}
	name := strings.Trim(t, "{}")
	if rest, ok := strings.CutSuffix(name, "..."); ok {
		// Greedy from the longest take, so a ref's own slashes stay in it.
		for take := len(segs) - len(tmpl) + 1; take >= 1; take-- {
			if matchSegs(tmpl[1:], segs[take:], params) {
				params[rest] = strings.Join(segs[:take], "/")
				return true
			}
		}
		return false
	}
	if len(segs) == 0 || segs[0] == "" {
		return false
	}
	if !matchSegs(tmpl[1:], segs[1:], params) {
		return false
	}
	params[name] = segs[0]
	return true
}

func literalCount(segs []string) int {
	n := 0
	for _, s := range segs {
		if !strings.HasPrefix(s, "{") {
			n++
		}
	}
	return n
}
