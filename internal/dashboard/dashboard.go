// Package dashboard serves shipbot's read-only web dashboard. It opens on
// the environments view (per pipeline and stage: the version live now, its
// pull request and age, what the stage is doing and why), then the recent
// runs (paged, by repository), and a page per run with a timeline of its
// stage executions and its event log. It is server-rendered HTML
// (html/template, which escapes everything it prints) with inline CSS and
// SVG, and one small script of its own (dashboard.js) that shows times in
// the viewer's zone and applies live updates: a server-sent event says
// something changed, and the script fetches the page again and swaps only
// the sections that differ, so nothing reloads, flickers, or loses its
// scroll position or focus. Without the script the pages work as they are,
// in UTC.
//
// Read access is open unless a token is set (SHIPBOT_DASHBOARD_TOKEN):
// then a request needs "Authorization: Bearer <token>", or "?token=<token>"
// in the URL, which also sets an HttpOnly, SameSite=Strict cookie so that
// the dashboard's own links and reloads keep working.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/readauth"
	"github.com/shipbot/shipbot/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed dashboard.js
var script []byte

// Store is what the dashboard reads.
type Store interface {
	store.Dashboards
	GetRollout(ctx context.Context, runID string) (store.RolloutRun, error)
	Executions(ctx context.Context, runID string) ([]store.Execution, error)
	LoadRollout(ctx context.Context, pipelineKey string) ([]store.RolloutRun, error)
	Frozen(ctx context.Context, pipelineKey string) (reason string, frozen bool, err error)
	APICalls(ctx context.Context, runID string) (int, error)
	store.Events
}

// Dashboard holds the pages' dependencies.
type Dashboard struct {
	Store Store
	// Token, when set, is required to read any page; empty leaves the
	// dashboard open.
	Token string
	// GitHubURL is the GitHub web server, for links to pull requests when a
	// run does not say where its pull request lives; default
	// https://github.com/.
	GitHubURL string
	// Refresh is how often the live updates look for a change (one cheap
	// query per open page); zero means 1s, a negative value turns live
	// updates off.
	Refresh time.Duration
	// RecentRuns is how many runs the front page lists; zero means 30.
	RecentRuns int
	Log        *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	servers map[*http.Server]chan struct{} // closed when that server shuts down
}

// CookieName is the cookie a ?token= visit sets.
const CookieName = readauth.CookieName

// Register adds the dashboard's routes: GET /, GET /runs/:id, the live
// updates GET /live and the script GET /dashboard.js.
func (d *Dashboard) Register(e *echo.Echo) {
	e.GET("/", d.index, d.auth)
	e.GET("/runs/:id", d.run, d.auth)
	e.GET("/live", d.live, d.auth)
	e.GET("/dashboard.js", d.script, d.auth)
}

var pages = parsePages("index.html", "run.html", "message.html")

func parsePages(names ...string) map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, n := range names {
		out[n] = template.Must(template.New(n).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+n))
	}
	return out
}

var funcs = template.FuncMap{
	"num": func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) },
	// rfc3339 is a time as <time datetime> wants it, which the script
	// shows in the viewer's zone.
	"rfc3339": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"shortSHA": func(s string) string {
		if len(s) > 7 {
			return s[:7]
		}
		return s
	},
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}

// render writes page with data, buffered so that a template error becomes
// a clean 500 instead of half a page.
func (d *Dashboard) render(c echo.Context, code int, page string, data any) error {
	var buf bytes.Buffer
	if err := pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		d.log().Error("render dashboard page", "page", page, "err", err)
		return c.String(http.StatusInternalServerError, "could not render the page")
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	return c.HTMLBlob(code, buf.Bytes())
}

// csp lets the page load its one script from its own origin (no inline
// script, no eval) and that script talk to its own origin (the live
// updates' event stream and the page it fetches again); styles and the
// timeline are inline. Nothing else may load, no form posts anywhere, no
// page frames it, and links never carry the URL (which may hold ?token=)
// as a referrer.
const csp = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (d *Dashboard) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}

func (d *Dashboard) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Dashboard) poll() time.Duration {
	if d.Refresh == 0 {
		return time.Second
	}
	return d.Refresh
}

// auth lets a request through when the read guard allows it.
func (d *Dashboard) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if (readauth.Guard{Token: d.Token}).Allow(c.Response(), c.Request()) {
			return next(c)
		}
		c.Response().Header().Set("WWW-Authenticate", readauth.Challenge)
		return d.render(c, http.StatusUnauthorized, "message.html", messagePage{
			Title: "Token required",
			Text:  "This dashboard needs its token: send “Authorization: Bearer <token>”, or open the page once with ?token=<token>.",
		})
	}
}

type messagePage struct {
	Title  string
	Text   string
	Stream liveMark
}

func (d *Dashboard) index(c echo.Context) error {
	ctx := c.Request().Context()
	repo := c.QueryParam("repo")
	before, _ := strconv.ParseInt(c.QueryParam("before"), 10, 64)
	v, err := d.overview(ctx, repo, before)
	if err != nil {
		d.log().Error("dashboard overview", "err", err)
		return d.render(c, http.StatusInternalServerError, "message.html", messagePage{Title: "Error", Text: "Could not read the pipelines; see the service log."})
	}
	if d.Refresh < 0 {
		v.Stream = liveMark{}
	}
	return d.render(c, http.StatusOK, "index.html", v)
}

func (d *Dashboard) run(c echo.Context) error {
	ctx := c.Request().Context()
	v, err := d.runPage(ctx, c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return d.render(c, http.StatusNotFound, "message.html", messagePage{Title: "No such run", Text: "There is no run with this id."})
	}
	if err != nil {
		d.log().Error("dashboard run page", "run", c.Param("id"), "err", err)
		return d.render(c, http.StatusInternalServerError, "message.html", messagePage{Title: "Error", Text: "Could not read the run; see the service log."})
	}
	if d.Refresh < 0 {
		v.Stream = liveMark{}
	}
	return d.render(c, http.StatusOK, "run.html", v)
}

func (d *Dashboard) script(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", script)
}

// liveHeartbeat is how long a live-update stream stays silent at most.
const liveHeartbeat = 15 * time.Second

// maxStream bounds one live-update stream; the browser reconnects at once
// (and proxies that cut long responses cut nothing that matters).
const maxStream = 5 * time.Minute

// live is the live updates: a server-sent event "change" whenever the
// audit log has grown (every change the pages show writes an event), from
// the mark the page was read at (?since=, or the Last-Event-ID a
// reconnecting browser sends). The log is polled, one indexed query every
// Refresh, so a change any replica makes is seen on every replica.
func (d *Dashboard) live(c echo.Context) error {
	if d.Refresh < 0 {
		return c.NoContent(http.StatusNoContent) // tells EventSource not to reconnect
	}
	req := c.Request()
	since := req.Header.Get("Last-Event-ID")
	if since == "" {
		since = c.QueryParam("since")
	}
	last, _ := strconv.ParseInt(since, 10, 64)
	w := c.Response()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, "retry: 1000\n\n"); err != nil {
		return nil
	}
	w.Flush()
	stop := d.shutdown(req)
	tick := time.NewTicker(d.poll())
	defer tick.Stop()
	end := time.NewTimer(maxStream)
	defer end.Stop()
	wrote := time.Now()
	for {
		mark, err := d.Store.LatestEvent(req.Context())
		switch {
		case err != nil && req.Context().Err() == nil:
			d.log().Warn("live updates: read the event log", "err", err)
		case err == nil && mark != last:
			last, wrote = mark, time.Now()
			if _, err := fmt.Fprintf(w, "id: %d\nevent: change\ndata: %d\n\n", mark, mark); err != nil {
				return nil
			}
			w.Flush()
		case time.Since(wrote) >= liveHeartbeat:
			// A comment now and then: a dead connection shows up as a
			// failed write, and proxies see traffic.
			wrote = time.Now()
			if _, err := io.WriteString(w, ": idle\n\n"); err != nil {
				return nil
			}
			w.Flush()
		}
		select {
		case <-req.Context().Done():
			return nil
		case <-stop:
			return nil
		case <-end.C:
			return nil
		case <-tick.C:
		}
	}
}

// shutdown is closed when the server serving r begins to shut down: an
// event stream never ends by itself, and http.Server.Shutdown waits for
// every request in flight.
func (d *Dashboard) shutdown(r *http.Request) <-chan struct{} {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return nil // no server to watch (a test calling the handler)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.servers == nil {
		d.servers = map[*http.Server]chan struct{}{}
	}
	ch, ok := d.servers[srv]
	if !ok {
		ch = make(chan struct{})
		d.servers[srv] = ch
		srv.RegisterOnShutdown(func() { close(ch) })
	}
	return ch
}
