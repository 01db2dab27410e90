package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/chromedp/cdproto/emulation"
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
	// At the pace of the demo's own test, not a person's: the dashboard
	// needs the runs, not the time to watch them.
	if err := demo.Run(ctx, &narration, demo.Options{Dir: dir, Deploy: 100 * time.Millisecond, Bake: 400 * time.Millisecond}); err != nil {
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

	// The viewer is in Seoul: times show there, UTC stays in the title.
	if _, err := chromedp.Call(bctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Seoul"}); err != nil {
		t.Fatal(err)
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
	// The environments view answers what runs where after the demo: its
	// last merge, v0.1.3, in both stages, and nothing deploying any more.
	for _, stage := range []string{"qa", "prod"} {
		row := pipe + ` tr.stage-now[data-stage="` + stage + `"]`
		if live := text(t, bctx, chromedp.CSS(row+" a.live-version")); live != "v0.1.3" {
			t.Errorf("%s runs %q; want v0.1.3, the demo's last merge", stage, live)
		}
		if state := attrs(t, bctx, chromedp.CSSAll(row), "data-state"); !slices.Equal(state, []string{"idle"}) {
			t.Errorf("%s is %v; want idle once every rollout finished", stage, state)
		}
		rowText := text(t, bctx, chromedp.CSS(row))
		for _, want := range []string{"#", "since", "runs v0.1.3", "before: v0.1.2"} {
			if !strings.Contains(rowText, want) {
				t.Errorf("%s row lacks %q: %s", stage, want, rowText)
			}
		}
	}
	if strings.Contains(pipeText, "deploying") {
		t.Errorf("a finished rollout still says deploying:\n%s", pipeText)
	}
	when, err := chromedp.Run(bctx, chromedp.AttributesAll(chromedp.CSSAll(pipe+" time")))
	if err != nil || len(when) == 0 {
		t.Fatalf("no times in the environments view: %v", err)
	}
	local := text(t, bctx, chromedp.CSS(pipe+" time"))
	if !strings.Contains(local, "GMT+9") || !strings.HasSuffix(when[0]["title"], "UTC") {
		t.Errorf("time shows %q (title %q); want Seoul's zone, UTC in the title", local, when[0]["title"])
	}
	runIDs := attrs(t, bctx, chromedp.CSSAll("tr.run"), "data-run")
	if len(runIDs) != 5 {
		t.Errorf("%d runs listed; want the demo's 5 merges", len(runIDs))
	}
	// Each story's run, found by its release tag.
	for tag, wants := range map[string][]string{
		"v0.1.0": {"released", "done", "qa passed", "prod passed"},
		"v0.1.1": {"qa passed", "prod passed", "deployed at @carol's request despite its skip label"}, // skipped by label, then deployed on /shipbot deploy prod
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

	// The label-skipped fix (v0.1.1): its event log names the maintainer
	// who sent it to prod, and the label that had skipped it.
	fix, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.Search(`//tr[@class="run"][.//a[normalize-space()="v0.1.1"]]`), "data-run"))
	if err != nil || !fix.Exists {
		t.Fatalf("no run row for v0.1.1: %v", err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/runs/"+fix.Value), chromedp.WaitVisible(chromedp.CSS("table.events"))); err != nil {
		t.Fatalf("the fix's run page has no event log: %v", err)
	}
	deploy := text(t, bctx, chromedp.CSS(`tr.event[data-kind="command.deploy"]`))
	for _, want := range []string{"prod", "@carol", "/shipbot deploy prod", "no-deploy-to-prod"} {
		if !strings.Contains(deploy, want) {
			t.Errorf("the deploy command's event lacks %q: %s", want, deploy)
		}
	}
	if skipped := text(t, bctx, chromedp.CSS(`tr.event[data-kind="stage.skipped"]`)); !strings.Contains(skipped, "label no-deploy-to-prod") {
		t.Errorf("the skip's event: %s; want the label named", skipped)
	}
	order := attrs(t, bctx, chromedp.CSSAll("tr.event"), "data-kind")
	if i, j := slices.Index(order, "stage.skipped"), slices.Index(order, "command.deploy"); i < 0 || j < i ||
		!slices.Contains(order[j:], "stage.passed") {
		t.Errorf("event log %v; want prod skipped, then the command, then prod passed", order)
	}
	screenshot(t, bctx, filepath.Join(shots, "run-fix.png"))

	// At 420 px the front page reads without sideways scrolling, and a
	// change arrives without a reload: the scroll position stays, and so
	// does what the page's script context held.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(420, 700), chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(pipe))); err != nil {
		t.Fatal(err)
	}
	if w, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || w > 420 {
		t.Errorf("at 420 px the page is %d px wide (%v); want no sideways scroll", w, err)
	}
	focused, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(function () {
		var a = document.querySelector("#environments a.live-version"); a.focus({preventScroll: true}); return a.getAttribute("href"); })()`))
	if err != nil || focused == "" {
		t.Fatalf("focus a live version link: %q, %v", focused, err)
	}
	y, err := chromedp.Run(bctx, chromedp.Evaluate[int](`window.shipbotTestMark = "same page"; window.scrollTo(0, 400); window.scrollY`))
	if err != nil || y == 0 {
		t.Fatalf("scroll: %d, %v", y, err)
	}
	if !strings.Contains(text(t, bctx, chromedp.CSS(pipe)), "frozen") {
		t.Fatal("the pipeline is not shown frozen before the change")
	}
	changed := time.Now()
	if _, err := st.Unfreeze(ctx, "acme/api:api", "alice"); err != nil {
		t.Fatal(err)
	}
	for {
		card := liveText(t, bctx, pipe)
		if !strings.Contains(card, "frozen") {
			t.Logf("the unfreeze showed %s after it was recorded", time.Since(changed).Round(time.Millisecond))
			break
		}
		if time.Since(changed) > 15*time.Second {
			t.Fatalf("the page still shows the pipeline frozen 15s after the unfreeze:\n%s", card)
		}
		time.Sleep(50 * time.Millisecond) // polls a browser, which has no clock to drive
	}
	mark, err := chromedp.Run(bctx, chromedp.Evaluate[string](`window.shipbotTestMark || ""`))
	if err != nil || mark != "same page" {
		t.Errorf("the page reloaded (script context lost: %q, %v); want the update applied in place", mark, err)
	}
	if y2, err := chromedp.Run(bctx, chromedp.Evaluate[int](`window.scrollY`)); err != nil || y2 != y {
		t.Errorf("scroll after the update = %d (%v); want %d kept", y2, err, y)
	}
	if f, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.activeElement.getAttribute("href") || ""`)); err != nil || f != focused {
		t.Errorf("focus after the update on %q (%v); want the link that had it, %q", f, err, focused)
	}
	if n, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.getAttribute("data-live-updates") || ""`)); err != nil || n == "" {
		t.Errorf("data-live-updates = %q, %v; want the live update counted", n, err)
	}
	screenshot(t, bctx, filepath.Join(shots, "index-420px.png"))
	// A run's page too, with its timeline, event log and executions.
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/runs/"+fix.Value), chromedp.WaitVisible(chromedp.CSS("table.events"))); err != nil {
		t.Fatal(err)
	}
	if w, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || w > 420 {
		t.Errorf("at 420 px a run page is %d px wide (%v); want no sideways scroll", w, err)
	}
	screenshot(t, bctx, filepath.Join(shots, "run-420px.png"))
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(pipe))); err != nil {
		t.Fatal(err)
	}
	// Frozen again, for the run page below: a second update, as live.
	if err := st.Freeze(ctx, "acme/api:api", freezeReason, "alice"); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(liveText(t, bctx, pipe), freezeReason) {
		if time.Since(changed) > 30*time.Second {
			t.Fatal("the page never showed the pipeline frozen again")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}

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
	keepScreenshots(t, shots)
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

// keepScreenshots copies the screenshots to CI's temporary directory
// ($RUNNER_TEMP on GitHub Actions, else $TMPDIR under CI=true), which
// outlives the test's own, for a person to look at.
func keepScreenshots(t *testing.T, dir string) {
	t.Helper()
	root := os.Getenv("RUNNER_TEMP")
	if root == "" && os.Getenv("CI") == "true" {
		root = os.TempDir()
	}
	if root == "" {
		return
	}
	dst := filepath.Join(root, "shipbot-dashboard")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Errorf("keep screenshots: %v", err)
		return
	}
	shots, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	for _, s := range shots {
		data, err := os.ReadFile(s)
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, filepath.Base(s)), data, 0o644)
		}
		if err != nil {
			t.Errorf("keep screenshot %s: %v", s, err)
		}
	}
	t.Logf("screenshots kept in %s", dst)
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

// liveText reads an element's text in one step of the page's own, so
// that a live update swapping it meanwhile cannot fail the read.
func liveText(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	q, _ := json.Marshal(css)
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(`+string(q)+`) || {}).textContent || ""`))
	if err != nil {
		t.Fatalf("read text of %s: %v", css, err)
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
