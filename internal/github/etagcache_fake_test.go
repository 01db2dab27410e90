package github

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/githubtest/schemacheck"
)

const (
	contentsClass   = "GET /repos/{owner}/{repo}/contents/{path}"
	protectionClass = "GET /repos/{owner}/{repo}/branches/{branch}/protection"
)

// The fake GitHub sends ETags and answers If-None-Match with 304 (without
// charging rate limit), so the cache can be driven through real clients:
// installation clients on github.com and GHES base URLs, and a token
// client as in Action mode.
func TestETagCacheAgainstFakeGitHub(t *testing.T) {
	type setup func(t *testing.T, srv *githubtest.Server, calls *CallCounter) *gh.Client
	installation := func(ghes bool) setup {
		return func(t *testing.T, srv *githubtest.Server, calls *CallCounter) *gh.Client {
			base := srv.URL()
			if ghes {
				base = srv.GHESURL()
			}
			apps, err := NewApps(Options{BaseURL: base, AppID: srv.AppID(), PrivateKey: srv.PrivateKeyPEM(), Calls: calls, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			c, err := apps.Installation(srv.InstallationID())
			if err != nil {
				t.Fatal(err)
			}
			// The App's own (JWT) client is not cached: nothing it reads
			// twice is sent conditionally.
			for range 2 {
				if _, _, err := apps.App().Apps.Get(context.Background(), ""); err != nil {
					t.Fatal(err)
				}
			}
			return c
		}
	}
	tests := []struct {
		name   string
		client setup
		token  bool // an installation token is fetched
	}{
		{"installation", installation(false), true},
		{"installation on GHES", installation(true), true},
		{"Action token", func(t *testing.T, srv *githubtest.Server, calls *CallCounter) *gh.Client {
			srv.AddStaticToken("ghs_workflow")
			c, err := NewTokenClient(Options{BaseURL: srv.URL(), Calls: calls, Logger: quietLogger()}, "ghs_workflow")
			if err != nil {
				t.Fatal(err)
			}
			return c
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := githubtest.New(githubtest.WithSchemaCheck(schemacheck.ValidateResponse))
			defer srv.Close()
			srv.AddRepo("acme/api", githubtest.RepoSpec{Files: map[string]string{".github/shipbot.yml": "version: 1\n"}})
			srv.SetBranchProtection("acme/api", "main", githubtest.BranchProtection{RequiredApprovingReviewCount: 1})
			calls := &CallCounter{}
			c := tt.client(t, srv, calls)
			ctx := context.Background()

			readConfig := func() (string, *gh.Response) {
				fc, _, resp, err := c.Repositories.GetContents(ctx, "acme", "api", ".github/shipbot.yml", &gh.RepositoryContentGetOptions{Ref: "main"})
				if err != nil {
					t.Fatalf("contents: %v", err)
				}
				s, err := fc.GetContent()
				if err != nil {
					t.Fatal(err)
				}
				return s, resp
			}
			readProtection := func() int {
				p, _, err := c.Repositories.GetBranchProtection(ctx, "acme", "api", "main")
				if err != nil {
					t.Fatalf("protection: %v", err)
				}
				return p.GetRequiredPullRequestReviews().RequiredApprovingReviewCount
			}

			cfg1, resp1 := readConfig()
			cfg2, resp2 := readConfig()
			if cfg1 != "version: 1\n" || cfg2 != cfg1 {
				t.Errorf("config reads %q, %q", cfg1, cfg2)
			}
			if resp2.StatusCode != 200 || resp2.Rate.Remaining != resp1.Rate.Remaining {
				t.Errorf("second read: status %d, rate remaining %d after %d; want 200 and a free 304", resp2.StatusCode, resp2.Rate.Remaining, resp1.Rate.Remaining)
			}
			if n := readProtection(); n != 1 {
				t.Errorf("required reviews %d", n)
			}
			if n := readProtection(); n != 1 {
				t.Errorf("required reviews %d (revalidated)", n)
			}
			// A change on GitHub is seen at once: no read is answered from
			// memory without asking.
			srv.SetBranchProtection("acme/api", "main", githubtest.BranchProtection{RequiredApprovingReviewCount: 2})
			if n := readProtection(); n != 2 {
				t.Errorf("required reviews %d after the change, want 2", n)
			}
			if n := readProtection(); n != 2 {
				t.Errorf("required reviews %d (revalidated after the change)", n)
			}

			got := map[string][]string{}
			for _, r := range srv.Requests() {
				got[r.Pattern] = append(got[r.Pattern], fmt.Sprintf("%d:%t", r.Status, r.Header.Get("If-None-Match") != ""))
			}
			want := map[string][]string{
				contentsClass:   {"200:false", "304:true"},
				protectionClass: {"200:false", "304:true", "200:true", "304:true"},
			}
			if tt.token {
				want["GET /app"] = []string{"200:false", "200:false"}
				want[tokenClass] = []string{"201:false"}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("fake saw\n%v\nwant\n%v", got, want)
			}
			if calls.Count(contentsClass) != 2 || calls.Count(protectionClass) != 4 {
				t.Errorf("calls %v", calls.Snapshot())
			}
			if tt.token && calls.Count(tokenClass) != 1 {
				t.Errorf("token calls %d", calls.Count(tokenClass))
			}
			if v := srv.SchemaViolations(); len(v) > 0 {
				t.Errorf("schema violations: %v", v)
			}
		})
	}
}

// Two installations share the Apps' cache but never each other's entries.
func TestETagCacheInstallationsSeparate(t *testing.T) {
	srv := githubtest.New()
	defer srv.Close()
	other := srv.AddInstallation("beta")
	srv.AddRepo("acme/api", githubtest.RepoSpec{})
	srv.AddRepo("beta/api", githubtest.RepoSpec{InstallationID: other})
	apps, err := NewApps(Options{BaseURL: srv.URL(), AppID: srv.AppID(), PrivateKey: srv.PrivateKeyPEM(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 {
		for _, inst := range []struct {
			id    int64
			owner string
		}{{srv.InstallationID(), "acme"}, {other, "beta"}} {
			c, _ := apps.Installation(inst.id)
			r, _, err := c.Repositories.Get(ctx, inst.owner, "api")
			if err != nil || r.GetFullName() != inst.owner+"/api" {
				t.Fatalf("%s/api: %v, %v", inst.owner, r.GetFullName(), err)
			}
		}
	}
	var got []string
	for _, r := range srv.Requests() {
		if r.Method == http.MethodGet {
			got = append(got, fmt.Sprintf("%s:%d", r.Path, r.Status))
		}
	}
	if want := "[/repos/acme/api:200 /repos/beta/api:200 /repos/acme/api:304 /repos/beta/api:304]"; fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
	_, n, _ := apps.cached.(*etagCache).snapshot()
	if n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
}
