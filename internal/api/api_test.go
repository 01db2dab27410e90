package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/api"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/servicetest"
	"github.com/shipbot/shipbot/internal/store"
)

type noCallbacks struct{}

// storeFreezer freezes in the store directly, as the engine does under
// its lease; these tests are about which pipeline a name means.
type storeFreezer struct{ st *store.SQLite }

func (f storeFreezer) Freeze(ctx context.Context, key, reason, actor string) error {
	return f.st.Freeze(ctx, key, reason, actor)
}

func (f storeFreezer) Unfreeze(ctx context.Context, key, actor string) (bool, error) {
	return f.st.Unfreeze(ctx, key, actor)
}

func (noCallbacks) Callback(context.Context, string, string, string) error { return nil }

const (
	readToken  = "read-token-123"
	writeToken = "write-token-456"
)

// serve runs the API on loopback over a real SQLite store holding one
// merge of acme/api whose configuration names the pipeline "api", and one
// of acme/mono naming "web" and "worker".
func serve(t *testing.T, readTok string) (*httptest.Server, *store.SQLite) {
	t.Helper()
	st := servicetest.OpenStore(t, servicetest.DBPath(t))
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	for i, m := range []struct{ repo, pipeline string }{
		{"acme/api", "api"}, {"acme/mono", "web"}, {"acme/mono", "worker"}, {"acme/api", ""},
	} {
		r, _, err := st.CreateRun(ctx, store.Run{Repo: m.repo, SHA: strings.Repeat(string(rune('a'+i)), 40), State: "done", Pipeline: m.pipeline})
		if err != nil {
			t.Fatal(err)
		}
		r.Pipeline, r.Version, r.Tag = m.pipeline, "1.0.0", "v1.0.0"
		if err := st.UpdateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	e := echo.New()
	(&api.API{Store: st, Callbacks: noCallbacks{}, Token: writeToken, ReadToken: readTok, Freezer: storeFreezer{st}}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv, st
}

func do(t *testing.T, method, u, bearer, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The dashboard token protects every API read: runs name repositories,
// versions and execution reasons that quote target hosts.
func TestReadsNeedTheDashboardToken(t *testing.T) {
	srv, st := serve(t, readToken)
	runs, err := st.ListRuns(context.Background(), "", 1)
	if err != nil || len(runs) == 0 {
		t.Fatal(runs, err)
	}
	if err := st.Freeze(context.Background(), "acme/api:api", "", ""); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/runs", "/api/v1/runs?repository=acme/api", "/api/v1/runs/" + runs[0].ID,
		"/api/v1/pipelines", "/api/v1/events", "/api/v1/events?run=" + runs[0].ID} {
		for _, bearer := range []string{"", "wrong", writeToken} {
			code, body := do(t, http.MethodGet, srv.URL+path, bearer, "")
			if code != http.StatusUnauthorized || strings.Contains(body, "acme/") {
				t.Errorf("GET %s with bearer %q: %d %s; want 401 revealing nothing", path, bearer, code, body)
			}
		}
		if code, body := do(t, http.MethodGet, srv.URL+path, readToken, ""); code != http.StatusOK || !strings.Contains(body, "acme/") {
			t.Errorf("GET %s with the read token: %d %s; want 200", path, code, body)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		if code, _ := do(t, http.MethodGet, srv.URL+path+sep+"token="+readToken, "", ""); code != http.StatusOK {
			t.Errorf("GET %s?token=: %d; want 200", path, code)
		}
	}

	// Without a read token, reads stay open.
	open, _ := serve(t, "")
	if code, _ := do(t, http.MethodGet, open.URL+"/api/v1/runs", "", ""); code != http.StatusOK {
		t.Errorf("GET /api/v1/runs with no read token configured: %d; want 200", code)
	}
}

// Freezing a pipeline no configuration named is refused, naming the ones
// that exist: a mistyped name must not answer "frozen" while the real
// pipeline keeps deploying.
func TestFreezeKnowsThePipelines(t *testing.T) {
	srv, st := serve(t, "")
	ctx := context.Background()
	frozen := func(key string) bool {
		_, f, err := st.Frozen(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	path := func(name string) string { return srv.URL + "/api/v1/pipelines/" + url.PathEscape(name) + "/freeze" }

	for _, tc := range []struct {
		name     string
		code     int
		contains []string
	}{
		{"acme/api:apii", http.StatusNotFound, []string{`no pipeline \"apii\" in acme/api`, "its pipelines: api"}},
		{"acme/nothing", http.StatusNotFound, []string{"knows no pipeline of acme/nothing"}},
		{"acme/nothing:api", http.StatusNotFound, []string{"knows no pipeline of acme/nothing"}},
		{"acme/mono", http.StatusNotFound, []string{"several pipelines (web, worker)", `acme/mono:\u003cpipeline\u003e`}},
		{"acme/mono:", http.StatusBadRequest, []string{"owner/repo:pipeline"}},
		{"nonsense", http.StatusBadRequest, []string{"owner/repo:pipeline"}},
	} {
		code, body := do(t, http.MethodPost, path(tc.name), writeToken, `{"reason":"incident"}`)
		if code != tc.code {
			t.Errorf("freeze %q: %d %s; want %d", tc.name, code, body, tc.code)
		}
		for _, c := range tc.contains {
			if !strings.Contains(body, c) {
				t.Errorf("freeze %q answered %s; want it to say %s", tc.name, body, c)
			}
		}
	}
	if ps, err := st.ListPipelines(ctx); err != nil || len(ps) != 0 {
		t.Errorf("refused freezes left pipelines %+v (%v); want none", ps, err)
	}

	// owner/repo is the repository's one pipeline, whatever its name.
	if code, body := do(t, http.MethodPost, path("acme/api"), writeToken, `{"reason":"incident"}`); code != http.StatusOK || !strings.Contains(body, `"acme/api:api"`) || !frozen("acme/api:api") {
		t.Errorf("freeze acme/api: %d %s; want acme/api:api frozen", code, body)
	}
	if code, body := do(t, http.MethodPost, path("acme/mono:worker"), writeToken, ""); code != http.StatusOK || !frozen("acme/mono:worker") || frozen("acme/mono:web") {
		t.Errorf("freeze acme/mono:worker: %d %s", code, body)
	}
	if code, body := do(t, http.MethodDelete, path("acme/mono:worker"), writeToken, ""); code != http.StatusOK || frozen("acme/mono:worker") {
		t.Errorf("unfreeze acme/mono:worker: %d %s", code, body)
	}
	if code, _ := do(t, http.MethodDelete, path("acme/mono:wrker"), writeToken, ""); code != http.StatusNotFound {
		t.Errorf("unfreeze of an unknown pipeline: %d; want 404", code)
	}
	// Both are on the audit log, with who said so.
	if code, _ := do(t, http.MethodPost, path("acme/mono:web"), writeToken, `{"reason":"incident 9","actor":"oncall-bot"}`); code != http.StatusOK {
		t.Fatalf("freeze acme/mono:web: %d", code)
	}
	if code, _ := do(t, http.MethodPost, srv.URL+"/api/v1/pipelines/"+url.PathEscape("acme/mono:web")+"/unfreeze", writeToken, `{"actor":"erin"}`); code != http.StatusOK {
		t.Fatalf("unfreeze acme/mono:web: %d", code)
	}
	_, body := do(t, http.MethodGet, srv.URL+"/api/v1/events?pipeline="+url.QueryEscape("acme/mono:web")+"&limit=2", "", "")
	for _, want := range []string{`"kind":"pipeline.unfrozen","actor":"erin"`, `"kind":"pipeline.frozen","actor":"oncall-bot","detail":"incident 9"`} {
		if !strings.Contains(body, want) {
			t.Errorf("events of acme/mono:web lack %s:\n%s", want, body)
		}
	}
}

// GET /api/v1/pipelines says what each stage runs and does; GET
// /api/v1/events pages through what happened, newest first.
func TestPipelinesAndEvents(t *testing.T) {
	srv, st := serve(t, "")
	ctx := context.Background()
	r, _, err := st.CreateRun(ctx, store.Run{Repo: "acme/shop", SHA: strings.Repeat("f", 40), PR: 12, Branch: "main", Source: "push"})
	if err != nil {
		t.Fatal(err)
	}
	r.State, r.Pipeline, r.Version, r.Tag = store.RunReleased, "shop", "1.3.1", "v1.3.1"
	if err := st.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.StartRollout(ctx, r.ID, "acme/shop:shop", r.Release(), []byte("version: 1\n"), nil, []string{"qa", "prod"},
		store.Event{Kind: store.KindReleaseCreated, Detail: "v1.3.1"}); err != nil {
		t.Fatal(err)
	}
	x := store.Execution{ID: store.NewID(), RolloutID: r.ID, Stage: 0, StageName: "qa", Attempt: 1, Version: "1.3.1", Tag: "v1.3.1",
		Phase: store.PhaseTriggering, TokenHash: store.NewID()}
	if err := st.EnterStage(ctx, x); err != nil {
		t.Fatal(err)
	}
	x.Outcome = "succeeded"
	if err := st.FinishExecution(ctx, x, schedule.Passed, store.Event{Kind: store.KindStagePassed, Stage: "qa"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetStageState(ctx, r.ID, 1, schedule.Skipped, store.Event{Kind: store.KindStageSkipped, Stage: "prod", Detail: "label no-deploy-to-prod"}); err != nil {
		t.Fatal(err)
	}

	code, body := do(t, http.MethodGet, srv.URL+"/api/v1/pipelines", "", "")
	var got struct {
		Pipelines []struct {
			Name, Repository, Pipeline string
			Frozen                     bool
			Stages                     []struct {
				Name, State, Detail string
				Live                *struct {
					Version, Tag, RunID string
					Since               time.Time
					PR                  int `json:"pull_request"`
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil || len(got.Pipelines) != 1 {
		t.Fatalf("GET /api/v1/pipelines: %d %s (%v)", code, body, err)
	}
	p := got.Pipelines[0]
	if p.Name != "acme/shop:shop" || p.Repository != "acme/shop" || p.Pipeline != "shop" || p.Frozen || len(p.Stages) != 2 {
		t.Fatalf("pipeline = %+v", p)
	}
	qa, prod := p.Stages[0], p.Stages[1]
	if qa.Name != "qa" || qa.Live == nil || qa.Live.Tag != "v1.3.1" || qa.Live.Version != "1.3.1" || qa.Live.PR != 12 || qa.Live.Since.IsZero() ||
		qa.State != "idle" || qa.Detail != "runs v1.3.1" {
		t.Errorf("qa = %+v live %+v; want v1.3.1 of #12 live, idle", qa, qa.Live)
	}
	if prod.Name != "prod" || prod.Live != nil || prod.State != "idle" || prod.Detail != "nothing deployed here yet" {
		t.Errorf("prod = %+v; want nothing live", prod)
	}
	if !strings.Contains(body, `"run_id":"`+r.ID+`"`) {
		t.Errorf("pipelines do not name the run that deployed: %s", body)
	}

	type page struct {
		Events []struct {
			ID                                   int64
			At                                   time.Time
			Pipeline, Stage, Kind, Actor, Detail string
			RunID                                string `json:"run_id"`
		}
		Next string
	}
	var kinds []string
	next := ""
	for range 5 {
		u := srv.URL + "/api/v1/events?limit=2&run=" + r.ID
		if next != "" {
			u += "&before=" + next
		}
		code, body := do(t, http.MethodGet, u, "", "")
		var pg page
		if err := json.Unmarshal([]byte(body), &pg); code != http.StatusOK || err != nil {
			t.Fatalf("GET %s: %d %s", u, code, body)
		}
		for _, ev := range pg.Events {
			if ev.RunID != r.ID || ev.At.IsZero() {
				t.Errorf("event %+v: want run %s, a time", ev, r.ID)
			}
			kinds = append(kinds, ev.Kind)
		}
		if next = pg.Next; next == "" {
			break
		}
	}
	want := []string{"stage.skipped", "stage.passed", "stage.entered", "release.created", "merge.recorded"}
	if strings.Join(kinds, " ") != strings.Join(want, " ") {
		t.Errorf("events by pages of 2 = %v; want %v", kinds, want)
	}
	for _, bad := range []string{"limit=0", "limit=501", "before=x", "before=-1"} {
		if code, _ := do(t, http.MethodGet, srv.URL+"/api/v1/events?"+bad, "", ""); code != http.StatusBadRequest {
			t.Errorf("GET /api/v1/events?%s: %d; want 400", bad, code)
		}
	}
}

// A run held in "releasing" by a release GitHub refused says which and
// why, in the list and on its own.
func TestRunsSayWhichReleaseGitHubRefused(t *testing.T) {
	srv, st := serve(t, "")
	ctx := context.Background()
	r, _, err := st.CreateRun(ctx, store.Run{Repo: "acme/mono", SHA: strings.Repeat("f", 40), Installation: 1, Branch: "main", Source: "push"})
	if err != nil {
		t.Fatal(err)
	}
	r.State = store.RunReleasing
	if r.Summary, err = json.Marshal(store.RunSummary{Kind: "release", Refused: []store.RefusedRelease{
		{Pipeline: "web", Tag: "web/v1.1.0", Reason: "422 Repository rule violations found"}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	want := `"refused":[{"pipeline":"web","tag":"web/v1.1.0","reason":"422 Repository rule violations found"}]`
	for _, path := range []string{"/api/v1/runs/" + r.ID, "/api/v1/runs?repository=acme/mono"} {
		code, body := do(t, http.MethodGet, srv.URL+path, "", "")
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d %s; want %s", path, code, body, want)
		}
	}
	if _, body := do(t, http.MethodGet, srv.URL+"/api/v1/runs?repository=acme/api", "", ""); strings.Contains(body, `"refused"`) {
		t.Errorf("runs nothing refused list refusals: %s", body)
	}
}
