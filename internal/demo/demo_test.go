package demo_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/demo"
	"github.com/shipbot/shipbot/internal/syncbuf"
)

func TestDemoPlaysTheStories(t *testing.T) {
	var out, logs syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, &out, demo.Options{Dir: t.TempDir(), Hold: true, Log: &logs,
			// Shorter than a person's pace; v0.1.2 still holds qa for half a
			// second, within which v0.1.3 is released and shown waiting.
			Deploy: 100 * time.Millisecond, Bake: 400 * time.Millisecond})
	}()
	// Held: the links the demo shows must open while it holds.
	// "audit log" is the last line the demo prints before it holds.
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(out.String(), "  audit log: "); {
		select {
		case err := <-done:
			t.Fatalf("demo ended before holding: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo did not finish its stories:\n%s", out.String())
		}
	}
	got := out.String()
	checkLinks(t, got)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v\n%s", err, got)
	}

	for _, want := range []string{
		"A merge would release v0.1.0",
		"(edited once, still one check run)",
		"[v0.1.0] qa   triggered: v0.1.0 via spinnaker-qa, attempt 1",
		"[v0.1.0] prod passed",
		"v0.1.0: deployed (success)",
		"[v0.1.1] prod skipped: label no-deploy-to-prod",
		"v0.1.1: deployed (1 stage skipped by label) (success)",
		"Refused by the merge gate: nothing released (action_required)",
		"waiting: qa is deploying v0.1.2",
		"v0.1.3: deployed (success)",
		"has 1 comment (shipbot's sticky one, edited",
		"has 3 comments (shipbot's sticky one, edited",
		"reactions on the command: eyes +1",
		"shipbot replies: v0.1.1 will deploy to prod",
		"[v0.1.1] prod passed",
		"demo finished",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	for _, bad := range []string{" 1 times", "time(s)", "comment(s)"} {
		if strings.Contains(got, bad) {
			t.Errorf("demo output says %q", bad)
		}
	}
	// Serialization: v0.1.3 enters qa only after v0.1.2 passed it.
	if i, j := strings.Index(got, "[v0.1.2] qa   passed"), strings.Index(got, "[v0.1.3] qa   entered"); i < 0 || j < 0 || j < i {
		t.Errorf("v0.1.3 entered qa before v0.1.2 passed it")
	}
	if strings.Contains(got, "demo-constraint-secret") || strings.Contains(logs.String(), "demo-constraint-secret") {
		t.Error("the constraint secret appears in the output")
	}
	// Durations in the logs read as durations, to the millisecond at most.
	if m := regexp.MustCompile(`=\d+\.\d{4,}m?s\b|=\d{7,}\b`).FindString(logs.String()); m != "" {
		t.Errorf("the logs show a duration as %q", m)
	}
	if t.Failed() {
		t.Log(got)
	}
}

// checkLinks opens, as a browser would, the pages a newcomer clicks: the
// simulated GitHub's pull request and release pages (which the dashboard
// links to) and the Spinnaker executions in the rollout tables.
func checkLinks(t *testing.T, out string) {
	t.Helper()
	gh := regexp.MustCompile(`simulated GitHub: (http://\S+)`).FindStringSubmatch(out)
	dash := regexp.MustCompile(`dashboard: +(http://\S+)`).FindStringSubmatch(out)
	exec := regexp.MustCompile(`\[execution\]\((http://[^)]+)\)`).FindStringSubmatch(out)
	where := regexp.MustCompile(`what runs where: +(http://\S+)`).FindStringSubmatch(out)
	audit := regexp.MustCompile(`audit log: +(http://\S+)`).FindStringSubmatch(out)
	if gh == nil || dash == nil || exec == nil || where == nil || audit == nil {
		t.Fatalf("the output lacks the simulated GitHub, dashboard or execution links:\n%s", out)
	}
	for _, tc := range []struct{ url, want string }{
		{gh[1], "feat: add /healthz endpoint"},
		{gh[1] + "/pull/1", "v0.1.0: deployed"},
		{gh[1] + "/pull/2", "/shipbot deploy prod"},
		{gh[1] + "/releases/tag/v0.1.0", "v0.1.0"},
		{exec[1], "succeeded"},
		{dash[1], "acme/api"},
		// The API serves the facts the dashboard shows: the demo's last
		// version live in both stages, and who sent the skipped fix to prod.
		{where[1], `{"name":"qa","live":{"version":"0.1.3"`},
		{where[1], `{"name":"prod","live":{"version":"0.1.3"`},
		{audit[1] + "?limit=500", `"stage":"prod","kind":"command.deploy","actor":"carol","detail":"/shipbot deploy prod (label no-deploy-to-prod skipped it)"`},
	} {
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("GET %s: %v", tc.url, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s = %d; want a page with %q:\n%.2000s", tc.url, resp.StatusCode, tc.want, body)
		}
	}
}
