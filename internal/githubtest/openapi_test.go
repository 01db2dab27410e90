package githubtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
)

// TestOpenAPIConformance drives every route the fake implements through
// real HTTP, success and the common failures, and checks each JSON body
// against GitHub's published response schema: live (WithSchemaCheck) and
// again here from the recorded requests.
func TestOpenAPIConformance(t *testing.T) {
	s := newServer(t, WithSchemaCheck(schemacheck.ValidateResponse))
	pr, merge := seed(t, s)
	open := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "fix: typo", Author: "carol"})
	head := s.PullRequest(testRepo, open).HeadSHA
	s.SetBranchProtection(testRepo, "main", BranchProtection{RequiredApprovingReviewCount: 1, DismissStaleReviews: true, RequiredStatusChecks: []string{"ci/build"}})
	s.AddRuleset(testRepo, Ruleset{Name: "main", Branches: []string{"~DEFAULT_BRANCH"},
		PullRequest: &PullRequestRule{RequiredApprovingReviewCount: 2}, RequiredStatusChecks: []string{"test"}})
	s.SetStatus(testRepo, merge, "ci/build", "success")
	s.AddCheckRun(testRepo, head, "test", "ci", "in_progress", "")
	s.SetPermission(testRepo, "bob", "maintain")
	s.AddComment(testRepo, pr, "bob", "LGTM")
	s.SetTeamMembers("acme", "deployers", "bob")
	s.SetTeamMembership("acme", "deployers", "carol", "maintainer", "pending")
	files := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "refactor", Author: "alice",
		Files:  map[string]string{"health.go": "package api\n\nfunc Health() {}\n", "new.txt": "new\n", "bin": ""},
		Remove: []string{"README.md"}, Rename: map[string]string{".github/shipbot.yml": "shipbot.yml"}})

	app := &rawClient{t: t, base: s.URL(), auth: "Bearer " + appJWT(t, s, s.PrivateKeyPEM())}
	inst := s.InstallationID()
	app.call("GET", "app", nil, 200)
	app.call("GET", fmt.Sprintf("app/installations/%d", inst), nil, 200)
	app.call("GET", "repos/acme/api/installation", nil, 200)
	tok := obj(t, app.call("POST", fmt.Sprintf("app/installations/%d/access_tokens", inst), nil, 201))["token"].(string)
	app.call("POST", "app/installations/999/access_tokens", nil, 404)

	c := &rawClient{t: t, base: s.URL(), auth: "token " + tok}
	c.call("GET", "repos/acme/api", nil, 200)
	c.call("GET", "repos/acme/nope", nil, 404)
	c.call("GET", "repos/acme/api/branches/main", nil, 200)
	c.call("GET", "repos/acme/api/branches/nope", nil, 404)
	c.call("GET", "repos/acme/api/branches/main/protection", nil, 200)
	c.call("GET", "repos/acme/api/branches/"+s.PullRequest(testRepo, open).Head+"/protection", nil, 404)
	c.call("GET", "repos/acme/api/rules/branches/main", nil, 200)
	c.call("GET", "repos/acme/api/commits/"+merge, nil, 200)
	c.call("GET", "repos/acme/api/commits/main", nil, 200)
	c.call("GET", "repos/acme/api/compare/"+s.PullRequest(testRepo, pr).BaseSHA+"..."+merge, nil, 200)
	c.call("GET", "repos/acme/api/compare/main..."+s.PullRequest(testRepo, open).Head+"?per_page=1&page=2", nil, 200)
	c.call("GET", "repos/acme/api/compare/main...nope", nil, 404)
	c.call("GET", "repos/acme/api/contents/.github/shipbot.yml?ref="+merge, nil, 200)
	c.call("GET", "repos/acme/api/contents/.github", nil, 200)
	c.call("GET", "repos/acme/api/contents/missing.yml?ref="+merge, nil, 404)
	c.call("GET", "repos/acme/api/collaborators/bob/permission", nil, 200)

	c.call("GET", "repos/acme/api/pulls?state=all", nil, 200)
	c.call("GET", fmt.Sprintf("repos/acme/api/pulls/%d", pr), nil, 200)
	c.call("GET", fmt.Sprintf("repos/acme/api/pulls/%d", open), nil, 200)
	c.call("GET", "repos/acme/api/pulls/99", nil, 404)
	c.call("GET", "repos/acme/api/commits/"+merge+"/pulls", nil, 200)
	c.call("GET", fmt.Sprintf("repos/acme/api/pulls/%d/reviews", pr), nil, 200)
	if got := arr(t, c.call("GET", fmt.Sprintf("repos/acme/api/pulls/%d/files", files), nil, 200)); len(got) != 5 {
		t.Errorf("files of #%d: %d entries, want 5: %v", files, len(got), got)
	}
	c.call("GET", fmt.Sprintf("repos/acme/api/pulls/%d/files?page=2", files), nil, 200)
	c.call("GET", "repos/acme/api/pulls/99/files", nil, 404)
	c.call("GET", "orgs/acme/teams/deployers/memberships/bob", nil, 200)
	c.call("GET", "orgs/acme/teams/deployers/memberships/carol", nil, 200)
	c.call("GET", "orgs/acme/teams/deployers/memberships/mallory", nil, 404)
	c.call("GET", "orgs/acme/teams/nope/memberships/bob", nil, 404)
	c.call("GET", fmt.Sprintf("repos/acme/api/issues/%d/labels", pr), nil, 200)
	c.call("POST", fmt.Sprintf("repos/acme/api/issues/%d/labels", open), map[string]any{"labels": []string{"semver:minor"}}, 200)
	c.call("DELETE", fmt.Sprintf("repos/acme/api/issues/%d/labels/semver:minor", open), nil, 200)
	c.call("DELETE", fmt.Sprintf("repos/acme/api/issues/%d/labels/semver:minor", open), nil, 404)

	c.call("POST", "repos/acme/api/statuses/"+head, map[string]any{"state": "pending", "context": "shipbot/gate", "target_url": "https://ci.example/1"}, 201)
	c.call("GET", "repos/acme/api/commits/"+head+"/statuses", nil, 200)
	c.call("GET", "repos/acme/api/commits/"+head+"/status", nil, 200)
	run := obj(t, c.call("POST", "repos/acme/api/check-runs", map[string]any{
		"name": "shipbot/rollout", "head_sha": merge, "status": "in_progress",
		"output": map[string]any{"title": "Rolling out", "summary": "qa: deploying"},
	}, 201))
	runID := int64(run["id"].(float64))
	c.call("GET", fmt.Sprintf("repos/acme/api/check-runs/%d", runID), nil, 200)
	c.call("PATCH", fmt.Sprintf("repos/acme/api/check-runs/%d", runID), map[string]any{"conclusion": "success"}, 200)
	c.call("PATCH", "repos/acme/api/check-runs/1", map[string]any{"conclusion": "success"}, 404)
	c.call("GET", "repos/acme/api/commits/"+merge+"/check-runs?check_name=shipbot/rollout", nil, 200)
	c.call("GET", "repos/acme/api/commits/"+head+"/check-runs", nil, 200)

	tagObj := obj(t, c.call("POST", "repos/acme/api/git/tags", map[string]any{
		"tag": "v0.1.0", "message": "v0.1.0", "object": merge, "type": "commit",
	}, 201))
	c.call("POST", "repos/acme/api/git/refs", map[string]any{"ref": "refs/tags/v0.1.0", "sha": tagObj["sha"]}, 201)
	c.call("POST", "repos/acme/api/git/refs", map[string]any{"ref": "refs/tags/v0.1.0", "sha": merge}, 422)
	c.call("GET", "repos/acme/api/git/tags/"+tagObj["sha"].(string), nil, 200)
	c.call("GET", "repos/acme/api/git/ref/tags/v0.1.0", nil, 200)
	c.call("GET", "repos/acme/api/git/ref/tags/v9", nil, 404)
	c.call("GET", "repos/acme/api/git/matching-refs/tags/v", nil, 200)
	c.call("GET", "repos/acme/api/tags", nil, 200)

	rel := obj(t, c.call("POST", "repos/acme/api/releases", map[string]any{
		"tag_name": "v0.2.0", "target_commitish": merge, "name": "v0.2.0", "body": "notes",
	}, 201))
	c.call("POST", "repos/acme/api/releases", map[string]any{"tag_name": "v0.2.0"}, 422)
	c.call("GET", "repos/acme/api/releases", nil, 200)
	c.call("GET", "repos/acme/api/releases/latest", nil, 200)
	c.call("GET", "repos/acme/api/releases/tags/v0.2.0", nil, 200)
	c.call("GET", "repos/acme/api/releases/tags/v9.9.9", nil, 404)
	c.call("GET", fmt.Sprintf("repos/acme/api/releases/%d", int64(rel["id"].(float64))), nil, 200)

	cm := obj(t, c.call("POST", fmt.Sprintf("repos/acme/api/issues/%d/comments", pr), map[string]any{"body": "<!-- shipbot -->\n| stage | state |"}, 201))
	cmID := int64(cm["id"].(float64))
	c.call("GET", fmt.Sprintf("repos/acme/api/issues/%d/comments", pr), nil, 200)
	c.call("PATCH", fmt.Sprintf("repos/acme/api/issues/comments/%d", cmID), map[string]any{"body": "<!-- shipbot -->\nupdated"}, 200)
	c.call("POST", fmt.Sprintf("repos/acme/api/issues/comments/%d/reactions", cmID), map[string]any{"content": "rocket"}, 201)
	c.call("POST", fmt.Sprintf("repos/acme/api/issues/comments/%d/reactions", cmID), map[string]any{"content": "rocket"}, 200)

	dep := obj(t, c.call("POST", "repos/acme/api/deployments", map[string]any{
		"ref": "v0.2.0", "environment": "qa", "auto_merge": false, "required_contexts": []string{},
		"payload": map[string]any{"version": "0.2.0"}, "description": "deploy v0.2.0 to qa",
	}, 201))
	c.call("POST", "repos/acme/api/deployments", map[string]any{"ref": head, "auto_merge": false}, 409)
	depID := int64(dep["id"].(float64))
	c.call("GET", "repos/acme/api/deployments?environment=qa", nil, 200)
	c.call("GET", fmt.Sprintf("repos/acme/api/deployments/%d", depID), nil, 200)
	c.call("POST", fmt.Sprintf("repos/acme/api/deployments/%d/statuses", depID), map[string]any{"state": "in_progress", "log_url": "https://ci.example/log"}, 201)
	c.call("POST", fmt.Sprintf("repos/acme/api/deployments/%d/statuses", depID), map[string]any{"state": "bogus"}, 422)
	c.call("GET", fmt.Sprintf("repos/acme/api/deployments/%d/statuses", depID), nil, 200)

	c.call("POST", "repos/acme/api/actions/workflows/deploy.yml/dispatches", map[string]any{"ref": "main", "inputs": map[string]any{"version": "0.2.0"}}, 204)
	runs := obj(t, c.call("GET", "repos/acme/api/actions/runs?event=workflow_dispatch", nil, 200))
	wr := obj(t, arr(t, runs["workflow_runs"])[0])
	c.call("GET", "repos/acme/api/actions/workflows/deploy.yml/runs", nil, 200)
	c.call("GET", fmt.Sprintf("repos/acme/api/actions/runs/%d", int64(wr["id"].(float64))), nil, 200)

	// Authentication failures answer too.
	anon := &rawClient{t: t, base: s.URL()}
	anon.call("GET", "repos/acme/api", nil, 401)
	anon.call("GET", "app", nil, 401)

	for _, v := range s.SchemaViolations() {
		t.Errorf("live schema check: %v", v)
	}
	// Check again from the recording, independently of the live option,
	// and make sure no route went untested.
	served := map[string]bool{}
	for _, r := range s.Requests() {
		if r.Status >= 200 && r.Status < 300 {
			served[r.Pattern] = true
		}
	}
	for _, p := range Routes() {
		if !served[p] {
			t.Errorf("route %s was never exercised successfully", p)
		}
	}
}

// TestSchemaCheckRecordsViolations makes sure the live hook is not vacuous
// either: a body the schema rejects becomes a SchemaViolation with its
// route and status, and without a check nothing is recorded.
func TestSchemaCheckRecordsViolations(t *testing.T) {
	const repoRoute = "GET /repos/{owner}/{repo}"
	corrupt := func(pattern string, status int, body []byte) error {
		if pattern == repoRoute {
			body = []byte(`{"id":"not a number"}`)
		}
		return schemacheck.ValidateResponse(pattern, status, body)
	}
	s := newServer(t, WithSchemaCheck(corrupt))
	seed(t, s)
	s.AddStaticToken("ghp_static")
	c := &rawClient{t: t, base: s.URL(), auth: "token ghp_static"}
	c.call("GET", "repos/acme/api", nil, 200)
	c.call("GET", "repos/acme/api/branches/main", nil, 200)
	v := s.SchemaViolations()
	if len(v) != 1 || v[0].Pattern != repoRoute || v[0].Status != 200 || !strings.Contains(v[0].Err, "/id") {
		t.Errorf("violations %v; want one for %s → 200 at /id", v, repoRoute)
	}

	plain := newServer(t)
	seed(t, plain)
	plain.AddStaticToken("ghp_static")
	c = &rawClient{t: t, base: plain.URL(), auth: "token ghp_static"}
	c.call("GET", "repos/acme/api", nil, 200)
	if v := plain.SchemaViolations(); len(v) != 0 {
		t.Errorf("violations without a check: %v", v)
	}
}
