package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/dashboard"
	"github.com/shipbot/shipbot/internal/facts"
	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
)

const repoConfig = `version: 1
pipeline: api
stages:
  - name: qa
    target: spinnaker-qa
    bake: 1s
  - name: prod
    target: spinnaker-prod
    rollback: true
  - name: canary
    target: spinnaker-prod
`

// fixture is a store holding, for pipeline acme/api:api (frozen):
//   - v1.0.0 (PR #7): qa deployed and baked, prod failed and was rolled
//     back, canary skipped by label;
//   - v1.1.0 (PR #8): deploying to qa right now.
type fixture struct {
	st      *store.SQLite
	done    store.Run // v1.0.0
	running store.Run // v1.1.0
	refused store.Run // PR #9, refused by the gate
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	st := servicetest.OpenStore(t, servicetest.DBPath(t))
	t.Cleanup(func() { st.Close() })
	release := func(sha string, pr int, title, version string) store.Run {
		t.Helper()
		prFacts, _ := json.Marshal(facts.PR{Number: pr, Title: title, URL: "https://github.example/acme/api/pull/" + sha})
		r, _, err := st.CreateRun(ctx, store.Run{Repo: "acme/api", SHA: sha, Installation: 1, Branch: "main", Source: "push", PR: pr, PRFacts: prFacts})
		if err != nil {
			t.Fatal(err)
		}
		r.State, r.Pipeline, r.Version, r.Tag = store.RunReleased, "api", version, "v"+version
		r.ReleaseURL = "https://github.example/acme/api/releases/tag/v" + version
		if err := st.UpdateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.StartRollout(ctx, r.ID, "acme/api:api", r.Release(), []byte(repoConfig), nil, []string{"qa", "prod", "canary"}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	step := func() { time.Sleep(15 * time.Millisecond) } // distinct timestamps
	enter := func(e store.Execution) store.Execution {
		t.Helper()
		e.Phase, e.TokenHash, e.Deadline = store.PhaseDeploying, "hash-"+e.ID, time.Now().Add(time.Hour)
		if err := st.EnterStage(ctx, e); err != nil {
			t.Fatal(err)
		}
		step()
		return e
	}
	finish := func(e store.Execution, outcome rollout.Outcome, reason string, stageState schedule.StageState) {
		t.Helper()
		e.Outcome, e.Reason, e.URL = outcome, reason, "https://spinnaker.example/pipelines/"+e.ID
		if err := st.FinishExecution(ctx, e, stageState); err != nil {
			t.Fatal(err)
		}
		step()
	}

	done := release("aaaaaaa1", 7, `feat: <script>alert("x")</script> cache`, "1.0.0")
	step()
	qa := enter(store.Execution{ID: "qa1", RolloutID: done.ID, Stage: 0, StageName: "qa", Attempt: 1, Version: "1.0.0", Tag: "v1.0.0"})
	qa.Phase, qa.Outcome, qa.BakeUntil = store.PhaseBaking, "", time.Now().Add(time.Second)
	if err := st.UpdateExecution(ctx, qa); err != nil {
		t.Fatal(err)
	}
	step()
	finish(qa, rollout.Succeeded, "", schedule.Passed)
	prod := enter(store.Execution{ID: "prod1", RolloutID: done.ID, Stage: 1, StageName: "prod", Attempt: 1, Version: "1.0.0", Tag: "v1.0.0"})
	finish(prod, rollout.Failed, "Spinnaker execution TERMINAL", schedule.Active) // its rollback follows
	rb := enter(store.Execution{ID: "prod2", RolloutID: done.ID, Stage: 1, StageName: "prod", Attempt: 2, Rollback: true, Version: "0.9.0", Tag: "v0.9.0"})
	finish(rb, rollout.Succeeded, "", schedule.RolledBack)
	if err := st.SetStageState(ctx, done.ID, 2, schedule.Skipped); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishRollout(ctx, done.ID); err != nil {
		t.Fatal(err)
	}

	running := release("bbbbbbb2", 8, "fix: retry on 503", "1.1.0")
	step()
	enter(store.Execution{ID: "qa2", RolloutID: running.ID, Stage: 0, StageName: "qa", Attempt: 1, Version: "1.1.0", Tag: "v1.1.0"})
	if err := st.SetWait(ctx, running.ID, 1, rollout.Wait{Kind: schedule.Window, Until: time.Date(2030, 1, 7, 10, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	if err := st.Freeze(ctx, "acme/api:api", "<b>incident</b> 42", "alice"); err != nil {
		t.Fatal(err)
	}
	refused, _, err := st.CreateRun(ctx, store.Run{Repo: "acme/api", SHA: "ccccccc3", Installation: 1, Branch: "main", Source: "push", PR: 9})
	if err != nil {
		t.Fatal(err)
	}
	refused.State = store.RunRefused
	refused.Summary = []byte(`{"kind":"refused","reasons":["needs 1 approval by someone other than the author, has 0"]}`)
	if err := st.UpdateRun(ctx, refused, store.Event{Kind: store.KindMergeRefused,
		Detail: `needs 1 approval <img src=x onerror="alert(1)">`}); err != nil {
		t.Fatal(err)
	}
	return fixture{st: st, done: done, running: running, refused: refused}
}

func serve(d *dashboard.Dashboard, r *http.Request) *httptest.ResponseRecorder {
	e := echo.New()
	d.Register(e)
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	return w
}

func get(t *testing.T, d *dashboard.Dashboard, path string, mod ...func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for _, m := range mod {
		m(r)
	}
	return serve(d, r)
}

func mustContain(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func TestIndexShowsPipelinesAndRuns(t *testing.T) {
	f := newFixture(t)
	d := &dashboard.Dashboard{Store: f.st}
	w := get(t, d, "/")
	if w.Code != http.StatusOK {
		t.Fatalf("GET / = %d\n%s", w.Code, w.Body)
	}
	body := w.Body.String()
	mustContain(t, body,
		`data-live-since="`, `<script src="/dashboard.js" defer></script>`,
		`data-pipeline="acme/api:api"`,
		`frozen: &lt;b&gt;incident&lt;/b&gt; 42`, "Frozen by alice since",
		// qa runs v1.0.0 and deploys v1.1.0 now; prod runs v0.9.0, which its
		// rollback restored, and v1.1.0 waits for its window; canary has
		// never run anything.
		`<a class="live-version" href="/runs/`+f.done.ID+`">v1.0.0</a>`,
		`<span class="chip env-deploying">deploying</span> <a href="/runs/`+f.running.ID+`">v1.1.0</a>`,
		"deploying v1.1.0: waiting for the deploy system&#39;s report",
		`>v0.9.0</a>`, `rolled back from v1.0.0`,
		`<span class="chip env-waiting">waiting</span>`,
		`v1.1.0 waiting for the deploy window, opens Mon 2030-01-07 10:00 UTC`,
		"nothing deployed here yet; pipeline frozen: &lt;b&gt;incident&lt;/b&gt; 42",
		`<time datetime="`,
		`data-run="`+f.done.ID+`"`, `data-run="`+f.running.ID+`"`,
		`href="/runs/`+f.done.ID+`"`,
		`href="https://github.example/acme/api/pull/aaaaaaa1"`,
		`href="https://github.example/acme/api/releases/tag/v1.0.0"`,
		`>v1.0.0</a>`,
		`prod rolled-back`, `canary skipped`,
		`feat: &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; cache`,
	)
	if strings.Contains(body, "<script>") || strings.Contains(body, "<b>incident") {
		t.Error("the page prints unescaped input")
	}
	if n := strings.Count(body, `<tr class="stage-now"`); n != 3 {
		t.Errorf("pipeline shows %d stages; want 3", n)
	}
	if n := strings.Count(body, `data-state="idle"`); n != 1 {
		t.Errorf("%d idle stages; want 1 (canary)", n)
	}
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("the page reloads itself")
	}
	// One script of its own, nothing inline, nothing evaluated.
	if got := w.Header().Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'none'") ||
		!strings.Contains(got, "script-src 'self';") || strings.Contains(got, "unsafe-eval") || strings.Count(got, "unsafe-inline") != 1 ||
		!strings.Contains(got, "style-src 'unsafe-inline'") {
		t.Errorf("Content-Security-Policy = %q", got)
	}
	js := get(t, d, "/dashboard.js")
	if ct := js.Header().Get("Content-Type"); js.Code != http.StatusOK || !strings.HasPrefix(ct, "text/javascript") || !strings.Contains(js.Body.String(), "EventSource") {
		t.Errorf("GET /dashboard.js = %d %s", js.Code, ct)
	}
}

var (
	rowRE = regexp.MustCompile(`<g class="tl-row" data-stage="([^"]+)"`)
	barRE = regexp.MustCompile(`<rect class="bar ([a-z]+)"`)
)

func TestRunPageShowsHeaderTimelineAndExecutions(t *testing.T) {
	f := newFixture(t)
	d := &dashboard.Dashboard{Store: f.st}
	if err := f.st.AddAPICalls(context.Background(), f.done.ID, 17); err != nil {
		t.Fatal(err)
	}
	w := get(t, d, "/runs/"+f.done.ID)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /runs/%s = %d\n%s", f.done.ID, w.Code, w.Body)
	}
	body := w.Body.String()
	mustContain(t, body,
		"acme/api", `href="https://github.example/acme/api/pull/aaaaaaa1"`, "#7",
		"1.0.0", "(tag <code>v1.0.0</code>)", `href="https://github.example/acme/api/releases/tag/v1.0.0"`,
		`<span class="chip st-released">released</span>`, `<span class="chip st-done">done</span>`,
		"pipeline acme/api:api is frozen: &lt;b&gt;incident&lt;/b&gt; 42",
		`<svg id="timeline"`, "Spinnaker execution TERMINAL", `href="https://spinnaker.example/pipelines/prod1"`,
		`<span class="chip rb">rollback</span>`, `<dd id="api-calls">17</dd>`,
	)
	// A finished run does not reload itself.
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("a finished run's page reloads itself")
	}
	var rows []string
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		rows = append(rows, m[1])
	}
	if strings.Join(rows, ",") != "qa,prod,canary" {
		t.Errorf("timeline rows = %v; want one per stage: qa, prod, canary", rows)
	}
	kinds := map[string]int{}
	for _, m := range barRE.FindAllStringSubmatch(body, -1) {
		kinds[m[1]]++
	}
	for kind, want := range map[string]int{"waiting": 2, "deploying": 1, "baking": 1, "failed": 1, "rollback": 1} {
		if kinds[kind] != want {
			t.Errorf("%d %s bar(s); want %d (all: %v)", kinds[kind], kind, want, kinds)
		}
	}
	if n := strings.Count(body, `<tr class="execution"`); n != 3 {
		t.Errorf("%d execution rows; want 3", n)
	}
	// Nothing secret: no callback URL, no token hash.
	for _, bad := range []string{"callbacks", "hash-qa1", "hash-prod1"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page shows %q", bad)
		}
	}

	// Its event log, oldest first, with what happened at each stage.
	mustContain(t, body, `<tr class="event" data-kind="merge.recorded">`, `<tr class="event" data-kind="stage.entered" data-stage="qa">`,
		`<tr class="event" data-kind="stage.rolling_back" data-stage="prod">`, "to v0.9.0")
	if strings.Index(body, `data-kind="merge.recorded"`) > strings.Index(body, `data-kind="stage.rolling_back"`) {
		t.Error("the event log is not oldest first")
	}
	// The live run updates live and draws "now".
	live := get(t, d, "/runs/"+f.running.ID).Body.String()
	mustContain(t, live, `data-live-since="`, `<line class="now"`, "so far")
}

func TestRefusedRunPage(t *testing.T) {
	f := newFixture(t)
	d := &dashboard.Dashboard{Store: f.st, GitHubURL: "https://ghe.example"}
	index := get(t, d, "/").Body.String()
	mustContain(t, index, `data-run="`+f.refused.ID+`"`, `<span class="chip st-refused">refused</span>`)
	w := get(t, d, "/runs/"+f.refused.ID)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /runs/%s = %d", f.refused.ID, w.Code)
	}
	if strings.Contains(w.Body.String(), "<img") {
		t.Error("the event log prints a refusal's detail unescaped")
	}
	mustContain(t, w.Body.String(),
		`<tr class="event" data-kind="merge.refused">`, `needs 1 approval &lt;img src=x onerror=&#34;alert(1)&#34;&gt;`,
		`<li class="reason">needs 1 approval by someone other than the author, has 0</li>`,
		"This run has no stages", "No stage has started for this run.",
		// No PR facts and no release: the PR link uses the configured server.
		`href="https://ghe.example/acme/api/pull/9"`)
	if strings.Contains(w.Body.String(), `<svg`) {
		t.Error("a run without stages draws a timeline")
	}
}

func TestUnknownRunIs404(t *testing.T) {
	d := &dashboard.Dashboard{Store: newFixture(t).st}
	w := get(t, d, "/runs/nope")
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "No such run") {
		t.Fatalf("GET /runs/nope = %d\n%s", w.Code, w.Body)
	}
}

func TestEmptyDashboard(t *testing.T) {
	st := servicetest.OpenStore(t, filepath.Join(t.TempDir(), "shipbot.db"))
	defer st.Close()
	w := get(t, &dashboard.Dashboard{Store: st, Refresh: -1}, "/")
	if w.Code != http.StatusOK {
		t.Fatalf("GET / = %d\n%s", w.Code, w.Body)
	}
	mustContain(t, w.Body.String(), "No pipeline has rolled anything out yet.", "No merges yet.")
	if strings.Contains(w.Body.String(), "Failed deliveries") {
		t.Error("an empty dashboard lists failed deliveries")
	}
	if strings.Contains(w.Body.String(), "data-live-since") {
		t.Error("Refresh < 0 still updates live")
	}
}

func TestToken(t *testing.T) {
	f := newFixture(t)
	const token = "s3cret-dashboard-token"
	d := &dashboard.Dashboard{Store: f.st, Token: token}
	bearer := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+v) }
	}
	runPath := "/runs/" + f.done.ID

	for _, tc := range []struct {
		name string
		path string
		mod  []func(*http.Request)
	}{
		{"no credentials", "/", nil},
		{"no credentials, run page", runPath, nil},
		{"no credentials, live updates", "/live", nil},
		{"wrong bearer", "/", []func(*http.Request){bearer("nope")}},
		{"basic instead of bearer", "/", []func(*http.Request){func(r *http.Request) { r.SetBasicAuth("x", token) }}},
		{"wrong query token", "/?token=nope", nil},
		{"token as cookie value", "/", []func(*http.Request){func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: dashboard.CookieName, Value: token})
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := get(t, d, tc.path, tc.mod...)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("= %d; want 401", w.Code)
			}
			if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
			if body := w.Body.String(); strings.Contains(body, "acme/api") || !strings.Contains(body, "Token required") {
				t.Errorf("401 page:\n%s", body)
			}
			if w.Header().Get("Set-Cookie") != "" {
				t.Error("a refused request got a cookie")
			}
		})
	}

	if w := get(t, d, runPath, bearer(token)); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `<svg id="timeline"`) {
		t.Fatalf("bearer token: %d", w.Code)
	}
	w := get(t, d, "/?token="+token)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "acme/api:api") {
		t.Fatalf("?token=: %d", w.Code)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("?token= set %d cookies; want 1", len(cookies))
	}
	c := cookies[0]
	if c.Name != dashboard.CookieName || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Errorf("cookie = %+v; want HttpOnly, SameSite=Strict, Path=/", c)
	}
	if strings.Contains(c.Value, token) {
		t.Error("the cookie holds the token itself")
	}
	// The cookie alone opens the links.
	w = get(t, d, runPath, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value}) })
	if w.Code != http.StatusOK {
		t.Fatalf("with the cookie: %d", w.Code)
	}
	// Another token invalidates the cookie.
	d2 := &dashboard.Dashboard{Store: f.st, Token: "rotated"}
	if w := get(t, d2, runPath, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value}) }); w.Code != http.StatusUnauthorized {
		t.Errorf("a cookie of the old token: %d; want 401", w.Code)
	}
	// Behind TLS the cookie is Secure.
	w = get(t, d, "/?token="+token, func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") })
	if cs := w.Result().Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Errorf("cookie behind https = %+v; want Secure", cs)
	}
}

func TestIndexListsFailedDeliveries(t *testing.T) {
	// Issue 10: a merge whose delivery failed (GitHub unreachable) left the
	// dashboard at "No merges yet", as if nothing had happened.
	ctx := context.Background()
	st := servicetest.OpenStore(t, filepath.Join(t.TempDir(), "shipbot.db"))
	defer st.Close()
	for _, id := range []string{"7a1c0e10-merge", "7a1c0e11-done"} {
		if _, err := st.SaveDelivery(ctx, store.Delivery{ID: id, Event: "pull_request", Action: "closed", Repo: "acme/api", Payload: []byte(`{}`), Status: store.StatusPending}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		if _, err := st.ClaimDeliveries(ctx, "w", -time.Millisecond, 10, store.EventFilter{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.FinishDelivery(ctx, "7a1c0e10-merge", store.StatusFailed,
		`GET https://api.github.com/repos/acme/api/pulls/7: dial tcp: connection refused <script>alert(1)</script>`, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishDelivery(ctx, "7a1c0e11-done", store.StatusDone, "", time.Time{}); err != nil {
		t.Fatal(err)
	}

	w := get(t, &dashboard.Dashboard{Store: st}, "/")
	if w.Code != http.StatusOK {
		t.Fatalf("GET / = %d\n%s", w.Code, w.Body)
	}
	body := w.Body.String()
	mustContain(t, body,
		`<h2>Failed deliveries</h2>`,
		`data-delivery="7a1c0e10-merge"`,
		`<td>pull_request.closed</td>`,
		`<td>acme/api</td>`,
		`<td class="mono">7a1c0e10-merge</td>`,
		`<td>5</td>`,
		`dial tcp: connection refused &lt;script&gt;alert(1)&lt;/script&gt;`,
		"No merges yet.",
	)
	if strings.Contains(body, "<script>") {
		t.Error("the page prints the error unescaped")
	}
	if strings.Contains(body, "7a1c0e11-done") {
		t.Error("the page lists a delivery that was processed")
	}
}

// The live updates say "change" as soon as something is recorded, from the
// mark the page was read at: a change between the page and the stream is
// not missed, and nothing is said while nothing changes.
func TestLiveStreamSaysChange(t *testing.T) {
	f := newFixture(t)
	d := &dashboard.Dashboard{Store: f.st, Refresh: 10 * time.Millisecond}
	e := echo.New()
	d.Register(e)
	srv := httptest.NewServer(e)
	defer srv.Close()
	mark, err := f.st.LatestEvent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func(since int64) (*bufio.Reader, func()) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/live?since=%d", srv.URL, since), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
			t.Fatalf("GET /live = %d %s", resp.StatusCode, ct)
		}
		return bufio.NewReader(resp.Body), func() { resp.Body.Close() }
	}
	next := func(r *bufio.Reader) string {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read the stream: %v", err)
			}
			if strings.HasPrefix(line, "event: ") {
				return strings.TrimSpace(strings.TrimPrefix(line, "event: "))
			}
		}
	}

	// A page read before the last change: told at once.
	stale, closeStale := open(mark - 1)
	defer closeStale()
	if ev := next(stale); ev != "change" {
		t.Fatalf("first event for a stale page = %q; want change", ev)
	}
	// An up-to-date page: told when the next change is recorded.
	fresh, closeFresh := open(mark)
	defer closeFresh()
	got := make(chan string, 1)
	go func() { got <- next(fresh) }()
	select {
	case ev := <-got:
		t.Fatalf("told %q before anything changed", ev)
	case <-time.After(100 * time.Millisecond):
	}
	if err := f.st.Freeze(context.Background(), "acme/api:api", "release train", "bob"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev != "change" {
			t.Fatalf("event = %q; want change", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change event within 5s of a freeze")
	}
}

// Runs page by page, newest first, and by repository.
func TestRunsPagingAndRepositoryFilter(t *testing.T) {
	f := newFixture(t)
	if _, _, err := f.st.CreateRun(context.Background(), store.Run{Repo: "acme/web", SHA: "ddddddd4", Branch: "main", Source: "push", PR: 3}); err != nil {
		t.Fatal(err)
	}
	d := &dashboard.Dashboard{Store: f.st, RecentRuns: 2}
	first := get(t, d, "/").Body.String()
	if n := strings.Count(first, `<tr class="run"`); n != 2 {
		t.Fatalf("first page has %d runs; want 2", n)
	}
	older := regexp.MustCompile(`<a href="(/\?before=\d+)" rel="next">older runs`).FindStringSubmatch(first)
	if older == nil {
		t.Fatal("first page links no older runs")
	}
	second := get(t, d, strings.ReplaceAll(older[1], "&amp;", "&")).Body.String()
	mustContain(t, second, `data-run="`+f.running.ID+`"`, `data-run="`+f.done.ID+`"`, "← newest runs")
	if strings.Contains(second, `data-run="`+f.refused.ID+`"`) {
		t.Error("the second page repeats the first")
	}
	web := get(t, d, "/?repo=acme/web").Body.String()
	if n := strings.Count(web, `<tr class="run"`); n != 1 || !strings.Contains(web, `<span class="current">acme/web</span>`) {
		t.Errorf("acme/web's runs: %d rows", n)
	}
	mustContain(t, first, `<a href="/?repo=acme%2fweb">acme/web</a>`, `#9 (no title)`)
}

// A merge whose release GitHub refuses says so in the runs list and on
// its page, with GitHub's answer, rather than "being evaluated".
func TestRefusedReleaseShownOnTheDashboard(t *testing.T) {
	ctx := context.Background()
	st := servicetest.OpenStore(t, servicetest.DBPath(t))
	t.Cleanup(func() { st.Close() })
	r, _, err := st.CreateRun(ctx, store.Run{Repo: "acme/api", SHA: "ddddddd4", Installation: 1, Branch: "main", Source: "push", PR: 10})
	if err != nil {
		t.Fatal(err)
	}
	r.State, r.Version, r.Tag = store.RunReleasing, "0.1.0", "v0.1.0"
	if r.Summary, err = json.Marshal(store.RunSummary{Kind: "release", Refused: []store.RefusedRelease{
		{Tag: "v0.1.0", Reason: "403 Resource not accessible by integration"}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	d := &dashboard.Dashboard{Store: st}
	const want = "GitHub refused the release v0.1.0"
	list := get(t, d, "/").Body.String()
	mustContain(t, list, want+" (403 Resource not accessible by integration); tried again")
	if strings.Contains(list, "being evaluated") {
		t.Errorf("the runs list says the refused merge is being evaluated:\n%s", list)
	}
	mustContain(t, get(t, d, "/runs/"+r.ID).Body.String(), want+": 403 Resource not accessible by integration; tried again")

	// In the pipelines: form the merge's other pipelines roll out
	// meanwhile: their rows show their own progress.
	web, _, err := st.StartRollout(ctx, r.ID, "acme/api:web", store.Release{Version: "0.1.0", Tag: "web/v0.1.0"},
		[]byte(repoConfig), nil, []string{"qa", "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetStageState(ctx, web, 0, schedule.Active); err != nil {
		t.Fatal(err)
	}
	list = get(t, d, "/").Body.String()
	mustContain(t, list, "deploying to qa")
	if strings.Contains(list, "being evaluated") {
		t.Errorf("the runs list says a merge whose web pipeline deploys is being evaluated:\n%s", list)
	}
}
