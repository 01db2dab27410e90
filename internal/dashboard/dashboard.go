// Package dashboard serves shipbot's read-only web dashboard: the
// pipelines with what each stage runs now, the recent runs, and a page per
// run with a timeline of its stage executions. It is server-rendered HTML
// (html/template, which escapes everything it prints) with a little inline
// CSS and SVG, and reloads itself every few seconds; no JavaScript.
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
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/readauth"
	"github.com/shipbot/shipbot/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

// Store is what the dashboard reads.
type Store interface {
	store.Dashboards
	GetRollout(ctx context.Context, runID string) (store.RolloutRun, error)
	Executions(ctx context.Context, runID string) ([]store.Execution, error)
	LoadRollout(ctx context.Context, pipelineKey string) ([]store.RolloutRun, error)
	Frozen(ctx context.Context, pipelineKey string) (reason string, frozen bool, err error)
	APICalls(ctx context.Context, runID string) (int, error)
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
	// Refresh is how often pages reload themselves; zero means 5s, a
	// negative value turns it off.
	Refresh time.Duration
	// RecentRuns is how many runs the front page lists; zero means 30.
	RecentRuns int
	Log        *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// CookieName is the cookie a ?token= visit sets.
const CookieName = readauth.CookieName

// Register adds the dashboard's routes: GET / and GET /runs/:id.
func (d *Dashboard) Register(e *echo.Echo) {
	e.GET("/", d.index, d.auth)
	e.GET("/runs/:id", d.run, d.auth)
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
	"refreshMeta": func(seconds int) template.HTML {
		if seconds <= 0 {
			return ""
		}
		// An int cannot break out of the attribute; html/template would
		// otherwise refuse a dynamic value in a meta refresh's content.
		return template.HTML(`<meta http-equiv="refresh" content="` + strconv.Itoa(seconds) + `">`)
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
	// The page's only style and picture are inline; nothing else may load,
	// and links never carry the URL (which may hold ?token=) as a referrer.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	return c.HTMLBlob(code, buf.Bytes())
}

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

func (d *Dashboard) refreshSeconds() int {
	switch {
	case d.Refresh < 0:
		return 0
	case d.Refresh == 0:
		return 5
	}
	s := int(d.Refresh / time.Second)
	if s < 1 {
		s = 1
	}
	return s
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
	Title   string
	Text    string
	Refresh int
}

func (d *Dashboard) index(c echo.Context) error {
	ctx := c.Request().Context()
	v, err := d.overview(ctx)
	if err != nil {
		d.log().Error("dashboard overview", "err", err)
		return d.render(c, http.StatusInternalServerError, "message.html", messagePage{Title: "Error", Text: "Could not read the pipelines; see the service log."})
	}
	v.Refresh = d.refreshSeconds()
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
	if v.Live {
		v.Refresh = d.refreshSeconds()
	}
	return d.render(c, http.StatusOK, "run.html", v)
}
