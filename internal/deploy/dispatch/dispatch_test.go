package dispatch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/githubtest"
)

func newDispatchFixture(t *testing.T) (*githubtest.Server, *fixture) {
	t.Helper()
	srv := githubtest.New()
	t.Cleanup(srv.Close)
	sha := srv.AddRepo("acme/api", githubtest.RepoSpec{})
	srv.AddTag("acme/api", "v1.4.2", sha)
	srv.AddRepo("acme/deploy", githubtest.RepoSpec{})
	srv.AddStaticToken("ghs_test")
	f := newFixture()
	f.tr.GitHub = func(ctx context.Context, repo string) (*gh.Client, error) {
		return ghclient.NewTokenClient(ghclient.Options{BaseURL: srv.URL(), Logger: f.tr.Log}, "ghs_test")
	}
	return srv, f
}

func dispatchTarget() config.Target {
	return config.Target{
		Name: "deploy-workflow", Kind: Kind, Settings: Settings{Workflow: "deploy.yml"},
		// Secrets on a dispatch target must still never reach GitHub.
		Constraints: map[string]string{"deploy_key": testSecret},
		Repos:       []string{"acme/api"},
	}
}

func TestDispatchInputsAndNoSecrets(t *testing.T) {
	srv, f := newDispatchFixture(t)
	res, err := f.tr.Trigger(context.Background(), dispatchTarget(), testPayload())
	if err != nil {
		t.Fatalf("Trigger: %v", err)
	}
	if res.Attempts != 1 || res.EventID != "" {
		t.Errorf("Result = %+v", res)
	}
	rb := testPayload()
	rb.Rollback, rb.Attempt, rb.PullRequest = true, 2, 0
	other := dispatchTarget()
	other.Settings = Settings{Workflow: "deploy.yml", Repository: "acme/deploy", Ref: "main"}
	if _, err := f.tr.Trigger(context.Background(), other, rb); err != nil {
		t.Fatalf("Trigger to another repository: %v", err)
	}

	ds := srv.Dispatches("acme/api")
	if len(ds) != 1 {
		t.Fatalf("acme/api got %d dispatches, want 1", len(ds))
	}
	if ds[0].Workflow != "deploy.yml" || ds[0].Ref != "v1.4.2" {
		t.Errorf("dispatch %s on %s, want deploy.yml on the tag v1.4.2", ds[0].Workflow, ds[0].Ref)
	}
	want := map[string]string{
		"repository": "acme/api", "sha": testPayload().SHA, "version": "1.4.2", "tag": "v1.4.2",
		"stage": "qa", "pull_request": "123", "run_id": "run-42", "attempt": "1",
		"callback_url": testCallback, "rollback": "false",
	}
	if diff := cmp.Diff(want, ds[0].Inputs); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
	if len(ds[0].Inputs) > MaxInputs {
		t.Errorf("%d inputs, GitHub allows %d", len(ds[0].Inputs), MaxInputs)
	}

	ds = srv.Dispatches("acme/deploy")
	if len(ds) != 1 || ds[0].Ref != "main" || ds[0].Inputs["rollback"] != "true" || ds[0].Inputs["attempt"] != "2" {
		t.Fatalf("acme/deploy dispatches: %+v", ds)
	}
	if _, ok := ds[0].Inputs["pull_request"]; ok {
		t.Errorf("PR-less dispatch has pull_request: %v", ds[0].Inputs)
	}

	for _, r := range srv.Requests() {
		if strings.Contains(string(r.Body), testSecret) || strings.Contains(r.Path, testSecret) ||
			strings.Contains(r.Query.Encode(), testSecret) {
			t.Errorf("a constraint secret reached GitHub: %s %s %s", r.Method, r.Path, r.Body)
		}
		if strings.Contains(r.Header.Get("Authorization"), testSecret) {
			t.Errorf("secret in a header to GitHub")
		}
	}
}

func TestDispatchByWorkflowID(t *testing.T) {
	srv, f := newDispatchFixture(t)
	tgt := dispatchTarget()
	tgt.Settings = Settings{Workflow: "123456"}
	if _, err := f.tr.Trigger(context.Background(), tgt, testPayload()); err != nil {
		t.Fatal(err)
	}
	if ds := srv.Dispatches("acme/api"); len(ds) != 1 || ds[0].Workflow != "123456" {
		t.Errorf("dispatches: %+v", ds)
	}
}

func TestDispatchErrors(t *testing.T) {
	srv, f := newDispatchFixture(t)

	// An unknown ref is GitHub's 422: permanent.
	tgt := dispatchTarget()
	tgt.Settings = Settings{Workflow: "deploy.yml", Ref: "no-such-branch"}
	_, err := f.tr.Trigger(context.Background(), tgt, testPayload())
	var e *deploy.Error
	if !errors.As(err, &e) || !deploy.IsPermanent(err) || e.StatusCode != 422 {
		t.Fatalf("unknown ref: err = %v, want permanent 422", err)
	}
	if !strings.HasPrefix(err.Error(), "trigger stage qa via deploy-workflow: dispatch deploy.yml in acme/api on no-such-branch: 422") {
		t.Errorf("error text: %v", err)
	}

	// A 502 is not retried here (GitHub may have created the run), and is
	// not permanent either.
	srv.FailNext("POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", 502, 1)
	_, err = f.tr.Trigger(context.Background(), dispatchTarget(), testPayload())
	if err == nil || deploy.IsPermanent(err) || !errors.Is(err, deploy.ErrExhausted) {
		t.Fatalf("502: err = %v, want a non-permanent error", err)
	}
	if n := len(srv.Dispatches("acme/api")); n != 0 {
		t.Errorf("dispatches after a 502: %d", n)
	}

	// A rate limit is retried by the client stack and then succeeds.
	srv.FailNext("POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", 429, 1, "Retry-After", "0")
	if _, err := f.tr.Trigger(context.Background(), dispatchTarget(), testPayload()); err != nil {
		t.Fatalf("after a 429: %v", err)
	}

	// No client factory configured.
	f.tr.GitHub = nil
	if _, err := f.tr.Trigger(context.Background(), dispatchTarget(), testPayload()); !deploy.IsPermanent(err) {
		t.Errorf("no factory: err = %v", err)
	}
	if strings.Contains(f.logs.String(), testSecret) {
		t.Errorf("secret in logs: %s", f.logs.String())
	}
}

func TestDispatchRateLimitWithPlainClient(t *testing.T) {
	// A client without internal/github's retrying transport surfaces the
	// rate limit; it is transient and says when to come back.
	srv, f := newDispatchFixture(t)
	f.tr.GitHub = func(ctx context.Context, repo string) (*gh.Client, error) {
		c := gh.NewClient(nil).WithAuthToken("ghs_test")
		u, err := c.BaseURL.Parse(srv.URL())
		c.BaseURL = u
		return c, err
	}
	srv.FailNext("POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", 429, 1, "Retry-After", "30")
	_, err := f.tr.Trigger(context.Background(), dispatchTarget(), testPayload())
	var e *deploy.Error
	if !errors.As(err, &e) || deploy.IsPermanent(err) || e.RetryAfter != 30*time.Second {
		t.Fatalf("err = %v (%+v), want transient with RetryAfter 30s", err, e)
	}
}
