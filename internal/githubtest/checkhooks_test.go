package githubtest

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-github/v60/github"
)

// checksRepo has two open pull requests, #2 and #3, on the same head
// commit (#3's head branch was made at #2's head), a closed one (#1) on
// another, and main.
func checksRepo(t *testing.T) (s *Server, head string) {
	t.Helper()
	s = newServer(t)
	s.AddRepo(testRepo, RepoSpec{})
	closed := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "old", Author: "alice"})
	s.ClosePullRequest(testRepo, closed)
	two := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "feat: x", Author: "alice", Files: map[string]string{"x.go": "package x\n"}})
	head = s.PullRequest(testRepo, two).HeadSHA
	s.AddBranch(testRepo, "also-x", head)
	s.OpenPullRequest(testRepo, PullRequestSpec{Title: "feat: x too", Author: "bob", Head: "also-x"})
	if s.PullRequest(testRepo, 3).HeadSHA != head {
		t.Fatalf("#3 should share #2's head")
	}
	return s, head
}

func prNumbers[T interface{ GetNumber() int }](prs []T) []int {
	var out []int
	for _, p := range prs {
		out = append(out, p.GetNumber())
	}
	return out
}

func TestCheckSuiteEvent(t *testing.T) {
	s, head := checksRepo(t)
	build := s.AddCheckRun(testRepo, head, "build", "ci", "completed", "success")
	lint := s.AddCheckRun(testRepo, head, "lint", "ci", "in_progress", "")
	s.AddCheckRun(testRepo, head, "other", "other-ci", "", "failure") // another App's suite

	req := validHook(t, "check_suite", s.CheckSuiteEvent("acme", "api", head, "ci", "", "requested")).(*github.CheckSuiteEvent)
	if cs := req.GetCheckSuite(); cs.GetStatus() != "in_progress" || cs.Conclusion != nil {
		t.Errorf("suite with a run in progress: %s/%v", cs.GetStatus(), cs.GetConclusion())
	}
	mustPanic(t, "complete its runs", func() { s.CheckSuiteEvent("acme", "api", head, "ci", "", "completed") })

	s.CompleteCheckRun(testRepo, lint, "failure")
	ev := validHook(t, "check_suite", s.CheckSuiteEvent("acme", "api", head, "ci", "", "completed")).(*github.CheckSuiteEvent)
	cs := ev.GetCheckSuite()
	if ev.GetAction() != "completed" || cs.GetStatus() != "completed" || cs.GetConclusion() != "failure" ||
		cs.GetHeadSHA() != head || cs.GetAfterSHA() != head || cs.GetHeadBranch() != "also-x" ||
		cs.GetApp().GetSlug() != "ci" || cs.GetHeadCommit().GetMessage() != "feat: x" || ev.GetSender().GetLogin() != "ci[bot]" ||
		ev.GetInstallation().GetID() != s.InstallationID() || ev.GetRepo().GetFullName() != testRepo {
		t.Errorf("check_suite: %s/%s head %s branch %s app %s sender %s", cs.GetStatus(), cs.GetConclusion(), cs.GetHeadSHA(),
			cs.GetHeadBranch(), cs.GetApp().GetSlug(), ev.GetSender().GetLogin())
	}
	if got := prNumbers(cs.PullRequests); !slices.Equal(got, []int{3, 2}) {
		t.Errorf("suite pull_requests %v, want the open PRs at %s: [3 2]", got, head)
	}
	if cs.GetID() == 0 {
		t.Errorf("suite without an id")
	}
	// The suite is the one the runs name.
	var run struct {
		CheckRun struct {
			CheckSuite struct {
				ID int64 `json:"id"`
			} `json:"check_suite"`
		} `json:"check_run"`
	}
	if err := json.Unmarshal(s.CheckRunEvent("acme", "api", build, "completed"), &run); err != nil || run.CheckRun.CheckSuite.ID != cs.GetID() {
		t.Errorf("check run's suite %d, check suite %d (%v)", run.CheckRun.CheckSuite.ID, cs.GetID(), err)
	}

	// A conclusion given wins; a commit no open PR has lists none.
	main := s.BranchSHA(testRepo, "main")
	ev = validHook(t, "check_suite", s.CheckSuiteEvent("acme", "api", main, "", "success", "completed")).(*github.CheckSuiteEvent)
	if cs := ev.GetCheckSuite(); cs.GetConclusion() != "success" || len(cs.PullRequests) != 0 || cs.GetHeadBranch() != "main" ||
		cs.GetApp().GetSlug() != "ci" {
		t.Errorf("suite on main: %s prs %v branch %s", cs.GetConclusion(), prNumbers(cs.PullRequests), cs.GetHeadBranch())
	}
}

func TestCheckRunEvent(t *testing.T) {
	s, head := checksRepo(t)
	id := s.AddCheckRun(testRepo, head, "build", "ci", "in_progress", "")
	created := validHook(t, "check_run", s.CheckRunEvent("acme", "api", id, "created")).(*github.CheckRunEvent)
	if created.GetCheckRun().GetStatus() != "in_progress" {
		t.Errorf("created run %s", created.GetCheckRun().GetStatus())
	}
	mustPanic(t, "is in_progress", func() { s.CheckRunEvent("acme", "api", id, "completed") })
	mustPanic(t, "no check run", func() { s.CheckRunEvent("acme", "api", 1, "completed") })

	s.CompleteCheckRun(testRepo, id, "success")
	ev := validHook(t, "check_run", s.CheckRunEvent("acme", "api", id, "completed")).(*github.CheckRunEvent)
	cr := ev.GetCheckRun()
	if ev.GetAction() != "completed" || cr.GetID() != id || cr.GetName() != "build" || cr.GetStatus() != "completed" ||
		cr.GetConclusion() != "success" || cr.GetHeadSHA() != head || cr.GetApp().GetSlug() != "ci" ||
		cr.GetCheckSuite().GetHeadSHA() != head || cr.GetCheckSuite().GetConclusion() != "success" ||
		ev.GetSender().GetLogin() != "ci[bot]" || ev.GetRepo().GetFullName() != testRepo {
		t.Errorf("check_run: %+v", cr)
	}
	if got := prNumbers(cr.PullRequests); !slices.Equal(got, []int{3, 2}) {
		t.Errorf("run pull_requests %v, want [3 2]", got)
	}
	if got := prNumbers(cr.GetCheckSuite().PullRequests); !slices.Equal(got, []int{3, 2}) {
		t.Errorf("run's suite pull_requests %v, want [3 2]", got)
	}

	// Once #2 is merged and #3 closed, no open PR has that head.
	s.Merge(testRepo, 2, "alice")
	s.ClosePullRequest(testRepo, 3)
	ev = parse(t, "check_run", s.CheckRunEvent("acme", "api", id, "completed")).(*github.CheckRunEvent)
	if len(ev.GetCheckRun().PullRequests) != 0 {
		t.Errorf("pull_requests of closed PRs: %v", prNumbers(ev.GetCheckRun().PullRequests))
	}
}

func TestStatusEvent(t *testing.T) {
	s, head := checksRepo(t)
	s.SetStatus(testRepo, head, "ci/build", "pending")
	mustPanic(t, "no success status", func() { s.StatusEvent("acme", "api", head, "ci/build", "success") })
	s.SetStatus(testRepo, head, "ci/build", "success")
	body := s.StatusEvent("acme", "api", head, "ci/build", "success")
	ev := validHook(t, "status", body).(*github.StatusEvent)
	st := s.Statuses(testRepo, head)
	if ev.GetSHA() != head || ev.GetContext() != "ci/build" || ev.GetState() != "success" || ev.GetID() != st[1].ID ||
		ev.GetName() != testRepo || ev.GetCommit().GetSHA() != head || ev.GetSender().GetLogin() != "ci-bot" ||
		ev.GetInstallation().GetID() != s.InstallationID() || ev.GetRepo().GetFullName() != testRepo {
		t.Errorf("status: sha %s context %s state %s id %d sender %s", ev.GetSHA(), ev.GetContext(), ev.GetState(), ev.GetID(), ev.GetSender().GetLogin())
	}
	var names []string
	for _, b := range ev.Branches {
		names = append(names, b.GetName())
	}
	if !slices.Equal(names, []string{"also-x", "change-2"}) {
		t.Errorf("status branches %v, want the two that contain %s", names, head)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["pull_requests"]; ok {
		t.Errorf("a status payload carries no pull_requests")
	}
}
