package servicetest

import (
	"log/slog"
	"testing"

	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/githubtest"
)

// NewGitHub starts a GitHub fake with opts. At tb's cleanup it reports
// every answer the fake gave outside GitHub's schema (there are none to
// report without githubtest.WithSchemaCheck(schemacheck.ValidateResponse))
// and closes the fake. Start it before the services that talk to it, so
// that they stop first.
func NewGitHub(tb testing.TB, opts ...githubtest.Option) *githubtest.Server {
	tb.Helper()
	gh := githubtest.New(opts...)
	tb.Cleanup(func() {
		for _, v := range gh.SchemaViolations() {
			tb.Errorf("the fake answered outside GitHub's schema: %s", v)
		}
		gh.Close()
	})
	return gh
}

// SeedRepo adds repository repo holding files to the fake, as the
// integration tests know it: alice and bob are collaborators with write
// access, and main is protected, requiring one approving review and the
// ci/test status.
func SeedRepo(gh *githubtest.Server, repo string, files map[string]string) {
	gh.AddRepo(repo, githubtest.RepoSpec{Files: files})
	gh.SetPermission(repo, "alice", "write")
	gh.SetPermission(repo, "bob", "write")
	gh.SetBranchProtection(repo, "main", githubtest.BranchProtection{
		RequiredApprovingReviewCount: 1, RequiredStatusChecks: []string{"ci/test"},
	})
}

// Apps is the fake's GitHub App as a client sees it: o with the App's id
// and private key filled in, BaseURL defaulting to the fake's REST base
// and Logger to one that discards.
func Apps(tb testing.TB, gh *githubtest.Server, o ghclient.Options) *ghclient.Apps {
	tb.Helper()
	if o.BaseURL == "" {
		o.BaseURL = gh.URL()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.AppID, o.PrivateKey = gh.AppID(), gh.PrivateKeyPEM()
	apps, err := ghclient.NewApps(o)
	if err != nil {
		tb.Fatal(err)
	}
	return apps
}
