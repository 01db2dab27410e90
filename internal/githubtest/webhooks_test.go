package githubtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
)

// TestSignGitHubVector is GitHub's published example for validating
// webhook deliveries.
func TestSignGitHubVector(t *testing.T) {
	got := Sign([]byte("It's a Secret to Everybody"), []byte("Hello, World!"))
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func parse(t *testing.T, event string, body []byte) any {
	t.Helper()
	if !json.Valid(body) {
		t.Fatalf("%s payload is not JSON", event)
	}
	v, err := github.ParseWebHook(event, body)
	if err != nil {
		t.Fatalf("ParseWebHook(%s): %v", event, err)
	}
	return v
}

func TestPullRequestEventMerged(t *testing.T) {
	s := newServer(t)
	pr, merge := seed(t, s)
	ev := parse(t, "pull_request", s.PullRequestEvent("acme", "api", pr, "closed")).(*github.PullRequestEvent)
	p := ev.GetPullRequest()
	if ev.GetAction() != "closed" || ev.GetNumber() != pr || !p.GetMerged() || p.GetMergeCommitSHA() != merge ||
		p.GetMergedBy().GetLogin() != "alice" || p.GetBase().GetRef() != "main" || p.GetHead().GetSHA() == "" {
		t.Errorf("merged PR event: action=%s merged=%v sha=%s by=%s", ev.GetAction(), p.GetMerged(), p.GetMergeCommitSHA(), p.GetMergedBy().GetLogin())
	}
	if ev.GetInstallation().GetID() != s.InstallationID() || ev.GetRepo().GetFullName() != testRepo ||
		ev.GetRepo().GetDefaultBranch() != "main" || ev.GetSender().GetLogin() != "alice" {
		t.Errorf("envelope: installation %d repo %s sender %s", ev.GetInstallation().GetID(), ev.GetRepo().GetFullName(), ev.GetSender().GetLogin())
	}
	if len(p.Labels) != 1 || p.Labels[0].GetName() != "no-deploy-to-prod" || p.GetTitle() != "feat: add health endpoint" {
		t.Errorf("PR content: %q %v", p.GetTitle(), p.Labels)
	}
	// Nothing of the example's identities may leak into the payload.
	s.AddLabels(testRepo, pr, "semver:minor")
	for _, body := range [][]byte{
		s.PullRequestEvent("acme", "api", pr, "closed"),
		s.PullRequestEvent("acme", "api", pr, "opened"),
		s.PullRequestEvent("acme", "api", pr, "labeled"),
		s.PullRequestEvent("acme", "api", pr, "synchronize"),
		s.ReviewEvent("acme", "api", pr, s.AddReview(testRepo, pr, "dan", "COMMENTED", ""), "submitted"),
		s.IssueCommentEvent("acme", "api", pr, s.AddComment(testRepo, pr, "dan", "hi"), "created"),
		s.PushEvent("acme", "api", "refs/heads/main", s.PullRequest(testRepo, pr).BaseSHA, merge),
		s.PingEvent(),
	} {
		if strings.Contains(string(body), "Codertocat") || strings.Contains(string(body), "Hello-World") || strings.Contains(string(body), "Octocoders") {
			t.Errorf("payload carries the example's repository or user: %.200s", body)
		}
	}
}

func TestPullRequestEventActions(t *testing.T) {
	s := newServer(t)
	s.AddRepo(testRepo, RepoSpec{})
	pr := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "feat: x", Author: "alice"})
	opened := parse(t, "pull_request", s.PullRequestEvent("acme", "api", pr, "opened")).(*github.PullRequestEvent)
	if opened.GetPullRequest().GetState() != "open" || opened.GetPullRequest().GetMerged() {
		t.Errorf("opened: %v", opened.GetPullRequest())
	}
	s.AddLabels(testRepo, pr, "no-deploy-to-qa")
	labeled := parse(t, "pull_request", s.PullRequestEvent("acme", "api", pr, "labeled")).(*github.PullRequestEvent)
	if labeled.GetLabel().GetName() != "no-deploy-to-qa" {
		t.Errorf("labeled names %q", labeled.GetLabel().GetName())
	}
	before := s.PullRequest(testRepo, pr).HeadSHA
	after := s.PushToPullRequest(testRepo, pr, "more", map[string]string{"b.txt": "b"})
	sync := parse(t, "pull_request", s.PullRequestEvent("acme", "api", pr, "synchronize")).(*github.PullRequestEvent)
	if sync.GetBefore() != before || sync.GetAfter() != after || sync.GetPullRequest().GetHead().GetSHA() != after {
		t.Errorf("synchronize before=%s after=%s", sync.GetBefore(), sync.GetAfter())
	}
}

func TestReviewEventApproved(t *testing.T) {
	s := newServer(t)
	s.AddRepo(testRepo, RepoSpec{})
	pr := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "feat: x", Author: "alice"})
	id := s.AddReview(testRepo, pr, "bob", "APPROVED", "")
	ev := parse(t, "pull_request_review", s.ReviewEvent("acme", "api", pr, id, "submitted")).(*github.PullRequestReviewEvent)
	rv := ev.GetReview()
	if ev.GetAction() != "submitted" || rv.GetState() != "approved" || rv.GetID() != id || rv.GetUser().GetLogin() != "bob" ||
		rv.GetCommitID() != s.PullRequest(testRepo, pr).HeadSHA || ev.GetPullRequest().GetNumber() != pr ||
		ev.GetInstallation().GetID() != s.InstallationID() {
		t.Errorf("review event %+v", rv)
	}
}

func TestIssueCommentEvent(t *testing.T) {
	s := newServer(t)
	pr, _ := seed(t, s)
	id := s.AddComment(testRepo, pr, "bob", "/shipbot retry")
	ev := parse(t, "issue_comment", s.IssueCommentEvent("acme", "api", pr, id, "created")).(*github.IssueCommentEvent)
	if ev.GetComment().GetBody() != "/shipbot retry" || ev.GetComment().GetID() != id || ev.GetIssue().GetNumber() != pr ||
		!ev.GetIssue().IsPullRequest() || ev.GetSender().GetLogin() != "bob" || ev.GetRepo().GetFullName() != testRepo {
		t.Errorf("issue_comment event %+v", ev.GetComment())
	}
}

func TestPushEvent(t *testing.T) {
	s := newServer(t)
	pr, merge := seed(t, s)
	base := s.PullRequest(testRepo, pr).BaseSHA
	prHead := s.PullRequest(testRepo, pr).HeadSHA
	ev := parse(t, "push", s.PushEvent("acme", "api", "refs/heads/main", base, merge)).(*github.PushEvent)
	// Every commit of the compare: the pull request's own (pushed to its
	// branch before, so not distinct), then its merge.
	if ev.GetRef() != "refs/heads/main" || ev.GetBefore() != base || ev.GetAfter() != merge ||
		ev.GetHeadCommit().GetID() != merge || len(ev.Commits) != 2 || ev.Commits[0].GetID() != prHead ||
		ev.Commits[1].GetID() != merge || ev.Commits[0].GetDistinct() || !ev.Commits[1].GetDistinct() ||
		ev.GetPusher().GetName() != "alice" || ev.GetInstallation().GetID() != s.InstallationID() ||
		ev.GetRepo().GetFullName() != testRepo || ev.GetCreated() || ev.GetDeleted() || ev.GetForced() {
		t.Errorf("push event ref=%s head=%s commits=%d pusher=%s", ev.GetRef(), ev.GetHeadCommit().GetID(), len(ev.Commits), ev.GetPusher().GetName())
	}
	if got := ev.Commits[0].Added; len(got) != 1 || got[0] != "health.go" {
		t.Errorf("added files %v", got)
	}
	// A push that moved a branch to a commit that does not descend from
	// before is forced.
	s.AddBranch(testRepo, "side", base)
	side := s.AddCommit(testRepo, "side", "side", map[string]string{"side.txt": "s\n"})
	if forced := parse(t, "push", s.PushEvent("acme", "api", "refs/heads/side", merge, side)).(*github.PushEvent); !forced.GetForced() {
		t.Errorf("push from %s to %s not forced", merge, side)
	}
	// A created branch lists what no other ref has.
	s.AddBranch(testRepo, "fresh", merge)
	fresh := s.AddCommit(testRepo, "fresh", "fresh", map[string]string{"fresh.txt": "f\n"})
	if created := parse(t, "push", s.PushEvent("acme", "api", "refs/heads/fresh", zeroSHA, fresh)).(*github.PushEvent); !created.GetCreated() ||
		len(created.Commits) != 1 || created.Commits[0].GetID() != fresh {
		t.Errorf("created branch push: %d commits", len(created.Commits))
	}
	// GitHub's push payload has unix-time repository timestamps.
	var raw map[string]any
	if err := json.Unmarshal(s.PushEvent("acme", "api", "refs/heads/main", base, merge), &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["repository"].(map[string]any)["created_at"].(float64); !ok {
		t.Errorf("push repository.created_at is not a number")
	}
	tag := parse(t, "push", s.PushEvent("acme", "api", "refs/tags/v0.1.0", zeroSHA, merge)).(*github.PushEvent)
	if !tag.GetCreated() || len(tag.Commits) != 0 || tag.GetHeadCommit().GetID() != merge {
		t.Errorf("tag push created=%v commits=%d", tag.GetCreated(), len(tag.Commits))
	}
}

func TestPingEventAndDeliver(t *testing.T) {
	s := newServer(t)
	ping := parse(t, "ping", s.PingEvent()).(*github.PingEvent)
	if ping.GetHookID() == 0 || ping.GetZen() == "" || ping.GetHook().GetType() != "App" {
		t.Errorf("ping %+v", ping)
	}

	var got *http.Request
	var gotBody []byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(r.Context())
		gotBody, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer hook.Close()
	secret := []byte("s3cret")
	body := s.PingEvent()
	resp, err := Deliver(ctx, hook.URL+"/webhooks/github", "ping", "d-1", body, secret)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("status %d", resp.StatusCode)
	}
	h := got.Header
	if h.Get("X-GitHub-Event") != "ping" || h.Get("X-GitHub-Delivery") != "d-1" || h.Get("Content-Type") != "application/json" ||
		!strings.HasPrefix(h.Get("User-Agent"), "GitHub-Hookshot/") || h.Get("X-Hub-Signature-256") != Sign(secret, body) ||
		string(gotBody) != string(body) || got.Method != http.MethodPost {
		t.Errorf("delivery headers %v", h)
	}
	if err := github.ValidateSignature(h.Get("X-Hub-Signature-256"), gotBody, secret); err != nil {
		t.Errorf("go-github rejects the signature: %v", err)
	}
}

// TestWebhookPayloadsMatchSchemas checks every payload builder against the
// schema GitHub's OpenAPI description gives that webhook.
func TestWebhookPayloadsMatchSchemas(t *testing.T) {
	s := newServer(t)
	pr, merge := seed(t, s)
	base := s.PullRequest(testRepo, pr).BaseSHA
	open := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "fix: typo", Author: "carol", Labels: []string{"x"}})
	s.PushToPullRequest(testRepo, open, "more", map[string]string{"more.txt": "more\n"})
	head := s.PullRequest(testRepo, open).HeadSHA
	run := s.AddCheckRun(testRepo, head, "test", "ci", "", "")
	s.SetStatus(testRepo, head, "ci/build", "success")
	queued := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "feat: q", Author: "dan"})
	g := s.EnqueueMergeGroup(testRepo, "main", queued)
	bodies := []struct {
		event string
		body  []byte
	}{
		{"pull_request", s.PullRequestEvent("acme", "api", pr, "closed")},
		{"pull_request", s.PullRequestEvent("acme", "api", open, "opened")},
		{"pull_request", s.PullRequestEvent("acme", "api", open, "reopened")},
		{"pull_request", s.PullRequestEvent("acme", "api", open, "labeled")},
		{"pull_request", s.PullRequestEvent("acme", "api", open, "synchronize")},
		{"pull_request_review", s.ReviewEvent("acme", "api", pr, s.AddReview(testRepo, pr, "dan", "APPROVED", ""), "submitted")},
		{"issue_comment", s.IssueCommentEvent("acme", "api", pr, s.AddComment(testRepo, pr, "dan", "hi"), "created")},
		{"push", s.PushEvent("acme", "api", "refs/heads/main", base, merge)},
		{"push", s.PushEvent("acme", "api", "refs/tags/v1.0.0", zeroSHA, merge)},
		{"ping", s.PingEvent()},
		{"check_run", s.CheckRunEvent("acme", "api", run, "created")},
		{"check_suite", s.CheckSuiteEvent("acme", "api", head, "ci", "", "requested")},
		{"status", s.StatusEvent("acme", "api", head, "ci/build", "success")},
		{"merge_group", s.MergeGroupEvent("acme", "api", g, "checks_requested")},
	}
	s.CompleteCheckRun(testRepo, run, "success")
	s.RemoveLabel(testRepo, open, "x")
	s.LandMergeGroup(testRepo, g, "")
	bodies = append(bodies, []struct {
		event string
		body  []byte
	}{
		{"check_run", s.CheckRunEvent("acme", "api", run, "completed")},
		{"check_suite", s.CheckSuiteEvent("acme", "api", head, "ci", "", "completed")},
		{"check_suite", s.CheckSuiteEvent("acme", "api", head, "ci", "", "rerequested")},
		{"pull_request", s.PullRequestEvent("acme", "api", open, "unlabeled")},
		{"pull_request", s.PullRequestEvent("acme", "api", queued, "closed")},
		{"push", s.PushEvent("acme", "api", "refs/heads/main", g.BaseSHA, g.HeadSHA)},
		{"merge_group", s.MergeGroupEvent("acme", "api", g, "destroyed")},
	}...)
	for _, b := range bodies {
		if err := schemacheck.ValidateWebhook(b.event, b.body); err != nil {
			t.Errorf("%v", err)
		}
	}
}
