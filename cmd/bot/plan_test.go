package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/githubtest"
)

const planConfig = `version: 1
stages:
  - name: qa
    target: spinnaker-qa
  - name: prod
    target: spinnaker-prod
`

func planFixture(t *testing.T) (*githubtest.Server, int) {
	t.Helper()
	gh := githubtest.New()
	t.Cleanup(gh.Close)
	gh.AddStaticToken("ghs_plan")
	gh.AddRepo("acme/api", githubtest.RepoSpec{Files: map[string]string{".github/shipbot.yml": planConfig}})
	gh.SetPermission("acme/api", "bob", "write")
	gh.SetBranchProtection("acme/api", "main", githubtest.BranchProtection{RequiredApprovingReviewCount: 1, RequiredStatusChecks: []string{"ci/test"}})
	gh.AddTag("acme/api", "v1.4.2", gh.BranchSHA("acme/api", "main"))
	pr := gh.OpenPullRequest("acme/api", githubtest.PullRequestSpec{Title: "feat: search", Author: "alice", Labels: []string{"no-deploy-to-prod"}})
	head := gh.PullRequest("acme/api", pr).HeadSHA
	gh.SetStatus("acme/api", head, "ci/test", "success")
	t.Setenv("GITHUB_TOKEN", "ghs_plan")
	t.Setenv("SHIPBOT_GITHUB_API_URL", gh.URL())
	return gh, pr
}

func TestPlanForecastsTheMerge(t *testing.T) {
	gh, pr := planFixture(t)
	code, out, stderr := runBot(t, "plan", "--repo", "acme/api", "--pr", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"gate:     REFUSED", "approval", "qa       -> spinnaker-qa", "skipped (label no-deploy-to-prod)"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	gh.AddReview("acme/api", pr, "bob", "APPROVED", gh.PullRequest("acme/api", pr).HeadSHA)
	_, out, _ = runBot(t, "plan", "--repo", "acme/api", "--pr", "1")
	if !strings.Contains(out, "gate:     allowed (1 approval by bob; 1 required)") || !strings.Contains(out, "version:  v1.5.0") || !strings.Contains(out, "previous v1.4.2") {
		t.Errorf("approved plan:\n%s", out)
	}
	// A dry run writes nothing.
	for _, r := range gh.Requests() {
		if r.Method != "GET" {
			t.Errorf("plan wrote to GitHub: %s %s", r.Method, r.Path)
		}
	}
}

func TestPlanWithLocalConfigAndEventFile(t *testing.T) {
	gh, pr := planFixture(t)
	dir := t.TempDir()
	local := filepath.Join(dir, "shipbot.yml")
	os.WriteFile(local, []byte("version: 1\nstages:\n  - name: canary\n    target: spinnaker-canary\n"), 0o644)
	event := filepath.Join(dir, "event.json")
	os.WriteFile(event, gh.PullRequestEvent("acme", "api", pr, "opened"), 0o644)
	code, out, stderr := runBot(t, "plan", "--event", event, "--config", local)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "canary   -> spinnaker-canary") || strings.Contains(out, "spinnaker-qa") {
		t.Errorf("plan did not evaluate the local config:\n%s", out)
	}
}

// bot plan speaks the stage shapes: a wave lists its targets, a stage that
// needs approval says so with the command that gives it.
func TestPlanShowsWavesAndApprovals(t *testing.T) {
	gh, pr := planFixture(t)
	gh.AddReview("acme/api", pr, "bob", "APPROVED", gh.PullRequest("acme/api", pr).HeadSHA)
	local := filepath.Join(t.TempDir(), "shipbot.yml")
	os.WriteFile(local, []byte("version: 1\nstages:\n  - {name: qa, target: spinnaker-qa}\n"+
		"  - name: canary\n    targets: [canary-eu, canary-us]\n    approval: true\n    approvers: [carol]\n"), 0o644)
	code, out, stderr := runBot(t, "plan", "--repo", "acme/api", "--pr", "1", "--config", local)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"qa       -> spinnaker-qa         would deploy\n",
		"canary   -> canary-eu, canary-us would deploy once approved (/shipbot approve canary)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
}

// An invalid local file is the whole answer: reported with its line before
// GitHub is asked anything (no token, network or rate limit needed).
func TestPlanReportsConfigErrorsBeforeGitHub(t *testing.T) {
	gh, _ := planFixture(t)
	bad := filepath.Join(t.TempDir(), "shipbot.yml")
	os.WriteFile(bad, []byte("version: 1\nstages:\n  - name: qa\n"), 0o644)
	code, out, stderr := runBot(t, "plan", "--repo", "acme/api", "--pr", "1", "--config", bad)
	if code != 1 || !strings.Contains(stderr, bad+":3:5: stages[0].target: required") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 naming %s:3:5", code, out, stderr, bad)
	}
	if n := gh.Count("*"); n != 0 {
		t.Errorf("plan made %d GitHub requests before reporting the invalid file; want 0", n)
	}
	t.Setenv("GITHUB_TOKEN", "")
	if code, _, stderr := runBot(t, "plan", "--repo", "acme/api", "--pr", "1", "--config", bad); code != 1 || !strings.Contains(stderr, "stages[0].target: required") {
		t.Errorf("without a token: exit %d, stderr %q; want the config error", code, stderr)
	}
}

func TestPlanUsage(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "x")
	if code, _, _ := runBot(t, "plan"); code != 2 {
		t.Errorf("no arguments: exit %d; want 2", code)
	}
	t.Setenv("GITHUB_TOKEN", "")
	if code, _, stderr := runBot(t, "plan", "--repo", "a/b", "--pr", "1"); code == 0 || !strings.Contains(stderr, "GITHUB_TOKEN") {
		t.Errorf("no token: exit %d %q", code, stderr)
	}
}

const planMultiConfig = `version: 1
gate: {approvals: 1}
pipelines:
  - name: api
    paths: ["services/api/**"]
    ignore: ["**/*.md"]
    stages:
      - {name: qa, target: spinnaker-api-qa}
      - {name: prod, target: spinnaker-api-prod}
  - name: web
    paths: ["services/web/**"]
    stages:
      - {name: prod, target: web-deploy}
`

// multiPlanFixture is a repository in the `pipelines:` form with an approved,
// green pull request changing files.
func multiPlanFixture(t *testing.T, files map[string]string, labels ...string) *githubtest.Server {
	t.Helper()
	gh := githubtest.New()
	t.Cleanup(gh.Close)
	gh.AddStaticToken("ghs_plan")
	gh.AddRepo("acme/mono", githubtest.RepoSpec{Files: map[string]string{".github/shipbot.yml": planMultiConfig}})
	gh.SetPermission("acme/mono", "bob", "write")
	gh.SetBranchProtection("acme/mono", "main", githubtest.BranchProtection{RequiredApprovingReviewCount: 1, RequiredStatusChecks: []string{"ci/test"}})
	gh.AddTag("acme/mono", "api/v1.4.2", gh.BranchSHA("acme/mono", "main"))
	gh.AddTag("acme/mono", "v9.0.0", gh.BranchSHA("acme/mono", "main"))
	pr := gh.OpenPullRequest("acme/mono", githubtest.PullRequestSpec{Title: "feat: search", Author: "alice", Labels: labels, Files: files})
	head := gh.PullRequest("acme/mono", pr).HeadSHA
	gh.SetStatus("acme/mono", head, "ci/test", "success")
	gh.AddReview("acme/mono", pr, "bob", "APPROVED", head)
	t.Setenv("GITHUB_TOKEN", "ghs_plan")
	t.Setenv("SHIPBOT_GITHUB_API_URL", gh.URL())
	return gh
}

func TestPlanPrintsEveryPipeline(t *testing.T) {
	gh := multiPlanFixture(t, map[string]string{"services/api/search.go": "package api\n", "services/web/app.ts": "x\n"}, "no-deploy-to-api/prod")
	code, out, stderr := runBot(t, "plan", "--repo", "acme/mono", "--pr", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"gate:     allowed",
		"files:    2 files changed; pipelines touched: api, web\n",
		"pipeline: api\nversion:  api/v1.5.0 (title \"feat: search\" is a feature: minor; previous api/v1.4.2)\n",
		"stages:   qa       -> spinnaker-api-qa     would deploy\n",
		"          prod     -> spinnaker-api-prod   skipped (label no-deploy-to-api/prod)\n",
		"pipeline: web\nversion:  web/v0.1.0 (title \"feat: search\" is a feature: minor; first release)\n",
		"stages:   prod     -> web-deploy           would deploy\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if n := gh.Count("GET /repos/{owner}/{repo}/pulls/{pull_number}/files"); n != 1 {
		t.Errorf("read the pull request's files %d times, want 1", n)
	}
	for _, r := range gh.Requests() {
		if r.Method != "GET" {
			t.Errorf("plan wrote to GitHub: %s %s", r.Method, r.Path)
		}
	}
}

func TestPlanNoPipelineAffected(t *testing.T) {
	multiPlanFixture(t, map[string]string{"services/api/README.md": "# api\n", "docs/x.md": "x\n"})
	code, out, stderr := runBot(t, "plan", "--repo", "acme/mono", "--pr", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"files:    2 files changed, none starts a pipeline: a merge releases nothing (no pipeline affected)",
		"          api: services/api/** (ignoring **/*.md)\n",
		"          web: services/web/**\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\npipeline: ") {
		t.Errorf("plan lists a pipeline:\n%s", out)
	}
}

// --config in the pipelines form reads the pull request's files through the
// override too.
func TestPlanLocalMultiConfig(t *testing.T) {
	planFixture(t)
	local := filepath.Join(t.TempDir(), "shipbot.yml")
	os.WriteFile(local, []byte("version: 1\npipelines:\n  - name: docs\n    paths: [\"docs/**\"]\n  - name: all\n    stages:\n      - {name: canary, target: spinnaker-canary}\n"), 0o644)
	code, out, stderr := runBot(t, "plan", "--repo", "acme/api", "--pr", "1", "--config", local)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "pipelines touched: all\n") || strings.Contains(out, "pipeline: docs") || !strings.Contains(out, "canary   -> spinnaker-canary") {
		t.Errorf("plan did not evaluate the local pipelines:\n%s", out)
	}
}
