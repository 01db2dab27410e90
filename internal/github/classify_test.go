package github

import "testing"

func TestClassify(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		method, path, want string
	}{
		{"GET", "/repos/acme/api/pulls/123", "GET /repos/{owner}/{repo}/pulls/{pull_number}"},
		{"get", "/repos/acme/api/pulls/123?per_page=100", "GET /repos/{owner}/{repo}/pulls/{pull_number}"},
		{"GET", "/repos/acme/api/pulls/123/reviews", "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews"},
		{"GET", "/repos/acme/api", "GET /repos/{owner}/{repo}"},
		{"GET", "/repos/acme/api/", "GET /repos/{owner}/{repo}"},
		{"POST", "/app/installations/42/access_tokens", "POST /app/installations/{installation_id}/access_tokens"},
		{"POST", "/api/v3/app/installations/42/access_tokens", "POST /app/installations/{installation_id}/access_tokens"},
		{"GET", "/app", "GET /app"},
		{"GET", "/api/v3/app", "GET /app"},
		{"GET", "/repos/acme/api/installation", "GET /repos/{owner}/{repo}/installation"},
		{"GET", "/installation/repositories", "GET /installation/repositories"},
		{"GET", "/repos/acme/api/commits/" + sha + "/check-runs", "GET /repos/{owner}/{repo}/commits/{ref}/check-runs"},
		{"GET", "/repos/acme/api/commits/feature/x/check-runs", "GET /repos/{owner}/{repo}/commits/{ref}/check-runs"},
		{"GET", "/repos/acme/api/commits/main/status", "GET /repos/{owner}/{repo}/commits/{ref}/status"},
		{"GET", "/repos/acme/api/commits/main/statuses", "GET /repos/{owner}/{repo}/commits/{ref}/statuses"},
		{"GET", "/repos/acme/api/commits/" + sha + "/pulls", "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls"},
		{"GET", "/repos/acme/api/commits/" + sha, "GET /repos/{owner}/{repo}/commits/{ref}"},
		{"POST", "/repos/acme/api/statuses/" + sha, "POST /repos/{owner}/{repo}/statuses/{sha}"},
		{"POST", "/repos/acme/api/check-runs", "POST /repos/{owner}/{repo}/check-runs"},
		{"PATCH", "/repos/acme/api/check-runs/998877", "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}"},
		{"GET", "/repos/acme/api/contents/.github/shipbot.yml", "GET /repos/{owner}/{repo}/contents/{path}"},
		{"GET", "/repos/acme/api/contents/shipbot.yml", "GET /repos/{owner}/{repo}/contents/{path}"},
		{"GET", "/repos/acme/api/issues/5/labels", "GET /repos/{owner}/{repo}/issues/{issue_number}/labels"},
		{"POST", "/repos/acme/api/issues/5/comments", "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"},
		{"PATCH", "/repos/acme/api/issues/comments/77", "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}"},
		{"POST", "/repos/acme/api/issues/comments/77/reactions", "POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"},
		{"GET", "/repos/acme/api/branches/main/protection", "GET /repos/{owner}/{repo}/branches/{branch}/protection"},
		{"GET", "/repos/acme/api/branches/release%2F1.x/protection", "GET /repos/{owner}/{repo}/branches/{branch}/protection"},
		{"GET", "/repos/acme/api/branches/release/1.x/protection", "GET /repos/{owner}/{repo}/branches/{branch}/protection"},
		{"GET", "/repos/acme/api/branches/main", "GET /repos/{owner}/{repo}/branches/{branch}"},
		{"GET", "/repos/acme/api/rules/branches/main", "GET /repos/{owner}/{repo}/rules/branches/{branch}"},
		{"GET", "/repos/acme/api/tags", "GET /repos/{owner}/{repo}/tags"},
		{"GET", "/repos/acme/api/git/ref/tags/v1.2.3", "GET /repos/{owner}/{repo}/git/ref/{ref}"},
		{"POST", "/repos/acme/api/git/refs", "POST /repos/{owner}/{repo}/git/refs"},
		{"PATCH", "/repos/acme/api/git/refs/heads/main", "PATCH /repos/{owner}/{repo}/git/refs/{ref}"},
		{"GET", "/repos/acme/api/git/matching-refs/tags/v", "GET /repos/{owner}/{repo}/git/matching-refs/{ref}"},
		{"POST", "/repos/acme/api/git/tags", "POST /repos/{owner}/{repo}/git/tags"},
		{"GET", "/repos/acme/api/git/tags/" + sha, "GET /repos/{owner}/{repo}/git/tags/{tag_sha}"},
		{"POST", "/repos/acme/api/releases", "POST /repos/{owner}/{repo}/releases"},
		{"GET", "/repos/acme/api/releases/tags/v1.2.3", "GET /repos/{owner}/{repo}/releases/tags/{tag}"},
		{"GET", "/repos/acme/api/releases/latest", "GET /repos/{owner}/{repo}/releases/latest"},
		{"PATCH", "/repos/acme/api/releases/12", "PATCH /repos/{owner}/{repo}/releases/{release_id}"},
		{"POST", "/repos/acme/api/deployments", "POST /repos/{owner}/{repo}/deployments"},
		{"POST", "/repos/acme/api/deployments/9/statuses", "POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses"},
		{"GET", "/repos/acme/api/collaborators/octocat/permission", "GET /repos/{owner}/{repo}/collaborators/{username}/permission"},
		{"POST", "/repos/acme/api/actions/workflows/deploy.yml/dispatches", "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"},
		{"GET", "/repos/acme/api/actions/runs", "GET /repos/{owner}/{repo}/actions/runs"},
		{"GET", "/repos/acme/api/actions/runs/31", "GET /repos/{owner}/{repo}/actions/runs/{run_id}"},
		{"GET", "/repos/acme/api/compare/v1.0.0...main", "GET /repos/{owner}/{repo}/compare/{basehead}"},
		// Fallback: not in the table.
		{"GET", "/repos/acme/api/hooks/12", "GET /repos/{owner}/{repo}/hooks/{id}"},
		{"GET", "/repos/acme/api/git/trees/" + sha, "GET /repos/{owner}/{repo}/git/trees/{sha}"},
		{"GET", "/orgs/acme/teams", "GET /orgs/{org}/teams"},
		{"GET", "/api/v3/meta", "GET /meta"},
		{"GET", "/", "GET /"},
		{"GET", "", "GET /"},
	}
	for _, tt := range tests {
		if got := Classify(tt.method, tt.path); got != tt.want {
			t.Errorf("Classify(%q, %q) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	for b.Loop() {
		Classify("GET", "/repos/acme/api/commits/main/check-runs")
	}
}
