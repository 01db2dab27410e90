package githubtest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// browse GETs url as a browser would.
func browse(t *testing.T, url string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// The html_url links the fake hands out, which the dashboard and check run
// tables show, open a page in a browser instead of a JSON 404.
func TestHTMLURLsOpenPagesInABrowser(t *testing.T) {
	s := newServer(t)
	s.AddRepo(testRepo, RepoSpec{})
	pr := s.OpenPullRequest(testRepo, PullRequestSpec{Title: "feat: <script>alert(1)</script>", Author: "alice", Labels: []string{"no-deploy-to-prod"}})
	merge := s.Merge(testRepo, pr, "bob")
	c := tokenClient(t, s)
	comment := c.call("POST", "repos/acme/api/issues/1/comments", map[string]any{
		"body": "<!-- sticky marker -->\n### shipbot\n| stage | state | link |\n|---|---|---|\n| qa | succeeded | [execution](https://spinnaker.example/pipelines/1) |\n| prod | a \\| b | |\n",
	}, 201).(map[string]any)
	release := c.call("POST", "repos/acme/api/releases", map[string]any{"tag_name": "v1.0.0", "target_commitish": merge, "name": "v1.0.0", "body": "notes for **v1.0.0**"}, 201).(map[string]any)
	check := c.call("POST", "repos/acme/api/check-runs", map[string]any{"name": "shipbot/rollout", "head_sha": merge, "status": "completed", "conclusion": "success",
		"output": map[string]any{"title": "v1.0.0: deployed", "summary": "| stage | state |\n|---|---|\n| qa | succeeded |"}}, 201).(map[string]any)
	api := s.Count("*")

	prURL := strings.Split(comment["html_url"].(string), "#")[0]
	for _, tc := range []struct {
		url  string
		want []string
	}{
		{s.WebURL(), []string{`href="` + s.WebURL() + `acme/api"`}},
		{s.WebURL() + "acme/api", []string{"#1 feat: &lt;script&gt;", "v1.0.0"}},
		{prURL, []string{
			"feat: &lt;script&gt;alert(1)&lt;/script&gt;", "no-deploy-to-prod", "merged",
			`<td><a href="https://spinnaker.example/pipelines/1">execution</a></td>`, "<td>a | b</td>",
			"shipbot/rollout", "v1.0.0: deployed", `href="` + release["html_url"].(string) + `"`,
			`id="issuecomment-` + strings.Split(comment["html_url"].(string), "#issuecomment-")[1] + `"`,
		}},
		{release["html_url"].(string), []string{"notes for <b>v1.0.0</b>"}},
		{s.WebURL() + "acme/api/commit/" + merge, []string{"Merge pull request #1", "shipbot/rollout"}},
		{check["html_url"].(string), []string{"v1.0.0: deployed", "<td>succeeded</td>", "updated 0×"}},
	} {
		status, ctype, body := browse(t, tc.url)
		if status != 200 || !strings.HasPrefix(ctype, "text/html") {
			t.Errorf("GET %s = %d %s; want a 200 page", tc.url, status, ctype)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s: page lacks %q:\n%s", tc.url, want, body)
			}
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "sticky marker") || strings.Contains(body, "%!") {
			t.Errorf("GET %s: page shows raw HTML or a hidden comment:\n%s", tc.url, body)
		}
	}
	if status, _, _ := browse(t, s.WebURL()+"acme/api/pull/99"); status != 404 {
		t.Errorf("a pull request that does not exist: %d, want 404", status)
	}
	if n := s.Count("*"); n != api {
		t.Errorf("browsing recorded %d API requests; pages are not API calls", n-api)
	}
	// An API client that asks for a page path still gets GitHub's JSON 404.
	if status, hdr, _ := c.do("GET", "acme/api/pull/1", nil); status != 404 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Errorf("API GET of a web path = %d %s; want a JSON 404", status, hdr.Get("Content-Type"))
	}
}
