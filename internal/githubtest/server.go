package githubtest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ghesPrefix is where GitHub Enterprise Server serves the REST API.
const ghesPrefix = "/api/v3"

// docsURL is what GitHub puts in documentation_url of its error bodies.
const docsURL = "https://docs.github.com/rest"

// maxBody bounds request bodies; GitHub rejects far smaller ones, and a
// fake that buffers without bound could hide a client streaming garbage.
const maxBody = 25 << 20

// Server is the fake GitHub. Create it with New and stop it with Close.
type Server struct {
	ts    *httptest.Server
	key   *rsa.PrivateKey
	check ResponseCheck

	mu            sync.Mutex
	now           func() time.Time
	appID         int64
	appSlug       string
	defaultInstID int64
	installations map[int64]*installation
	tokens        map[string]*accessToken
	static        map[string]string // token → actor login
	repos         map[string]*repository
	users         map[string]int64
	teams         map[string]*team // by lower-case "org/slug"
	lastID        int64
	denyAdminRead bool
	requests      []Request
	faults        map[string][]*fault
	latency       time.Duration
	rateUsed      int
	violations    []SchemaViolation

	// Secondary rate limits (secondary.go): nil secondaryLimits enforces
	// none, but loads are tracked either way.
	secondaryLimits   *SecondaryLimits
	loads             map[int64]*installationLoad
	secondaryRefusals int
	// inFlightHook, when set (only by tests, see export_test.go), runs
	// while a request counted toward an installation's concurrency limit
	// is in flight, so a test can hold requests there.
	inFlightHook func(installation int64)
}

// Option configures a Server in New.
type Option func(*Server)

// WithClock replaces the wall clock used for timestamps, token expiry, JWT
// validation and the secondary rate limit windows, so tests can move time
// forward. A test that moves the clock while requests are in flight
// must make now safe for concurrent use.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithAdministrationReadDenied makes classic branch protection reads answer
// 403 "Resource not accessible by integration" in every repository, as
// GitHub does for an App installed without the Administration: read
// permission.
func WithAdministrationReadDenied() Option { return func(s *Server) { s.denyAdminRead = true } }

// New starts a fake GitHub on a loopback port. It has one App (with an RSA
// key generated once per process) and one installation (InstallationID);
// add repositories with AddRepo.
func New(opts ...Option) *Server {
	key, err := appKey()
	if err != nil {
		panic(fmt.Sprintf("githubtest: generating the App key: %v", err))
	}
	s := &Server{
		key:           key,
		now:           time.Now,
		appID:         271828,
		appSlug:       "shipbot",
		installations: map[int64]*installation{},
		tokens:        map[string]*accessToken{},
		static:        map[string]string{},
		repos:         map[string]*repository{},
		users:         map[string]int64{},
		teams:         map[string]*team{},
		lastID:        1000,
		faults:        map[string][]*fault{},
		loads:         map[int64]*installationLoad{},
	}
	for _, o := range opts {
		o(s)
	}
	s.defaultInstID = s.addInstallationLocked("")
	// Assign s.ts before the server starts, so handler goroutines see it.
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.ts.Start()
	return s
}

// appKey is one RSA key per process: generating a 2048-bit key costs up to
// a few hundred milliseconds, and test suites start many fakes. Sharing it
// between fakes in one process weakens nothing a test relies on.
var appKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

// Close shuts the server down and waits for in-flight requests.
func (s *Server) Close() { s.ts.Close() }

// URL is the REST base URL, with a trailing slash, as go-github's BaseURL
// wants it.
func (s *Server) URL() string { return s.ts.URL + "/" }

// GHESURL is the REST base URL in GitHub Enterprise Server form, ending in
// /api/v3/. The fake serves every route under both bases.
func (s *Server) GHESURL() string { return s.ts.URL + ghesPrefix + "/" }

// WebURL is where the fake's html_url links point (GitHub's web UI).
func (s *Server) WebURL() string { return s.ts.URL + "/" }

// Request is one request the fake served.
type Request struct {
	Method string
	// Path is the request path as sent, including any /api/v3 prefix.
	Path string
	// Pattern is "METHOD /route/template" as in GitHub's OpenAPI
	// description, or "UNKNOWN" for a request no route matched.
	Pattern  string
	Query    url.Values
	Header   http.Header
	Body     []byte
	Status   int
	Time     time.Time
	Duration time.Duration
}

// Requests returns a copy of every request served since New or the last
// ResetRequests, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// Count is the number of recorded requests whose Pattern is pattern, e.g.
// Count("POST /repos/{owner}/{repo}/check-runs"). Pattern "*" counts all.
func (s *Server) Count(pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if pattern == "*" || r.Pattern == pattern {
			n++
		}
	}
	return n
}

// ResetRequests forgets the recorded requests (state is kept), so a test can
// count only what one step did.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

type fault struct {
	status int
	header http.Header
	left   int
}

// FailNext makes the next n requests matching pattern ("METHOD /template",
// or "*" for any) answer status with a GitHub-style error body instead of
// being served. header lists extra response headers as name/value pairs,
// e.g. "Retry-After", "1". Faults for one pattern queue up in call order.
func (s *Server) FailNext(pattern string, status, n int, header ...string) {
	if len(header)%2 != 0 {
		panic("githubtest: FailNext headers must be name/value pairs")
	}
	h := http.Header{}
	for i := 0; i < len(header); i += 2 {
		h.Add(header[i], header[i+1])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[pattern] = append(s.faults[pattern], &fault{status: status, header: h, left: n})
}

// SetLatency adds d to every subsequent request before it is served, to
// make sequential round trips measurable.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// takeFault consumes one injected fault for pattern, if any is pending.
func (s *Server) takeFault(pattern string) *fault {
	for _, key := range []string{pattern, "*"} {
		q := s.faults[key]
		for len(q) > 0 && q[0].left <= 0 {
			q = q[1:]
		}
		s.faults[key] = q
		if len(q) > 0 {
			q[0].left--
			return q[0]
		}
	}
	return nil
}

// call is the per-request context handed to route handlers.
type call struct {
	s      *Server
	r      *http.Request
	route  *route
	params map[string]string
	query  url.Values
	body   []byte
	repo   *repository
	// actor is the login the credential acts as: the App's bot user for an
	// installation token, github-actions[bot] for a static token.
	actor string
	// app is the slug of the App behind the credential, which GitHub
	// records on check runs, comments and deployments.
	app string
	// installation is the id of the installation behind an installation
	// token; 0 for a static token or a JWT.
	installation int64
	base         string
	header       http.Header
}

// param returns a path parameter of the matched route.
func (c *call) param(name string) string { return c.params[name] }

// intParam parses a numeric path parameter; ok is false when it is not one.
func (c *call) intParam(name string) (int64, bool) {
	n, err := strconv.ParseInt(c.params[name], 10, 64)
	return n, err == nil
}

// decode unmarshals the request body into v.
func (c *call) decode(v any) error {
	if len(bytes.TrimSpace(c.body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		return fmt.Errorf("decoding %s body: %w", c.route.pattern, err)
	}
	return nil
}

// apiURL builds an API URL under the base the client used (plain or GHES).
func (c *call) apiURL(format string, a ...any) string {
	return c.base + fmt.Sprintf(format, a...)
}

type errorBody struct {
	Message          string       `json:"message"`
	Errors           []fieldError `json:"errors,omitempty"`
	DocumentationURL string       `json:"documentation_url"`
	Status           string       `json:"status"`
}

type fieldError struct {
	Resource string `json:"resource,omitempty"`
	Field    string `json:"field,omitempty"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
}

// fail is the GitHub error body for status with message.
func fail(status int, message string) (int, any) {
	return status, errorBody{Message: message, DocumentationURL: docsURL, Status: strconv.Itoa(status)}
}

// invalid is GitHub's 422 "Validation Failed" with one field error.
func invalid(resource, field, code, message string) (int, any) {
	return http.StatusUnprocessableEntity, errorBody{
		Message:          "Validation Failed",
		Errors:           []fieldError{{Resource: resource, Field: field, Code: code, Message: message}},
		DocumentationURL: docsURL,
		Status:           "422",
	}
}

func notFound() (int, any) { return fail(http.StatusNotFound, "Not Found") }

func badJSON() (int, any) { return fail(http.StatusBadRequest, "Problems parsing JSON") }

// capture buffers a response so the fake can add ETags, answer 304s,
// validate the body and record the final status before anything is sent.
type capture struct {
	status int
	header http.Header
	body   []byte
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.serveWeb(w, r) {
		return // a browser opening an html_url (web.go): not an API call
	}
	start := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		http.Error(w, "reading request body", http.StatusBadRequest)
		return
	}

	s.mu.Lock()
	latency := s.latency
	// The concurrency limit counts a request from here, before any
	// latency, until the handler returns; net/http completes the response
	// only after that, so a client going one request at a time is never
	// seen with two in flight.
	inst, busy := s.enterLocked(r.Header.Get("Authorization"))
	hook := s.inFlightHook
	s.mu.Unlock()
	defer s.leave(inst)
	if hook != nil && inst != 0 {
		hook(inst)
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}

	path := r.URL.EscapedPath()
	base := s.ts.URL
	if path == ghesPrefix || strings.HasPrefix(path, ghesPrefix+"/") {
		path = strings.TrimPrefix(path, ghesPrefix)
		base += ghesPrefix
	}
	rt, params := matchRoute(r.Method, path)

	s.mu.Lock()
	out := &capture{header: http.Header{}}
	pattern := "UNKNOWN"
	if rt != nil {
		pattern = rt.pattern
	}
	c := &call{s: s, r: r, route: rt, params: params, query: r.URL.Query(), body: body, base: base, header: out.header}
	injected := false
	if f := s.takeFault(pattern); f != nil {
		injected = true
		st, v := fail(f.status, faultMessage(f.status))
		s.encode(out, st, v)
		for k, vs := range f.header {
			out.header[k] = vs
		}
	} else if len(body) > maxBody {
		st, v := fail(http.StatusRequestEntityTooLarge, "Payload Too Large")
		s.encode(out, st, v)
	} else if busy {
		// Too many requests in flight: no window to wait for, so GitHub's
		// minimum Retry-After.
		st, v := s.refuseSecondary(out.header, 0)
		s.encode(out, st, v)
	} else if rt == nil {
		st, v := notFound()
		s.encode(out, st, v)
	} else {
		st, v := s.dispatch(c)
		s.encode(out, st, v)
	}
	if !injected && rt != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && out.status == http.StatusOK {
		s.conditional(r, out)
	}
	if s.check != nil && !injected && rt != nil && out.status != http.StatusNotModified {
		s.checkSchema(rt.pattern, out.status, out.body)
	}
	s.rateHeaders(out)
	s.requests = append(s.requests, Request{
		Method:   r.Method,
		Path:     r.URL.Path,
		Pattern:  pattern,
		Query:    r.URL.Query(),
		Header:   r.Header.Clone(),
		Body:     body,
		Status:   out.status,
		Time:     start,
		Duration: time.Since(start),
	})
	// Unlock before writing: a slow reader must not stall other clients.
	s.mu.Unlock()

	h := w.Header()
	for k, vs := range out.header {
		h[k] = vs
	}
	w.WriteHeader(out.status)
	if r.Method != http.MethodHead && len(out.body) > 0 {
		_, _ = w.Write(out.body)
	}
}

// faultMessage mirrors what GitHub says for the statuses tests inject most.
func faultMessage(status int) string {
	switch status {
	case http.StatusForbidden, http.StatusTooManyRequests:
		return "API rate limit exceeded"
	case http.StatusBadGateway:
		return "Server Error"
	default:
		return http.StatusText(status)
	}
}

// dispatch authenticates the call, resolves its repository and runs the
// route's handler.
func (s *Server) dispatch(c *call) (status int, body any) {
	// A handler bug must not leave the mutex locked and hang every test.
	defer func() {
		if p := recover(); p != nil {
			status, body = fail(http.StatusInternalServerError, fmt.Sprintf("githubtest: %s panicked: %v", c.route.pattern, p))
		}
	}()
	rt := c.route
	switch rt.auth {
	case authJWT:
		if err := s.verifyJWT(c.r.Header.Get("Authorization")); err != nil {
			return fail(http.StatusUnauthorized, err.Error())
		}
		c.actor = s.appSlug + "[bot]"
		c.app = s.appSlug
	case authToken:
		actor, app, instID, ok := s.tokenActor(c.r.Header.Get("Authorization"))
		if !ok {
			return fail(http.StatusUnauthorized, "Bad credentials")
		}
		c.actor, c.app, c.installation = actor, app, instID
		// Content-generating requests of an installation count toward
		// the secondary rate limits, whatever they then answer. The JWT
		// routes above (the token exchange among them) do not.
		if instID != 0 && isWrite(c.r.Method) {
			if wait := s.admitWriteLocked(instID); wait > 0 {
				return s.refuseSecondary(c.header, wait)
			}
		}
		if rt.repoScoped {
			repo := s.repos[repoKey(c.param("owner"), c.param("repo"))]
			// GitHub hides repositories a credential cannot see behind 404.
			if repo == nil || (instID != 0 && repo.installationID != instID) {
				return notFound()
			}
			c.repo = repo
		}
	}
	if rt.repoScoped && c.repo == nil {
		repo := s.repos[repoKey(c.param("owner"), c.param("repo"))]
		if repo == nil {
			return notFound()
		}
		c.repo = repo
	}
	return rt.handler(c)
}

// encode marshals v as the JSON response body with status; a nil v sends
// no body, as for 204.
func (s *Server) encode(out *capture, status int, v any) {
	out.status = status
	if v == nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		out.status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Message: "githubtest: encoding response: " + err.Error(), DocumentationURL: docsURL, Status: "500"})
	}
	out.header.Set("Content-Type", "application/json; charset=utf-8")
	out.body = b
}

// conditional adds an ETag and turns a matching If-None-Match into 304, the
// way clients save rate limit on repeated reads.
func (s *Server) conditional(r *http.Request, out *capture) {
	sum := sha256.Sum256(out.body)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	out.header.Set("ETag", etag)
	for _, candidate := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == etag || candidate == "*" {
			out.status = http.StatusNotModified
			out.body = nil
			out.header.Del("Content-Type")
			return
		}
	}
}

// rateHeaders adds GitHub's rate-limit headers; 304s are free, as on
// GitHub. An injected fault's own X-RateLimit-* headers win.
func (s *Server) rateHeaders(out *capture) {
	const limit = 5000
	if out.status != http.StatusNotModified {
		s.rateUsed++
	}
	set := func(k, v string) {
		if out.header.Get(k) == "" {
			out.header.Set(k, v)
		}
	}
	set("X-RateLimit-Limit", strconv.Itoa(limit))
	set("X-RateLimit-Remaining", strconv.Itoa(max(limit-s.rateUsed, 0)))
	set("X-RateLimit-Used", strconv.Itoa(s.rateUsed))
	set("X-RateLimit-Reset", strconv.FormatInt(s.now().Add(time.Hour).Unix(), 10))
	set("X-RateLimit-Resource", "core")
	set("X-GitHub-Media-Type", "github.v3; format=json")
	set("X-GitHub-Request-Id", s.requestIDLocked())
}

// requestIDLocked is the X-GitHub-Request-Id of the request being served.
func (s *Server) requestIDLocked() string { return fmt.Sprintf("FAKE:%d", len(s.requests)+1) }

// paginate slices items by the request's per_page and page, GitHub's
// defaults and cap included, and sets the Link header GitHub would send.
func paginate[T any](c *call, items []T) []T {
	perPage := 30
	if v, err := strconv.Atoi(c.query.Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	page := 1
	if v, err := strconv.Atoi(c.query.Get("page")); err == nil && v > 0 {
		page = v
	}
	last := max((len(items)+perPage-1)/perPage, 1)
	link := func(p int, rel string) string {
		q := c.r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		if c.query.Has("per_page") {
			q.Set("per_page", strconv.Itoa(perPage))
		}
		return fmt.Sprintf(`<%s%s?%s>; rel="%s"`, c.s.ts.URL, c.r.URL.EscapedPath(), q.Encode(), rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(min(page-1, last), "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"))
	}
	if len(links) > 0 {
		c.header.Set("Link", strings.Join(links, ", "))
	}
	lo := (page - 1) * perPage
	if lo >= len(items) {
		return []T{}
	}
	return items[lo:min(lo+perPage, len(items))]
}

// newID hands out ids unique across all resources, as GitHub's are.
func (s *Server) newID() int64 {
	s.lastID++
	return s.lastID
}

// timestamp formats t as GitHub does (RFC 3339, UTC, whole seconds).
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// nullTime is a timestamp or JSON null for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return timestamp(t)
}

// nullString is s or JSON null when empty, for GitHub's nullable strings.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nodeID imitates GitHub's opaque GraphQL ids; clients must not parse them.
func nodeID(kind string, id int64) string {
	return fmt.Sprintf("%s_kwDO%08d", kind, id)
}

func repoKey(owner, name string) string { return strings.ToLower(owner + "/" + name) }

// sortedKeys returns m's keys in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
