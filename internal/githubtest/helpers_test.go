package githubtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

const testRepo = "acme/api"

func newServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s := New(opts...)
	t.Cleanup(s.Close)
	return s
}

// rawClient speaks plain HTTP to the fake, so tests see exactly what a
// client would: status, headers and bytes.
type rawClient struct {
	t    *testing.T
	base string // ends in "/"
	auth string // full Authorization header value
}

func tokenClient(t *testing.T, s *Server) *rawClient {
	t.Helper()
	return &rawClient{t: t, base: s.URL(), auth: "token " + s.InstallationToken(s.InstallationID())}
}

func (c *rawClient) do(method, path string, body any, header ...string) (int, http.Header, []byte) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatalf("encoding request body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+strings.TrimPrefix(path, "/"), rd)
	if err != nil {
		c.t.Fatalf("building %s %s: %v", method, path, err)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, out
}

// call does a request, insists on status want, and decodes the JSON body.
func (c *rawClient) call(method, path string, body any, want int) any {
	c.t.Helper()
	status, _, out := c.do(method, path, body)
	if status != want {
		c.t.Fatalf("%s %s = %d, want %d: %s", method, path, status, want, out)
	}
	if len(out) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		c.t.Fatalf("%s %s: decoding %s: %v", method, path, out, err)
	}
	return v
}

func obj(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("want a JSON object, got %T: %v", v, v)
	}
	return m
}

func arr(t *testing.T, v any) []any {
	t.Helper()
	a, ok := v.([]any)
	if !ok {
		t.Fatalf("want a JSON array, got %T: %v", v, v)
	}
	return a
}

// ghClient is a go-github client with an installation token, the way the
// bot talks to GitHub.
func ghClient(t *testing.T, s *Server) *github.Client {
	t.Helper()
	c := github.NewClient(nil).WithAuthToken(s.InstallationToken(s.InstallationID()))
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = u
	return c
}

// seed makes a repository with one merged, approved, labelled pull request
// and returns its number and merge commit.
func seed(t *testing.T, s *Server) (int, string) {
	t.Helper()
	s.AddRepo(testRepo, RepoSpec{Files: map[string]string{
		".github/shipbot.yml": "version: 1\npipeline: api\n",
		"README.md":           "# api\n",
	}})
	n := s.OpenPullRequest(testRepo, PullRequestSpec{
		Title: "feat: add health endpoint", Author: "alice",
		Files:  map[string]string{"health.go": "package api\n"},
		Labels: []string{"no-deploy-to-prod"},
	})
	s.AddReview(testRepo, n, "bob", "APPROVED", "")
	return n, s.Merge(testRepo, n, "alice")
}

func mustParseURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
