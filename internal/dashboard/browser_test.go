package dashboard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/demo"
	ghclient "github.com/shipbot/shipbot/internal/github"
	"github.com/shipbot/shipbot/internal/githubtest"
	"github.com/shipbot/shipbot/internal/service"
	"github.com/shipbot/shipbot/internal/store"
)

// screenshotEnv names a file the run page's screenshot is copied to, for a
// person to look at; the test always keeps one in its temporary directory.
const screenshotEnv = "SHIPBOT_DASHBOARD_SCREENSHOT"

// chromium finds a Chromium (Debian's package installs /usr/bin/chromium).
// Without one the test skips, except in CI, where .ci/run installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium on PATH; .ci/run installs it (apt-get install chromium)")
	}
	t.Skip("no Chromium on PATH (apt-get install chromium); skipping the browser test")
	return ""
}

// TestDashboardInChromium plays the demo's merges through the real
// service, then serves the database it left with the real service again
// (dashboard token set) and reads the dashboard in headless Chromium.
func TestDashboardInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser test plays the demo and starts Chromium; skipped with -short")
	}
	exe := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Real runs: the demo's four stories (a merge to qa and prod, one
	// labelled no-deploy-to-prod, one refused, two serialized).
	dir := t.TempDir()
	var narration bytes.Buffer
	if err := demo.Run(ctx, &narration, demo.Options{Dir: dir}); err != nil {
		t.Fatalf("demo: %v\n%s", err, narration.String())
	}
	dbPath := filepath.Join(dir, "shipbot.db")
	if _, err := os.Stat(dbPath); err != nil {
		t.Fatalf("the demo left no database in its Dir: %v", err)
	}
	const token = "browser-test-dashboard-token"
	const freezeReason = "release freeze until the incident review"
	base, st := startService(t, dbPath, token)
	if err := st.Freeze(ctx, "acme/api:api", freezeReason, "alice"); err != nil {
		t.Fatal(err)
	}

	allocOpts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, allocOpts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	// Without the token: 401, and nothing of the runs.
	resp, err := chromedp.Run(bctx, chromedp.NavigateResponse(base+"/"))
	if err != nil {
		t.Fatalf("open %s: %v", base, err)
	}
	if resp.Status != 401 {
		t.Fatalf("GET / without the token = %d; want 401", resp.Status)
	}
	if body := text(t, bctx, chromedp.CSS("main")); strings.Contains(body, "acme/api") {
		t.Fatalf("the 401 page shows runs:\n%s", body)
	}

	// With ?token=: the front page, and a cookie for the links.
	resp, err = chromedp.Run(bctx, chromedp.NavigateResponse(base+"/?token="+token))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 {
		t.Fatalf("GET /?token= = %d; want 200", resp.Status)
	}
	const pipe = `div.pipeline[data-pipeline="acme/api:api"]`
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(pipe)), chromedp.WaitVisible(chromedp.CSS("table.runs"))); err != nil {
		t.Fatalf("the front page shows no pipeline acme/api:api: %v", err)
	}
	if got := attrs(t, bctx, chromedp.CSSAll(pipe+" tr.stage-now"), "data-stage"); !slices.Equal(got, []string{"qa", "prod"}) {
		t.Errorf("pipeline stages in the DOM = %v; want [qa prod]", got)
	}
	pipeText := text(t, bctx, chromedp.CSS(pipe))
	for _, want := range []string{"frozen: " + freezeReason, "idle"} {
		if !strings.Contains(pipeText, want) {
			t.Errorf("pipeline card lacks %q:\n%s", want, pipeText)
		}
	}
	runIDs := attrs(t, bctx, chromedp.CSSAll("tr.run"), "data-run")
	if len(runIDs) != 5 {
		t.Errorf("%d runs listed; want the demo's 5 merges", len(runIDs))
	}
	// Each story's run, found by its release tag.
	for tag, wants := range map[string][]string{
		"v0.1.0": {"released", "done", "qa passed", "prod passed"},
		"v0.1.1": {"qa passed", "prod passed"}, // skipped by label, then deployed on /shipbot deploy prod
		"v0.1.3": {"qa passed", "prod passed"},
	} {
		row := text(t, bctx, chromedp.Search(fmt.Sprintf(`//tr[@class="run"][.//a[normalize-space()=%q]]`, tag)))
		for _, w := range wants {
			if !strings.Contains(row, w) {
				t.Errorf("run %s: row lacks %q: %s", tag, w, row)
			}
		}
	}
	if refused := text(t, bctx, chromedp.Search(`//tr[@class="run"][.//span[normalize-space()="refused"]]`)); !strings.Contains(refused, "acme/api") {
		t.Errorf("refused run row: %s", refused)
	}
	shots := t.TempDir()
	screenshot(t, bctx, filepath.Join(shots, "index.png"))

	// Open the run of v0.1.3, which waited behind v0.1.2 in qa, by its link:
	// the cookie carries the token now.
	id, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.Search(`//tr[@class="run"][.//a[normalize-space()="v0.1.3"]]`), "data-run"))
	if err != nil || !id.Exists {
		t.Fatalf("no run row for v0.1.3: %v", err)
	}
	resp, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`tr.run[data-run="`+id.Value+`"] td a`)))
	if err != nil {
		t.Fatalf("follow the run link: %v", err)
	}
	if resp.Status != 200 {
		t.Fatalf("run page through the cookie = %d; want 200", resp.Status)
	}
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS("svg#timeline"))); err != nil {
		t.Fatal(err)
	}
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); loc != base+"/runs/"+id.Value {
		t.Errorf("location = %s; want %s", loc, base+"/runs/"+id.Value)
	}
	header := text(t, bctx, chromedp.CSS("dl.facts"))
	for _, want := range []string{"#", "0.1.3 (tag v0.1.3)", "released", "done", "qa passed", "prod passed", "acme/api:api", freezeReason} {
		if !strings.Contains(header+text(t, bctx, chromedp.CSS("main")), want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	if rows := attrs(t, bctx, chromedp.CSSAll("svg#timeline g.tl-row"), "data-stage"); !slices.Equal(rows, []string{"qa", "prod"}) {
		t.Errorf("timeline rows = %v; want one per stage: [qa prod]", rows)
	}
	bars, err := chromedp.Run(bctx, chromedp.AttributesAll(chromedp.CSSAll("svg#timeline rect.bar")))
	if err != nil {
		t.Fatalf("no bars in the timeline: %v", err)
	}
	kinds := map[string]int{}
	for _, b := range bars {
		kinds[b["data-kind"]]++
		if w, err := strconv.ParseFloat(b["width"], 64); err != nil || w <= 0 {
			t.Errorf("bar %v has no width", b)
		}
	}
	// qa: waited behind v0.1.2, deployed, baked 1s; prod: deployed.
	for kind, least := range map[string]int{"waiting": 1, "deploying": 2, "baking": 1} {
		if kinds[kind] < least {
			t.Errorf("%d %s bar(s); want at least %d (all: %v)", kinds[kind], kind, least, kinds)
		}
	}
	box, err := chromedp.Run(bctx, chromedp.Dimensions(chromedp.CSS("svg#timeline")))
	if err != nil || box.Width < 400 || box.Height < 60 {
		t.Errorf("the timeline renders at %v (%v); want a visible chart", box, err)
	}
	if got := attrs(t, bctx, chromedp.CSSAll("tr.execution"), "data-stage"); !slices.Equal(got, []string{"qa", "prod"}) {
		t.Errorf("execution rows = %v; want [qa prod]", got)
	}
	shot := filepath.Join(shots, "run.png")
	screenshot(t, bctx, shot)
	if dst := os.Getenv(screenshotEnv); dst != "" {
		data, err := os.ReadFile(shot)
		if err == nil {
			err = os.WriteFile(dst, data, 0o644)
		}
		if err != nil {
			t.Errorf("copy the screenshot to %s: %v", dst, err)
		}
		if idx, err := os.ReadFile(filepath.Join(shots, "index.png")); err == nil {
			_ = os.WriteFile(strings.TrimSuffix(dst, ".png")+"-index.png", idx, 0o644)
		}
		t.Logf("screenshot copied to %s", dst)
	}
}

// startService serves the database at path with the real service, the
// dashboard behind token, and returns its base URL and store.
func startService(t *testing.T, path, token string) (string, *store.SQLite) {
	t.Helper()
	st, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	gh := githubtest.New()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	apps, err := ghclient.NewApps(ghclient.Options{BaseURL: gh.URL(), AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	secret := []byte("browser-test-webhook-secret")
	bot := service.Bot{Store: st, Clients: apps, Log: log, Owner: "browser-test", PublicURL: base, TokenKey: secret,
		DashboardToken: token, Version: "test"}.Build()
	svc, err := service.New(service.Options{Store: st, WebhookSecret: secret, Handlers: bot.Handlers, Loops: bot.Loops,
		Routes: []func(*echo.Echo){bot.Routes}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- svc.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
		st.Close()
		gh.Close()
	})
	return base, st
}

func text[S chromedp.Selectable](t *testing.T, ctx context.Context, sel S) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("read text of %v: %v", sel, err)
	}
	return s
}

func attrs(t *testing.T, ctx context.Context, sel chromedp.CSSAll, name string) []string {
	t.Helper()
	all, err := chromedp.Run(ctx, chromedp.AttributesAll(sel))
	if err != nil {
		t.Fatalf("read %s of %s: %v", name, sel, err)
	}
	out := make([]string, len(all))
	for i, a := range all {
		out[i] = a[name]
	}
	return out
}

func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}
