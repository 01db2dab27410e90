package githubtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v60/github"
)

var ctx = context.Background()

func TestMergeAndPullRequestReads(t *testing.T) {
	s := newServer(t)
	pr, merge := seed(t, s)
	gh := ghClient(t, s)

	got, _, err := gh.PullRequests.Get(ctx, "acme", "api", pr)
	if err != nil {
		t.Fatal(err)
	}
	if !got.GetMerged() || got.GetMergeCommitSHA() != merge || got.GetMergedBy().GetLogin() != "alice" ||
		got.GetMergedAt().IsZero() || got.GetState() != "closed" || got.GetBase().GetRef() != "main" {
		t.Errorf("merged PR reads as merged=%v sha=%s by=%s state=%s", got.GetMerged(), got.GetMergeCommitSHA(), got.GetMergedBy().GetLogin(), got.GetState())
	}
	if len(got.Labels) != 1 || got.Labels[0].GetName() != "no-deploy-to-prod" {
		t.Errorf("labels on the PR object: %v", got.Labels)
	}
	if len(merge) != 40 || !isHex(merge) {
		t.Errorf("merge SHA %q", merge)
	}
	// The merge commit has the base and the head as parents and the
	// head's files.
	cm, _, err := gh.Repositories.GetCommit(ctx, "acme", "api", merge, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.Parents) != 2 || cm.Parents[1].GetSHA() != got.GetHead().GetSHA() {
		t.Errorf("merge commit parents %v", cm.Parents)
	}
	if content, ok := s.FileAt(testRepo, merge, "health.go"); !ok || content != "package api\n" {
		t.Errorf("merge commit lacks the head's file")
	}
	if s.BranchSHA(testRepo, "main") != merge {
		t.Error("main did not move to the merge commit")
	}

	// The PR associated with the merge commit, and with its head commit.
	for _, sha := range []string{merge, got.GetHead().GetSHA()} {
		prs, _, err := gh.PullRequests.ListPullRequestsWithCommit(ctx, "acme", "api", sha, nil)
		if err != nil || len(prs) != 1 || prs[0].GetNumber() != pr {
			t.Errorf("PRs with commit %s: %v %v", sha[:7], prs, err)
		}
	}
	// A direct push belongs to no PR.
	direct := s.AddCommit(testRepo, "main", "hotfix", map[string]string{"x": "y"})
	prs, _, err := gh.PullRequests.ListPullRequestsWithCommit(ctx, "acme", "api", direct, nil)
	if err != nil || len(prs) != 0 {
		t.Errorf("direct push PRs: %v %v", prs, err)
	}

	reviews, _, err := gh.PullRequests.ListReviews(ctx, "acme", "api", pr, nil)
	if err != nil || len(reviews) != 1 || reviews[0].GetState() != "APPROVED" || reviews[0].GetCommitID() != got.GetHead().GetSHA() {
		t.Errorf("reviews %v %v", reviews, err)
	}

	squashPR := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "fix: y", Author: "carol"})
	squash := s.SquashMerge(testRepo, squashPR, "carol")
	sc, _, err := gh.Repositories.GetCommit(ctx, "acme", "api", squash, nil)
	if err != nil || len(sc.Parents) != 1 || !strings.HasPrefix(sc.GetCommit().GetMessage(), "fix: y (#2)") {
		t.Errorf("squash commit %v %v", sc, err)
	}
}

func TestContents(t *testing.T) {
	s := newServer(t)
	_, merge := seed(t, s)
	before := s.AddCommit(testRepo, "main", "change config", map[string]string{".github/shipbot.yml": "version: 2\n"})
	gh := ghClient(t, s)
	fc, _, _, err := gh.Repositories.GetContents(ctx, "acme", "api", ".github/shipbot.yml", &github.RepositoryContentGetOptions{Ref: merge})
	if err != nil {
		t.Fatal(err)
	}
	text, err := fc.GetContent()
	if err != nil || text != "version: 1\npipeline: api\n" {
		t.Errorf("config at merge = %q, %v", text, err)
	}
	fc, _, _, err = gh.Repositories.GetContents(ctx, "acme", "api", ".github/shipbot.yml", &github.RepositoryContentGetOptions{Ref: before})
	if text, _ := fc.GetContent(); err != nil || text != "version: 2\n" {
		t.Errorf("config at later commit = %q, %v", text, err)
	}
	_, _, resp, err := gh.Repositories.GetContents(ctx, "acme", "api", "nope.yml", &github.RepositoryContentGetOptions{Ref: merge})
	if resp == nil || resp.StatusCode != 404 || err == nil {
		t.Errorf("missing file: %v", err)
	}
}

func TestLabelsREST(t *testing.T) {
	s := newServer(t)
	pr, _ := seed(t, s)
	gh := ghClient(t, s)
	labels, _, err := gh.Issues.AddLabelsToIssue(ctx, "acme", "api", pr, []string{"semver:minor", "no-deploy-to-prod"})
	if err != nil || len(labels) != 2 {
		t.Fatalf("add labels: %v %v", labels, err)
	}
	if _, err := gh.Issues.RemoveLabelForIssue(ctx, "acme", "api", pr, "no-deploy-to-prod"); err != nil {
		t.Fatal(err)
	}
	if _, err := gh.Issues.RemoveLabelForIssue(ctx, "acme", "api", pr, "no-deploy-to-prod"); !isStatus(err, 404) {
		t.Errorf("removing an absent label: %v", err)
	}
	if diff := cmp.Diff([]string{"semver:minor"}, s.Labels(testRepo, pr)); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
}

func isStatus(err error, status int) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response.StatusCode == status
}

func TestProtectionAndRules(t *testing.T) {
	s := newServer(t)
	seed(t, s)
	gh := ghClient(t, s)
	_, _, err := gh.Repositories.GetBranchProtection(ctx, "acme", "api", "main")
	if !errors.Is(err, github.ErrBranchNotProtected) {
		t.Errorf("unprotected branch: %v", err)
	}
	s.SetBranchProtection(testRepo, "main", BranchProtection{RequiredApprovingReviewCount: 2, DismissStaleReviews: true, RequiredStatusChecks: []string{"ci/build", "test"}})
	p, _, err := gh.Repositories.GetBranchProtection(ctx, "acme", "api", "main")
	if err != nil {
		t.Fatal(err)
	}
	if p.GetRequiredPullRequestReviews().RequiredApprovingReviewCount != 2 || !p.GetRequiredPullRequestReviews().DismissStaleReviews ||
		!cmp.Equal(*p.GetRequiredStatusChecks().Contexts, []string{"ci/build", "test"}) {
		t.Errorf("protection %+v", p)
	}
	b, _, err := gh.Repositories.GetBranch(ctx, "acme", "api", "main", 0)
	if err != nil || !b.GetProtected() {
		t.Errorf("branch protected=%v %v", b.GetProtected(), err)
	}

	s.SetAdministrationReadDenied(testRepo, true)
	_, resp, err := gh.Repositories.GetBranchProtection(ctx, "acme", "api", "main")
	if resp == nil || resp.StatusCode != 403 || !strings.Contains(err.Error(), "Resource not accessible by integration") {
		t.Errorf("without Administration: read: %v", err)
	}
	denied := newServer(t, WithAdministrationReadDenied())
	seed(t, denied)
	tokenClient(t, denied).call("GET", "repos/acme/api/branches/main/protection", nil, 403)

	s.AddRuleset(testRepo, Ruleset{Name: "release", Branches: []string{"release/*"}, PullRequest: &PullRequestRule{RequiredApprovingReviewCount: 3}})
	s.AddRuleset(testRepo, Ruleset{Name: "main", Branches: []string{"~DEFAULT_BRANCH"},
		PullRequest:          &PullRequestRule{RequiredApprovingReviewCount: 1, DismissStaleReviewsOnPush: true},
		RequiredStatusChecks: []string{"test"}})
	rules := arr(t, tokenClient(t, s).call("GET", "repos/acme/api/rules/branches/main", nil, 200))
	if len(rules) != 2 {
		t.Fatalf("rules %v", rules)
	}
	pr, sc := obj(t, rules[0]), obj(t, rules[1])
	params := obj(t, pr["parameters"])
	if pr["type"] != "pull_request" || params["required_approving_review_count"] != 1.0 || params["dismiss_stale_reviews_on_push"] != true {
		t.Errorf("pull_request rule %v", pr)
	}
	checks := arr(t, obj(t, sc["parameters"])["required_status_checks"])
	if sc["type"] != "required_status_checks" || obj(t, checks[0])["context"] != "test" {
		t.Errorf("status checks rule %v", sc)
	}
	// go-github decodes the same rules.
	ghRules, _, err := gh.Repositories.GetRulesForBranch(ctx, "acme", "api", "release/1.x")
	if err != nil || len(ghRules) != 1 || ghRules[0].Type != "pull_request" {
		t.Errorf("release rules %v %v", ghRules, err)
	}
}

func TestCollaboratorPermission(t *testing.T) {
	s := newServer(t)
	seed(t, s)
	s.SetPermission(testRepo, "mia", "maintain")
	s.SetPermission(testRepo, "tom", "triage")
	gh := ghClient(t, s)
	for user, want := range map[string][2]string{
		"acme": {"admin", "admin"}, "mia": {"write", "maintain"}, "tom": {"read", "triage"}, "stranger": {"read", "read"},
	} {
		p, _, err := gh.Repositories.GetPermissionLevel(ctx, "acme", "api", user)
		if err != nil {
			t.Fatal(err)
		}
		if p.GetPermission() != want[0] || p.GetUser().GetRoleName() != want[1] {
			t.Errorf("%s: permission %q role %q, want %v", user, p.GetPermission(), p.GetUser().GetRoleName(), want)
		}
	}
}

func TestChecksAndStatuses(t *testing.T) {
	s := newServer(t)
	_, merge := seed(t, s)
	gh := ghClient(t, s)
	run, _, err := gh.Checks.CreateCheckRun(ctx, "acme", "api", github.CreateCheckRunOptions{
		Name: "shipbot/rollout", HeadSHA: merge, Status: github.String("in_progress"),
		Output: &github.CheckRunOutput{Title: github.String("Rolling out"), Summary: github.String("qa: deploying")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if run.GetApp().GetSlug() != "shipbot" || run.GetStatus() != "in_progress" {
		t.Errorf("created run app=%s status=%s", run.GetApp().GetSlug(), run.GetStatus())
	}
	_, _, err = gh.Checks.UpdateCheckRun(ctx, "acme", "api", run.GetID(), github.UpdateCheckRunOptions{
		Name: "shipbot/rollout", Conclusion: github.String("success"),
		Output: &github.CheckRunOutput{Title: github.String("Done"), Summary: github.String("all stages")},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.AddCheckRun(testRepo, merge, "lint", "ci", "", "failure")
	list, _, err := gh.Checks.ListCheckRunsForRef(ctx, "acme", "api", merge, &github.ListCheckRunsOptions{CheckName: github.String("shipbot/rollout")})
	if err != nil || list.GetTotal() != 1 || list.CheckRuns[0].GetConclusion() != "success" || list.CheckRuns[0].GetOutput().GetTitle() != "Done" {
		t.Errorf("check_name filter: %v %v", list, err)
	}
	cr, ok := s.CheckRun(testRepo, merge, "shipbot/rollout")
	if !ok || cr.Conclusion != "success" || cr.Status != "completed" || cr.Summary != "all stages" || cr.Updates != 1 || cr.CompletedAt.IsZero() {
		t.Errorf("reader: %+v", cr)
	}
	// Only the App that created a run may update it.
	ciRun := s.AddCheckRun(testRepo, merge, "build", "ci", "in_progress", "")
	if _, _, err := gh.Checks.UpdateCheckRun(ctx, "acme", "api", ciRun, github.UpdateCheckRunOptions{Name: "build", Conclusion: github.String("success")}); !isStatus(err, 403) {
		t.Errorf("updating another App's run: %v", err)
	}
	// completed without a conclusion is refused.
	c := tokenClient(t, s)
	c.call("PATCH", fmt.Sprintf("repos/acme/api/check-runs/%d", run.GetID()), map[string]any{"status": "completed", "conclusion": nil}, 200)
	c.call("POST", "repos/acme/api/check-runs", map[string]any{"name": "x", "head_sha": merge, "status": "completed"}, 422)
	c.call("POST", "repos/acme/api/check-runs", map[string]any{"name": "x", "head_sha": strings.Repeat("0", 40)}, 422)

	// Combined status: pending until every context succeeds.
	combined := func() string {
		st, _, err := gh.Repositories.GetCombinedStatus(ctx, "acme", "api", merge, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st.GetState()
	}
	if got := combined(); got != "pending" {
		t.Errorf("no statuses: %s", got)
	}
	s.SetStatus(testRepo, merge, "ci/build", "pending")
	if _, _, err := gh.Repositories.CreateStatus(ctx, "acme", "api", merge, &github.RepoStatus{State: github.String("success"), Context: github.String("shipbot/gate")}); err != nil {
		t.Fatal(err)
	}
	if got := combined(); got != "pending" {
		t.Errorf("one pending: %s", got)
	}
	s.SetStatus(testRepo, merge, "ci/build", "success")
	if got := combined(); got != "success" {
		t.Errorf("all green: %s", got)
	}
	s.SetStatus(testRepo, merge, "ci/build", "failure")
	if got := combined(); got != "failure" {
		t.Errorf("one failed: %s", got)
	}
	statuses := s.Statuses(testRepo, merge)
	if len(statuses) != 4 || statuses[1].Creator != "shipbot[bot]" {
		t.Errorf("statuses %+v", statuses)
	}
}

func TestRefsTagsAndReleases(t *testing.T) {
	s := newServer(t)
	_, merge := seed(t, s)
	gh := ghClient(t, s)
	first := s.BranchSHA(testRepo, "main")

	ref, _, err := gh.Git.CreateRef(ctx, "acme", "api", &github.Reference{Ref: github.String("refs/tags/v0.1.0"), Object: &github.GitObject{SHA: github.String(merge)}})
	if err != nil || ref.GetObject().GetSHA() != merge {
		t.Fatalf("create ref: %v %v", ref, err)
	}
	_, _, err = gh.Git.CreateRef(ctx, "acme", "api", &github.Reference{Ref: github.String("refs/tags/v0.1.0"), Object: &github.GitObject{SHA: github.String(merge)}})
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response.StatusCode != 422 || er.Message != "Reference already exists" {
		t.Errorf("duplicate ref: %v", err)
	}

	// An annotated tag: the object, then the ref to it.
	tag, _, err := gh.Git.CreateTag(ctx, "acme", "api", &github.Tag{Tag: github.String("v0.1.1"), Message: github.String("release v0.1.1"),
		Object: &github.GitObject{SHA: github.String(first), Type: github.String("commit")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Git.CreateRef(ctx, "acme", "api", &github.Reference{Ref: github.String("refs/tags/v0.1.1"), Object: &github.GitObject{SHA: tag.SHA}}); err != nil {
		t.Fatal(err)
	}
	got, _, err := gh.Git.GetRef(ctx, "acme", "api", "tags/v0.1.1")
	if err != nil || got.GetObject().GetType() != "tag" || got.GetObject().GetSHA() != tag.GetSHA() {
		t.Errorf("annotated ref %v %v", got, err)
	}
	matching, _, err := gh.Git.ListMatchingRefs(ctx, "acme", "api", &github.ReferenceListOptions{Ref: "tags/v0.1"})
	if err != nil || len(matching) != 2 {
		t.Errorf("matching refs %v %v", matching, err)
	}
	tags := s.Tags(testRepo)
	if len(tags) != 2 || tags[1].Name != "v0.1.1" || !tags[1].Annotated || tags[1].SHA != first || tags[1].ObjectSHA != tag.GetSHA() {
		t.Errorf("Tags() = %+v", tags)
	}

	// A release for a tag that does not exist creates it at
	// target_commitish.
	rel, _, err := gh.Repositories.CreateRelease(ctx, "acme", "api", &github.RepositoryRelease{
		TagName: github.String("v0.2.0"), TargetCommitish: github.String(merge), Name: github.String("v0.2.0"), Body: github.String("notes"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if sha, ok := s.Ref(testRepo, "refs/tags/v0.2.0"); !ok || sha != merge {
		t.Errorf("release did not create its tag at the target: %q %v", sha, ok)
	}
	_, _, err = gh.Repositories.CreateRelease(ctx, "acme", "api", &github.RepositoryRelease{TagName: github.String("v0.2.0")})
	if !errors.As(err, &er) || er.Response.StatusCode != 422 || len(er.Errors) != 1 || er.Errors[0].Code != "already_exists" || er.Errors[0].Field != "tag_name" {
		t.Errorf("duplicate release: %v", err)
	}
	byTag, _, err := gh.Repositories.GetReleaseByTag(ctx, "acme", "api", "v0.2.0")
	if err != nil || byTag.GetID() != rel.GetID() || byTag.GetAuthor().GetLogin() != "shipbot[bot]" {
		t.Errorf("release by tag %v %v", byTag, err)
	}
	if _, _, err := gh.Repositories.GetReleaseByTag(ctx, "acme", "api", "v9.0.0"); !isStatus(err, 404) {
		t.Errorf("missing release: %v", err)
	}
	rels := s.Releases(testRepo)
	if len(rels) != 1 || rels[0].TagName != "v0.2.0" || rels[0].Body != "notes" {
		t.Errorf("Releases() = %+v", rels)
	}
	// The tags list is paginated like the rest.
	for i := range 35 {
		s.AddTag(testRepo, fmt.Sprintf("old-%02d", i), first)
	}
	opts := &github.ListOptions{PerPage: 100}
	all, resp, err := gh.Repositories.ListTags(ctx, "acme", "api", opts)
	if err != nil || len(all) != 38 || resp.NextPage != 0 {
		t.Errorf("tags page of 100: %d %v", len(all), err)
	}
	page, resp, err := gh.Repositories.ListTags(ctx, "acme", "api", nil)
	if err != nil || len(page) != 30 || resp.NextPage != 2 || resp.LastPage != 2 {
		t.Errorf("default page: %d next %d last %d %v", len(page), resp.NextPage, resp.LastPage, err)
	}
}

func TestDeploymentsNeedRequiredContextsWhileChecksPending(t *testing.T) {
	s := newServer(t)
	_, merge := seed(t, s)
	s.AddTag(testRepo, "v0.1.0", merge)
	gh := ghClient(t, s)
	// The bot's own rollout check is in progress on the tag's commit.
	run, _, err := gh.Checks.CreateCheckRun(ctx, "acme", "api", github.CreateCheckRunOptions{Name: "shipbot/rollout", HeadSHA: merge, Status: github.String("in_progress")})
	if err != nil {
		t.Fatal(err)
	}
	_, resp, err := gh.Repositories.CreateDeployment(ctx, "acme", "api", &github.DeploymentRequest{
		Ref: github.String("v0.1.0"), Environment: github.String("qa"), AutoMerge: github.Bool(false),
	})
	if resp == nil || resp.StatusCode != http.StatusConflict || !strings.Contains(err.Error(), "Commit status checks failed") {
		t.Fatalf("deployment without required_contexts while a check is pending: %v", err)
	}
	d, _, err := gh.Repositories.CreateDeployment(ctx, "acme", "api", &github.DeploymentRequest{
		Ref: github.String("v0.1.0"), Environment: github.String("qa"), AutoMerge: github.Bool(false),
		RequiredContexts: &[]string{}, Payload: map[string]any{"version": "0.1.0"}, Description: github.String("qa"),
	})
	if err != nil {
		t.Fatalf("with required_contexts: []: %v", err)
	}
	if d.GetSHA() != merge || d.GetRef() != "v0.1.0" || d.GetTask() != "deploy" || d.GetCreator().GetLogin() != "shipbot[bot]" {
		t.Errorf("deployment %+v", d)
	}
	for _, state := range []string{"in_progress", "success"} {
		if _, _, err := gh.Repositories.CreateDeploymentStatus(ctx, "acme", "api", d.GetID(), &github.DeploymentStatusRequest{
			State: github.String(state), LogURL: github.String("https://spinnaker.example/x"),
		}); err != nil {
			t.Fatal(err)
		}
	}
	// A completed check unblocks the default behaviour.
	if _, _, err := gh.Checks.UpdateCheckRun(ctx, "acme", "api", run.GetID(), github.UpdateCheckRunOptions{Name: "shipbot/rollout", Conclusion: github.String("success")}); err != nil {
		t.Fatal(err)
	}
	second, _, err := gh.Repositories.CreateDeployment(ctx, "acme", "api", &github.DeploymentRequest{Ref: github.String("v0.1.0"), Environment: github.String("qa"), AutoMerge: github.Bool(false)})
	if err != nil {
		t.Fatalf("after checks passed: %v", err)
	}
	if _, _, err := gh.Repositories.CreateDeploymentStatus(ctx, "acme", "api", second.GetID(), &github.DeploymentStatusRequest{State: github.String("success")}); err != nil {
		t.Fatal(err)
	}
	deps := s.Deployments(testRepo)
	if len(deps) != 2 {
		t.Fatalf("%d deployments", len(deps))
	}
	var payload map[string]string
	if err := json.Unmarshal(deps[0].Payload, &payload); err != nil || payload["version"] != "0.1.0" {
		t.Errorf("payload %s", deps[0].Payload)
	}
	if deps[0].RequiredContexts == nil || len(deps[0].RequiredContexts) != 0 || deps[1].RequiredContexts != nil || deps[0].AutoMerge {
		t.Errorf("recorded request fields %+v / %+v", deps[0], deps[1])
	}
	var states []string
	for _, st := range deps[0].Statuses {
		states = append(states, st.State)
	}
	// auto_inactive: the newer success in qa made the older one inactive.
	if diff := cmp.Diff([]string{"in_progress", "success", "inactive"}, states); diff != "" {
		t.Errorf("first deployment statuses (-want +got):\n%s", diff)
	}
	listed, _, err := gh.Repositories.ListDeploymentStatuses(ctx, "acme", "api", d.GetID(), nil)
	if err != nil || len(listed) != 3 || listed[0].GetState() != "inactive" {
		t.Errorf("statuses newest first: %v %v", listed, err)
	}
}

func TestIssueCommentsAndReactions(t *testing.T) {
	s := newServer(t)
	pr, _ := seed(t, s)
	gh := ghClient(t, s)
	cm, _, err := gh.Issues.CreateComment(ctx, "acme", "api", pr, &github.IssueComment{Body: github.String("<!-- shipbot:sticky -->\nqueued")})
	if err != nil {
		t.Fatal(err)
	}
	if cm.GetUser().GetLogin() != "shipbot[bot]" || cm.GetUser().GetType() != "Bot" {
		t.Errorf("comment author %v", cm.GetUser())
	}
	if _, _, err := gh.Issues.EditComment(ctx, "acme", "api", cm.GetID(), &github.IssueComment{Body: github.String("<!-- shipbot:sticky -->\ndeploying")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Reactions.CreateIssueCommentReaction(ctx, "acme", "api", cm.GetID(), "rocket"); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		s.AddComment(testRepo, pr, "bob", fmt.Sprintf("comment %d", i))
	}
	var all []*github.IssueComment
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 15}}
	for {
		page, resp, err := gh.Issues.ListComments(ctx, "acme", "api", pr, opts)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if len(all) != 41 || all[0].GetBody() != "<!-- shipbot:sticky -->\ndeploying" {
		t.Errorf("%d comments, first %q", len(all), all[0].GetBody())
	}
	got := s.Comments(testRepo, pr)[0]
	if got.Edits != 1 || !cmp.Equal(got.Reactions, []string{"rocket"}) || got.User != "shipbot[bot]" {
		t.Errorf("reader %+v", got)
	}
}

func TestWorkflowDispatch(t *testing.T) {
	s := newServer(t)
	seed(t, s)
	gh := ghClient(t, s)
	_, err := gh.Actions.CreateWorkflowDispatchEventByFileName(ctx, "acme", "api", "deploy.yml", github.CreateWorkflowDispatchEventRequest{
		Ref: "main", Inputs: map[string]any{"version": "0.1.0", "stage": "qa"},
	})
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]any{}
	for i := range 26 {
		inputs[fmt.Sprintf("k%d", i)] = "v"
	}
	_, err = gh.Actions.CreateWorkflowDispatchEventByFileName(ctx, "acme", "api", "deploy.yml", github.CreateWorkflowDispatchEventRequest{Ref: "main", Inputs: inputs})
	if !isStatus(err, 422) {
		t.Errorf("26 inputs: %v", err)
	}
	_, err = gh.Actions.CreateWorkflowDispatchEventByFileName(ctx, "acme", "api", "deploy.yml", github.CreateWorkflowDispatchEventRequest{Ref: "nope"})
	if !isStatus(err, 422) {
		t.Errorf("unknown ref: %v", err)
	}
	ds := s.Dispatches(testRepo)
	if len(ds) != 1 || ds[0].Workflow != "deploy.yml" || ds[0].Ref != "main" || ds[0].Inputs["stage"] != "qa" {
		t.Fatalf("dispatches %+v", ds)
	}
	s.SetWorkflowRunStatus(testRepo, ds[0].RunID, "completed", "success")
	runs, _, err := gh.Actions.ListWorkflowRunsByFileName(ctx, "acme", "api", "deploy.yml", &github.ListWorkflowRunsOptions{Event: "workflow_dispatch"})
	if err != nil || runs.GetTotalCount() != 1 || runs.WorkflowRuns[0].GetConclusion() != "success" || runs.WorkflowRuns[0].GetID() != ds[0].RunID {
		t.Errorf("runs %v %v", runs, err)
	}
}
