// Package api serves shipbot's own HTTP API: the callback a deploy system
// reports its outcome to, the run listing, and pipeline freezes.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/internal/environments"
	"github.com/shipbot/shipbot/internal/pipeline"
	"github.com/shipbot/shipbot/internal/readauth"
	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/store"
)

// maxCallback bounds a callback body: a state and a URL.
const maxCallback = 64 << 10

// Callbacks is where executions' outcomes are reported.
type Callbacks interface {
	Callback(ctx context.Context, token, state, url string) error
}

// Freezer freezes and unfreezes pipelines: the rollout engine, the one
// path every freeze takes (the API's and /shipbot freeze's alike).
type Freezer interface {
	Freeze(ctx context.Context, key, reason, actor string) error
	Unfreeze(ctx context.Context, key, actor string) (wasFrozen bool, err error)
}

// API holds the endpoints' dependencies.
type API struct {
	Store     store.Store
	Callbacks Callbacks
	// Token guards the write endpoints (freeze); empty disables them.
	Token string
	// ReadToken (SHIPBOT_DASHBOARD_TOKEN) guards every GET: runs carry
	// repositories, versions and execution reasons that quote target hosts
	// and error bodies. Empty leaves reads open.
	ReadToken string
	// Freezer carries out freezes; nil disables the freeze endpoints.
	Freezer Freezer
}

// Register adds the routes.
func (a *API) Register(e *echo.Echo) {
	e.POST("/api/v1/callbacks/:token", a.callback)
	e.GET("/api/v1/runs", a.listRuns, a.readable)
	e.GET("/api/v1/runs/:id", a.getRun, a.readable)
	e.GET("/api/v1/pipelines", a.listPipelines, a.readable)
	e.GET("/api/v1/events", a.listEvents, a.readable)
	e.POST("/api/v1/pipelines/:name/freeze", a.freeze)
	e.DELETE("/api/v1/pipelines/:name/freeze", a.unfreeze)
	e.POST("/api/v1/pipelines/:name/unfreeze", a.unfreeze)
}

type errorBody struct {
	Error string `json:"error"`
}

func fail(c echo.Context, code int, msg string) error {
	return c.JSON(code, errorBody{msg})
}

// callback takes {"state":"succeeded"|"failed","url":"…"}.
func (a *API) callback(c echo.Context) error {
	var body struct {
		State string `json:"state"`
		URL   string `json:"url"`
	}
	data, err := io.ReadAll(io.LimitReader(c.Request().Body, maxCallback+1))
	if err != nil || len(data) > maxCallback {
		return fail(c, http.StatusRequestEntityTooLarge, "callback body too large")
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return fail(c, http.StatusBadRequest, "malformed JSON: "+err.Error())
	}
	if _, err := rollout.ParseOutcome(body.State); err != nil {
		return fail(c, http.StatusBadRequest, `state must be "succeeded" or "failed"`)
	}
	if body.URL != "" && !strings.HasPrefix(body.URL, "https://") && !strings.HasPrefix(body.URL, "http://") {
		return fail(c, http.StatusBadRequest, "url must be an http(s) URL")
	}
	err = a.Callbacks.Callback(c.Request().Context(), c.Param("token"), body.State, body.URL)
	switch {
	case errors.Is(err, pipeline.ErrUnknownToken):
		return fail(c, http.StatusNotFound, "unknown callback token")
	case errors.Is(err, store.ErrFinished):
		return c.JSON(http.StatusOK, map[string]string{"status": "ignored: the execution already has its outcome"})
	case err != nil:
		return fail(c, http.StatusInternalServerError, "could not record the outcome; retry")
	}
	return c.JSON(http.StatusAccepted, map[string]string{"status": "recorded"})
}

// runView is a run as the API shows it.
type runView struct {
	ID         string      `json:"id"`
	Repo       string      `json:"repository"`
	SHA        string      `json:"sha"`
	PR         int         `json:"pull_request,omitempty"`
	State      string      `json:"state"`
	Pipeline   string      `json:"pipeline,omitempty"`
	Version    string      `json:"version,omitempty"`
	Tag        string      `json:"tag,omitempty"`
	ReleaseURL string      `json:"release_url,omitempty"`
	Rollout    string      `json:"rollout,omitempty"`
	Stages     []stageView `json:"stages,omitempty"`
	// Pipelines lists the run's rollouts, one per pipeline it runs, each
	// with its own release (the pipelines: form releases one per pipeline).
	Pipelines []pipelineRelease `json:"pipelines,omitempty"`
	// Refused are the releases GitHub refused at the run's last
	// evaluation: what holds a run in "releasing".
	Refused   []refusedView `json:"refused,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
}

type refusedView struct {
	Pipeline string `json:"pipeline,omitempty"`
	Tag      string `json:"tag"`
	Reason   string `json:"reason"` // GitHub's answer
}

type pipelineRelease struct {
	Rollout    string `json:"rollout_id"`
	Pipeline   string `json:"pipeline"`
	Version    string `json:"version,omitempty"`
	Tag        string `json:"tag,omitempty"`
	ReleaseURL string `json:"release_url,omitempty"`
	State      string `json:"state"` // active or done
}

type stageView struct {
	Name       string          `json:"name"`
	State      string          `json:"state"`
	Wait       string          `json:"wait,omitempty"`
	Executions []executionView `json:"executions,omitempty"`
}

type executionView struct {
	Target     string     `json:"target,omitempty"` // a wave's target
	Attempt    int        `json:"attempt"`
	Rollback   bool       `json:"rollback,omitempty"`
	Version    string     `json:"version"`
	Phase      string     `json:"phase"`
	Outcome    string     `json:"outcome,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	URL        string     `json:"url,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

func view(r store.Run) runView {
	v := runView{ID: r.ID, Repo: r.Repo, SHA: r.SHA, PR: r.PR, State: r.State, Pipeline: r.Pipeline,
		Version: r.Version, Tag: r.Tag, ReleaseURL: r.ReleaseURL, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	for _, f := range r.Summarized().Refused {
		v.Refused = append(v.Refused, refusedView{Pipeline: f.Pipeline, Tag: f.Tag, Reason: f.Reason})
	}
	return v
}

func (a *API) listRuns(c echo.Context) error {
	limit := 50
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return fail(c, http.StatusBadRequest, "limit must be 1..500")
		}
		limit = n
	}
	runs, err := a.Store.ListRuns(c.Request().Context(), c.QueryParam("repository"), limit)
	if err != nil {
		return fail(c, http.StatusInternalServerError, "could not list runs")
	}
	out := make([]runView, len(runs))
	for i, r := range runs {
		out[i] = view(r)
		if out[i].Pipelines, err = a.pipelines(c.Request().Context(), r.ID); err != nil {
			return fail(c, http.StatusInternalServerError, "could not list runs")
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"runs": out})
}

func (a *API) getRun(c echo.Context) error {
	ctx := c.Request().Context()
	rr, err := a.Store.GetRollout(ctx, c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return fail(c, http.StatusNotFound, "no such run")
	}
	if err != nil {
		return fail(c, http.StatusInternalServerError, "could not read the run")
	}
	execs, err := a.Store.Executions(ctx, rr.ID)
	if err != nil {
		return fail(c, http.StatusInternalServerError, "could not read the run's executions")
	}
	v := view(rr.Run)
	// The rollout's own id, pipeline and release: a run's first rollout
	// has the run's id and, in the single-pipeline form, its release.
	v.ID, v.Pipeline, v.Version, v.Tag, v.ReleaseURL = rr.ID, rr.Pipeline, rr.Version, rr.Tag, rr.ReleaseURL
	v.Rollout = rr.Rollout
	if v.Pipelines, err = a.pipelines(ctx, rr.Run.ID); err != nil {
		return fail(c, http.StatusInternalServerError, "could not read the run's pipelines")
	}
	for _, s := range rr.Stages {
		sv := stageView{Name: s.Name, State: s.State.String(), Wait: s.Wait.Text()}
		for _, ex := range execs {
			if ex.Stage != s.Index {
				continue
			}
			ev := executionView{Target: ex.Target, Attempt: ex.Attempt, Rollback: ex.Rollback, Version: ex.Version, Phase: string(ex.Phase),
				Outcome: string(ex.Outcome), Reason: ex.Reason, URL: ex.URL, StartedAt: ex.CreatedAt}
			if !ex.FinishedAt.IsZero() {
				f := ex.FinishedAt
				ev.FinishedAt = &f
			}
			sv.Executions = append(sv.Executions, ev)
		}
		v.Stages = append(v.Stages, sv)
	}
	return c.JSON(http.StatusOK, v)
}

// pipelines lists a run's rollouts with their releases.
func (a *API) pipelines(ctx context.Context, runID string) ([]pipelineRelease, error) {
	rrs, err := a.Store.RolloutsOf(ctx, runID)
	if err != nil {
		return nil, err
	}
	var out []pipelineRelease
	for _, rr := range rrs {
		out = append(out, pipelineRelease{Rollout: rr.ID, Pipeline: rr.Pipeline, Version: rr.Version, Tag: rr.Tag,
			ReleaseURL: rr.ReleaseURL, State: rr.Rollout})
	}
	return out, nil
}

// authorized checks the bearer token of a write request. When it is not
// ok, the refusal has been answered (err is how writing it went) and the
// caller must return at once: fail returns nil after a successful write,
// so its result cannot tell a refusal from a pass.
func (a *API) authorized(c echo.Context) (ok bool, err error) {
	if a.Token == "" || a.Freezer == nil {
		return false, fail(c, http.StatusForbidden, "the write API is disabled: set SHIPBOT_API_TOKEN")
	}
	got, hasBearer := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
	if !hasBearer || subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) != 1 {
		return false, fail(c, http.StatusUnauthorized, "missing or wrong bearer token")
	}
	return true, nil
}

// pipelineKey reads the {name} path parameter, "owner/name:pipeline" or
// "owner/name", URL-escaped as a single segment, and resolves it against
// the pipelines the repository's configurations have named. When it cannot
// (malformed, or a pipeline shipbot does not know) the refusal has been
// answered, as with authorized, and ok is false. Unknown names are refused
// rather than frozen: a mistyped name would otherwise answer "frozen" while
// the real pipeline kept deploying.
func (a *API) pipelineKey(c echo.Context) (key string, ok bool, err error) {
	raw := c.Param("name")
	if unescaped, err := url.PathUnescape(raw); err == nil {
		raw = unescaped
	}
	repo, name, named := strings.Cut(raw, ":")
	if strings.Count(repo, "/") != 1 || strings.HasPrefix(repo, "/") || strings.HasSuffix(repo, "/") || (named && name == "") {
		return "", false, fail(c, http.StatusBadRequest, `pipeline must be "owner/repo" or "owner/repo:pipeline", URL-escaped`)
	}
	known, err := a.Store.RepoPipelines(c.Request().Context(), repo)
	if err != nil {
		return "", false, fail(c, http.StatusInternalServerError, "could not read the repository's pipelines")
	}
	switch {
	case named && slices.Contains(known, name):
		return pipeline.PipelineKey(repo, name), true, nil
	case !named && len(known) == 1:
		// owner/repo means the repository's one pipeline, whatever its
		// configuration calls it.
		return pipeline.PipelineKey(repo, known[0]), true, nil
	case len(known) == 0:
		return "", false, fail(c, http.StatusNotFound, fmt.Sprintf("shipbot knows no pipeline of %s: no merge of it has been handled", repo))
	case !named:
		return "", false, fail(c, http.StatusNotFound, fmt.Sprintf("%s has several pipelines (%s): name one as %s:<pipeline>", repo, strings.Join(known, ", "), repo))
	}
	return "", false, fail(c, http.StatusNotFound, fmt.Sprintf("no pipeline %q in %s; its pipelines: %s", name, repo, strings.Join(known, ", ")))
}

func (a *API) freeze(c echo.Context) error {
	if ok, err := a.authorized(c); !ok {
		return err
	}
	key, ok, err := a.pipelineKey(c)
	if !ok {
		return err
	}
	var body struct {
		Reason string `json:"reason"`
		Actor  string `json:"actor"`
	}
	if c.Request().ContentLength != 0 {
		if err := json.NewDecoder(io.LimitReader(c.Request().Body, maxCallback)).Decode(&body); err != nil {
			return fail(c, http.StatusBadRequest, "malformed JSON: "+err.Error())
		}
	}
	if err := a.Freezer.Freeze(c.Request().Context(), key, body.Reason, body.Actor); err != nil {
		return fail(c, http.StatusInternalServerError, "could not freeze")
	}
	return c.JSON(http.StatusOK, map[string]string{"pipeline": key, "status": "frozen"})
}

func (a *API) unfreeze(c echo.Context) error {
	if ok, err := a.authorized(c); !ok {
		return err
	}
	key, ok, err := a.pipelineKey(c)
	if !ok {
		return err
	}
	var body struct {
		Actor string `json:"actor"`
	}
	if c.Request().ContentLength != 0 {
		if err := json.NewDecoder(io.LimitReader(c.Request().Body, maxCallback)).Decode(&body); err != nil {
			return fail(c, http.StatusBadRequest, "malformed JSON: "+err.Error())
		}
	}
	if _, err := a.Freezer.Unfreeze(c.Request().Context(), key, body.Actor); err != nil {
		return fail(c, http.StatusInternalServerError, "could not unfreeze")
	}
	return c.JSON(http.StatusOK, map[string]string{"pipeline": key, "status": "unfrozen"})
}

// readable refuses a read without the read token, the same guard the
// dashboard uses, answered in JSON.
func (a *API) readable(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if (readauth.Guard{Token: a.ReadToken}).Allow(c.Response(), c.Request()) {
			return next(c)
		}
		c.Response().Header().Set("WWW-Authenticate", readauth.Challenge)
		return fail(c, http.StatusUnauthorized, "missing or wrong read token (SHIPBOT_DASHBOARD_TOKEN): send Authorization: Bearer <token>")
	}
}

// historyLen is how many versions per stage GET /api/v1/pipelines lists.
const historyLen = 10

type pipelineView struct {
	Name     string         `json:"name"` // the key: owner/repo:pipeline
	Repo     string         `json:"repository"`
	Pipeline string         `json:"pipeline"`
	Frozen   bool           `json:"frozen"`
	Freeze   *freezeView    `json:"freeze,omitempty"`
	Stages   []envStageView `json:"stages"`
}

type freezeView struct {
	Reason string    `json:"reason,omitempty"`
	Actor  string    `json:"actor,omitempty"`
	Since  time.Time `json:"since"`
}

type envStageView struct {
	Name   string      `json:"name"`
	Live   *deployView `json:"live"`
	State  string      `json:"state"`
	Detail string      `json:"detail"`
	// The run the stage is busy with or that waits for it.
	RunID   string       `json:"run_id,omitempty"`
	Version string       `json:"version,omitempty"`
	PR      int          `json:"pull_request,omitempty"`
	Until   *time.Time   `json:"until,omitempty"`
	History []deployView `json:"history"`
}

type deployView struct {
	Version  string    `json:"version"`
	Tag      string    `json:"tag"`
	Since    time.Time `json:"since"`
	RunID    string    `json:"run_id"`
	PR       int       `json:"pull_request,omitempty"`
	Rollback bool      `json:"rollback,omitempty"`
	From     string    `json:"rolled_back_from,omitempty"`
}

func deployOf(d environments.Deploy) deployView {
	return deployView{Version: d.Version, Tag: d.Tag, Since: d.Since.UTC(), RunID: d.RunID, PR: d.PR, Rollback: d.Rollback, From: d.From}
}

// listPipelines answers what runs where: per pipeline and stage, the live
// version, since when, and what the stage is doing, as the dashboard's
// environments view shows it.
func (a *API) listPipelines(c echo.Context) error {
	pipes, err := environments.Read(c.Request().Context(), a.Store, historyLen)
	if err != nil {
		return fail(c, http.StatusInternalServerError, "could not read the pipelines")
	}
	out := make([]pipelineView, 0, len(pipes))
	for _, p := range pipes {
		pv := pipelineView{Name: p.Key, Repo: p.Repo, Pipeline: p.Name, Frozen: p.Freeze != nil, Stages: []envStageView{}}
		if p.Freeze != nil {
			pv.Freeze = &freezeView{Reason: p.Freeze.Reason, Actor: p.Freeze.Actor, Since: p.Freeze.At.UTC()}
		}
		for _, st := range p.Stages {
			sv := envStageView{Name: st.Name, State: string(st.State), Detail: st.Detail, RunID: st.RunID, Version: st.Version,
				PR: st.PR, History: []deployView{}}
			if st.Live != nil {
				l := deployOf(*st.Live)
				sv.Live = &l
			}
			if !st.Until.IsZero() {
				u := st.Until.UTC()
				sv.Until = &u
			}
			for _, d := range st.History {
				sv.History = append(sv.History, deployOf(d))
			}
			pv.Stages = append(pv.Stages, sv)
		}
		out = append(out, pv)
	}
	return c.JSON(http.StatusOK, map[string]any{"pipelines": out})
}

type eventView struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Repo     string    `json:"repository"`
	Pipeline string    `json:"pipeline"`
	RunID    string    `json:"run_id"`
	Stage    string    `json:"stage"`
	Kind     string    `json:"kind"`
	Actor    string    `json:"actor"`
	Detail   string    `json:"detail"`
}

// listEvents pages through the audit log, newest first: ?pipeline=,
// ?run=, ?before=<id> (the previous page's next), ?limit= (1..500, 50).
func (a *API) listEvents(c echo.Context) error {
	q := store.EventQuery{Pipeline: c.QueryParam("pipeline"), Run: c.QueryParam("run"), Limit: 50}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return fail(c, http.StatusBadRequest, "limit must be 1..500")
		}
		q.Limit = n
	}
	if v := c.QueryParam("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return fail(c, http.StatusBadRequest, "before must be an event id (the previous page's next)")
		}
		q.Before = n
	}
	evs, err := a.Store.ListEvents(c.Request().Context(), q)
	if err != nil {
		return fail(c, http.StatusInternalServerError, "could not read the events")
	}
	out := make([]eventView, len(evs))
	for i, ev := range evs {
		out[i] = eventView{ID: ev.ID, At: ev.At.UTC(), Repo: ev.Repo, Pipeline: ev.Pipeline, RunID: ev.RunID, Stage: ev.Stage,
			Kind: ev.Kind, Actor: ev.Actor, Detail: ev.Detail}
	}
	next := ""
	if len(evs) == q.Limit {
		next = strconv.FormatInt(evs[len(evs)-1].ID, 10)
	}
	return c.JSON(http.StatusOK, map[string]any{"events": out, "next": next})
}
