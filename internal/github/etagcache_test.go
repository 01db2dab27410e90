package github

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	gh "github.com/google/go-github/v60/github"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shipbot/shipbot/internal/metrics"
)

// etagServer behaves like GitHub as far as conditional requests go: every
// answer to a GET (and, to prove the cache ignores them, to any other
// method) carries an ETag that is the quoted hash of the body, a matching
// If-None-Match gets a 304 with no body, and X-RateLimit-* headers count
// every request but the 304s. The body of a path is its content with
// "{who}" replaced by the credential and "{path}" by the path.
//
// Paths containing /missing answer 404, /noetag send no ETag, /nostore
// send Cache-Control: no-store; a query chunked=1 sends the body without
// a Content-Length.
type etagServer struct {
	*httptest.Server

	mu      sync.Mutex
	content map[string]string // path → content; default etagDefault
	fails   map[string]int    // path → 502s to answer first
	used    int
	reqs    []seenRequest
}

type seenRequest struct {
	Method, Path, Auth, IfNoneMatch string
	Status                          int
}

const etagDefault = `{"number":1,"path":"{path}","who":"{who}","v":"v1"}`

func newETagServer(t *testing.T) *etagServer {
	t.Helper()
	s := &etagServer{content: map[string]string{}, fails: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *etagServer) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := seenRequest{Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization"), IfNoneMatch: r.Header.Get("If-None-Match")}
	status, body := s.answer(w, r)
	seen.Status = status
	s.reqs = append(s.reqs, seen)
	if status != http.StatusNotModified {
		s.used++
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", strconv.Itoa(5000-s.used))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.used))
	h.Set("X-RateLimit-Reset", "1900000000")
	h.Set("X-RateLimit-Resource", "core")
	h.Set("X-GitHub-Request-Id", fmt.Sprintf("REQ-%d", len(s.reqs)))
	h.Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
	if body != "" {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	if r.URL.Query().Get("chunked") == "1" {
		w.WriteHeader(status)
		w.(http.Flusher).Flush()
	} else {
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
	}
	_, _ = io.WriteString(w, body)
}

func (s *etagServer) answer(w http.ResponseWriter, r *http.Request) (int, string) {
	p := r.URL.Path
	if s.fails[p] > 0 {
		s.fails[p]--
		return http.StatusBadGateway, `{"message":"Server Error"}`
	}
	if strings.Contains(p, "/missing") {
		return http.StatusNotFound, `{"message":"Not Found"}`
	}
	body := s.bodyLocked(p, r.Header.Get("Authorization"))
	if strings.Contains(p, "/nostore") {
		w.Header().Set("Cache-Control", "no-store")
	} else {
		w.Header().Set("Cache-Control", "private, max-age=60, s-maxage=60")
	}
	if strings.Contains(p, "/noetag") {
		return http.StatusOK, body
	}
	etag := etagOf(body)
	w.Header().Set("ETag", etag)
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		for _, c := range strings.Split(r.Header.Get("If-None-Match"), ",") {
			if strings.TrimPrefix(strings.TrimSpace(c), "W/") == strings.TrimPrefix(etag, "W/") {
				return http.StatusNotModified, ""
			}
		}
	}
	return http.StatusOK, body
}

func (s *etagServer) bodyLocked(path, auth string) string {
	c, ok := s.content[path]
	if !ok {
		c = etagDefault
	}
	_, who, _ := strings.Cut(auth, " ")
	return strings.NewReplacer("{path}", path, "{who}", who).Replace(c)
}

func etagOf(body string) string {
	sum := sha256.Sum256([]byte(body))
	return `W/"` + hex.EncodeToString(sum[:16]) + `"`
}

func (s *etagServer) set(path, content string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.content[path] = content
}

func (s *etagServer) failNext(path string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails[path] = n
}

func (s *etagServer) requests() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.reqs...)
}

func (s *etagServer) last() seenRequest {
	r := s.requests()
	return r[len(r)-1]
}

// cachedStack is the client stack with one shared cache: the transport
// under test, and a go-github client per token over it.
func cachedStack(t *testing.T, srv *etagServer, opts CacheOptions, calls *CallCounter, tokens ...string) (*etagCache, []*gh.Client) {
	t.Helper()
	tr := NewTransport(nil, RetryPolicy{Sleep: (&fakeSleep{}).Sleep}, calls, quietLogger())
	c, ok := newETagCache(tr, opts).(*etagCache)
	if !ok {
		t.Fatal("cache is off")
	}
	base, upload, err := parseBaseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var clients []*gh.Client
	for _, tok := range tokens {
		clients = append(clients, newClient(c, base, upload).WithAuthToken(tok))
	}
	return c, clients
}

type thing struct {
	Number int    `json:"number"`
	Path   string `json:"path"`
	Who    string `json:"who"`
	V      string `json:"v"`
}

func getThing(t *testing.T, ctx context.Context, c *gh.Client, path string) (thing, *gh.Response) {
	t.Helper()
	req, err := c.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var v thing
	resp, err := c.Do(ctx, req, &v)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return v, resp
}

func TestETagCacheRevalidates(t *testing.T) {
	srv := newETagServer(t)
	calls := &CallCounter{}
	c, err := NewTokenClient(Options{BaseURL: srv.URL, Calls: calls, Logger: quietLogger()}, "ghs_action")
	if err != nil {
		t.Fatal(err)
	}
	before304 := testutil.ToFloat64(metrics.GitHubCalls.WithLabelValues(prClass, "304"))
	before200 := testutil.ToFloat64(metrics.GitHubCalls.WithLabelValues(prClass, "200"))
	tally := &Tally{}
	ctx := WithTally(context.Background(), tally)
	const path = "/repos/acme/api/pulls/1"

	pr1, resp1, err := c.PullRequests.Get(ctx, "acme", "api", 1)
	if err != nil {
		t.Fatal(err)
	}
	first := srv.last()
	if first.Status != 200 || first.IfNoneMatch != "" {
		t.Fatalf("first GET: %+v", first)
	}

	pr2, resp2, err := c.PullRequests.Get(ctx, "acme", "api", 1)
	if err != nil {
		t.Fatalf("second GET: %v", err)
	}
	second := srv.last()
	if second.Status != http.StatusNotModified || second.IfNoneMatch != resp1.Header.Get("ETag") {
		t.Fatalf("second GET reached the server as %+v, want a 304 to If-None-Match %s", second, resp1.Header.Get("ETag"))
	}
	if resp2.StatusCode != 200 || pr2.GetNumber() != 1 || pr2.GetNumber() != pr1.GetNumber() {
		t.Errorf("go-github saw %d, PR #%d", resp2.StatusCode, pr2.GetNumber())
	}
	// The rate-limit headers are the 304's: fresh, and the 304 was free.
	if resp2.Rate.Remaining != resp1.Rate.Remaining || resp2.Header.Get("X-GitHub-Request-Id") != "REQ-2" {
		t.Errorf("revalidated response: remaining %d (first %d), request id %q", resp2.Rate.Remaining, resp1.Rate.Remaining, resp2.Header.Get("X-GitHub-Request-Id"))
	}
	if resp2.Header.Get("Content-Type") == "" || resp2.ContentLength <= 0 {
		t.Errorf("revalidated response lost its representation headers: %v", resp2.Header)
	}

	// A 304 is an API call: counted, tallied, and labelled 304.
	if got := calls.Count(prClass); got != 2 {
		t.Errorf("counted %d calls, want 2", got)
	}
	if d := testutil.ToFloat64(metrics.GitHubCalls.WithLabelValues(prClass, "304")) - before304; d != 1 {
		t.Errorf("metric status 304 grew by %v, want 1", d)
	}
	if d := testutil.ToFloat64(metrics.GitHubCalls.WithLabelValues(prClass, "200")) - before200; d != 1 {
		t.Errorf("metric status 200 grew by %v, want 1", d)
	}
	if tally.N() != 2 {
		t.Errorf("tally = %d, want 2", tally.N())
	}

	// A change gives a new ETag: the answer is a 200 that replaces the entry,
	// and the next read revalidates against the new ETag.
	srv.set(path, `{"number":1,"v":"v2"}`)
	var got []string
	for range 2 {
		req, _ := c.NewRequest(http.MethodGet, "repos/acme/api/pulls/1", nil)
		var v thing
		if _, err := c.Do(ctx, req, &v); err != nil {
			t.Fatal(err)
		}
		l := srv.last()
		got = append(got, fmt.Sprintf("%s→%d:%s", l.IfNoneMatch, l.Status, v.V))
	}
	newETag := etagOf(`{"number":1,"v":"v2"}`)
	want := []string{resp1.Header.Get("ETag") + "→200:v2", newETag + "→304:v2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the change: %q, want %q", got, want)
	}
}

func TestETagCacheSeparatesCredentials(t *testing.T) {
	srv := newETagServer(t)
	cache, cs := cachedStack(t, srv, CacheOptions{}, nil, "ghs_alpha", "ghs_beta")
	ctx := context.Background()
	var log []string
	for _, i := range []int{0, 1, 0, 1} {
		v, _ := getThing(t, ctx, cs[i], "repos/acme/api/pulls/1")
		l := srv.last()
		log = append(log, fmt.Sprintf("%s:%d:%t", v.Who, l.Status, l.IfNoneMatch != ""))
	}
	want := "[ghs_alpha:200:false ghs_beta:200:false ghs_alpha:304:true ghs_beta:304:true]"
	if fmt.Sprint(log) != want {
		t.Errorf("got %v, want %s", log, want)
	}
	if _, n, _ := cache.snapshot(); n != 2 {
		t.Errorf("%d entries, want one per credential", n)
	}
}

func TestETagCacheDoesNotStore(t *testing.T) {
	srv := newETagServer(t)
	send := func(method, path string, header ...string) func(*testing.T, http.RoundTripper) *http.Response {
		return func(t *testing.T, rt http.RoundTripper) *http.Response {
			req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(""))
			if err != nil {
				t.Fatal(err)
			}
			if method == http.MethodGet {
				req.Body = nil
			}
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			resp, err := (&http.Client{Transport: rt}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && len(b) == 0 && method != http.MethodHead {
				t.Errorf("%s %s: empty body", method, path)
			}
			return resp
		}
	}
	const tok = "token ghs_inst"
	jwt := "Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjM0In0.c2lnbmF0dXJl"
	tests := []struct {
		name string
		do   func(*testing.T, http.RoundTripper) *http.Response
	}{
		{"POST", send(http.MethodPost, "/repos/acme/api/issues/1/comments", "Authorization", tok)},
		{"PATCH", send(http.MethodPatch, "/repos/acme/api/issues/1", "Authorization", tok)},
		{"PUT", send(http.MethodPut, "/repos/acme/api/pulls/1/merge", "Authorization", tok)},
		{"HEAD", send(http.MethodHead, "/repos/acme/api", "Authorization", tok)},
		{"no Authorization", send(http.MethodGet, "/repos/acme/api")},
		{"App JWT", send(http.MethodGet, "/repos/acme/api/installation", "Authorization", jwt)},
		{"token endpoint", send(http.MethodGet, "/app/installations/1/access_tokens", "Authorization", tok)},
		{"token endpoint on GHES", send(http.MethodGet, "/api/v3/app/installations/1/access_tokens", "Authorization", tok)},
		{"webhook config", send(http.MethodGet, "/repos/acme/api/hooks/1/config", "Authorization", tok)},
		{"secrets", send(http.MethodGet, "/repos/acme/api/actions/secrets", "Authorization", tok)},
		{"no ETag", send(http.MethodGet, "/repos/acme/api/noetag", "Authorization", tok)},
		{"no-store", send(http.MethodGet, "/repos/acme/api/nostore", "Authorization", tok)},
		{"404", send(http.MethodGet, "/repos/acme/missing", "Authorization", tok)},
		{"request no-store", send(http.MethodGet, "/repos/acme/api", "Authorization", tok, "Cache-Control", "no-store")},
		{"range", send(http.MethodGet, "/repos/acme/api", "Authorization", tok, "Range", "bytes=0-1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache, _ := cachedStack(t, srv, CacheOptions{}, nil)
			n0 := len(srv.requests())
			for range 2 {
				tt.do(t, cache)
			}
			reqs := srv.requests()[n0:]
			if len(reqs) != 2 {
				t.Fatalf("%d requests reached the server", len(reqs))
			}
			if reqs[1].IfNoneMatch != "" {
				t.Errorf("second request was conditional: %+v", reqs[1])
			}
			if st, n, held := cache.snapshot(); n != 0 || held != 0 || st.Stored != 0 {
				t.Errorf("cache holds %d entries, %d bytes, stats %+v", n, held, st)
			}
		})
	}

	// A caller that makes its own conditional request gets GitHub's raw 304.
	t.Run("caller's own If-None-Match", func(t *testing.T) {
		cache, _ := cachedStack(t, srv, CacheOptions{}, nil)
		first := send(http.MethodGet, "/repos/acme/own", "Authorization", tok)(t, cache)
		resp := send(http.MethodGet, "/repos/acme/own", "Authorization", tok, "If-None-Match", first.Header.Get("ETag"))(t, cache)
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("status %d, want the server's 304", resp.StatusCode)
		}
	})
}

func TestETagCacheSizeCap(t *testing.T) {
	srv := newETagServer(t)
	const limit = 1024
	tests := []struct {
		name   string
		path   string
		size   int
		stored bool
	}{
		{"at the cap", "/repos/acme/api/contents/a", limit, true},
		{"over the cap", "/repos/acme/api/contents/b", limit + 1, false},
		{"far over the cap", "/repos/acme/api/contents/c", 40 * limit, false},
		{"over the cap, no Content-Length", "/repos/acme/api/contents/d?chunked=1", 3 * limit, false},
		{"under the cap, no Content-Length", "/repos/acme/api/contents/e?chunked=1", limit - 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache, _ := cachedStack(t, srv, CacheOptions{MaxEntryBytes: limit}, nil)
			p, _, _ := strings.Cut(tt.path, "?")
			content := strings.Repeat("x", tt.size)
			srv.set(p, content)
			for i := range 2 {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
				req.Header.Set("Authorization", "token ghs_inst")
				resp, err := cache.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != content || resp.StatusCode != 200 {
					t.Fatalf("GET %d: status %d, %d bytes (want %d), err %v", i+1, resp.StatusCode, len(b), len(content), err)
				}
			}
			if got := srv.last().IfNoneMatch != ""; got != tt.stored {
				t.Errorf("second GET conditional = %t, want %t", got, tt.stored)
			}
			if _, n, _ := cache.snapshot(); (n == 1) != tt.stored {
				t.Errorf("%d entries", n)
			}
		})
	}
}

func TestETagCacheLRU(t *testing.T) {
	srv := newETagServer(t)
	const maxBytes = 8 << 10
	cache, cs := cachedStack(t, srv, CacheOptions{MaxBytes: maxBytes}, nil, "ghs_inst")
	c := cs[0]
	ctx := context.Background()
	pad := strings.Repeat("p", 1000)
	hot := "repos/acme/api/pulls/0"
	srv.set("/"+hot, `{"v":"hot","pad":"`+pad+`"}`)
	getThing(t, ctx, c, hot)
	for i := 1; i <= 40; i++ {
		p := fmt.Sprintf("repos/acme/api/pulls/%d", i)
		srv.set("/"+p, `{"v":"cold","pad":"`+pad+`"}`)
		getThing(t, ctx, c, p)
		// Reading the hot entry keeps it at the front of the LRU.
		getThing(t, ctx, c, hot)
		if l := srv.last(); l.Status != http.StatusNotModified {
			t.Fatalf("hot entry evicted after %d cold reads: %+v", i, l)
		}
		if _, _, held := cache.snapshot(); held > maxBytes {
			t.Fatalf("cache holds %d bytes, over the cap of %d", held, maxBytes)
		}
	}
	st, n, held := cache.snapshot()
	if st.Evicted == 0 || n < 2 || held > maxBytes {
		t.Fatalf("stats %+v, %d entries, %d bytes", st, n, held)
	}
	// The oldest cold entry is gone, the newest is there.
	getThing(t, ctx, c, "repos/acme/api/pulls/1")
	if l := srv.last(); l.IfNoneMatch != "" {
		t.Errorf("oldest entry survived: %+v", l)
	}
	getThing(t, ctx, c, "repos/acme/api/pulls/40")
	if l := srv.last(); l.Status != http.StatusNotModified {
		t.Errorf("newest entry evicted: %+v", l)
	}

	// A cap smaller than one entry stores nothing, and a negative cap turns
	// the cache off.
	tiny, _ := cachedStack(t, srv, CacheOptions{MaxBytes: 100}, nil)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/repos/acme/api/pulls/0", nil)
	req.Header.Set("Authorization", "token ghs_inst")
	resp, err := tiny.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, n, held := tiny.snapshot(); n != 0 || held != 0 {
		t.Errorf("tiny cache holds %d entries, %d bytes", n, held)
	}
	base := NewTransport(nil, RetryPolicy{}, nil, nil)
	if got := newETagCache(base, CacheOptions{MaxBytes: -1}); got != base {
		t.Errorf("MaxBytes -1 returned %T, want the transport itself", got)
	}
}

func TestETagCacheConcurrent(t *testing.T) {
	srv := newETagServer(t)
	tokens := []string{"ghs_a", "ghs_b", "ghs_c"}
	cache, cs := cachedStack(t, srv, CacheOptions{MaxBytes: 4 << 10}, nil, tokens...)
	ctx := context.Background()
	paths := []string{"repos/acme/api/pulls/1", "repos/acme/api/pulls/2", "repos/acme/api/pulls/3", "repos/acme/api/pulls/4", "repos/acme/api/pulls/5"}
	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Only the first two paths change, as fast as the writer can:
			// the others stay put, so their reads must be revalidated
			// (304s) however the goroutines interleave.
			p := paths[i%2]
			srv.set("/"+p, fmt.Sprintf(`{"number":1,"path":"{path}","who":"{who}","v":"v%d"}`, i))
		}
	}()
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := g % len(cs)
			for n := range 40 {
				p := paths[(g+n)%len(paths)]
				req, _ := cs[i].NewRequest(http.MethodGet, p, nil)
				var v thing
				if _, err := cs[i].Do(ctx, req, &v); err != nil {
					t.Error(err)
					return
				}
				if v.Path != "/"+p || v.Who != tokens[i] || !strings.HasPrefix(v.V, "v") {
					t.Errorf("GET %s as %s got %+v", p, tokens[i], v)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	writer.Wait()
	st, n, held := cache.snapshot()
	if held > 4<<10 || n > len(paths)*len(tokens) {
		t.Errorf("%d entries, %d bytes", n, held)
	}
	if st.Revalidated == 0 {
		t.Errorf("no 304 was served from the cache: %+v", st)
	}
}

func TestETagCacheRetries(t *testing.T) {
	srv := newETagServer(t)
	calls := &CallCounter{}
	sleep := &fakeSleep{}
	c, err := NewTokenClient(Options{BaseURL: srv.URL, Calls: calls, Logger: quietLogger(), Retry: RetryPolicy{Sleep: sleep.Sleep}}, "ghs_action")
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]float64{}
	for _, s := range []string{"200", "304", "502"} {
		before[s] = testutil.ToFloat64(metrics.GitHubCalls.WithLabelValues(prClass, s))
	}
	ctx := context.Background()
	for range 2 {
		srv.failNext("/repos/acme/api/pulls/7", 1)
		pr, resp, err := c.PullRequests.Get(ctx, "acme", "api", 7)
		if err != nil || resp.StatusCode != 200 || pr.GetNumber() != 1 {
			t.Fatalf("Get = %v, %v", resp, err)
		}
	}
	var got []string
	for _, r := range srv.requests() {
		got = append(got, fmt.Sprintf("%d:%t", r.Status, r.IfNoneMatch != ""))
	}
	if want := "[502:false 200:false 502:true 304:true]"; fmt.Sprint(got) != want {
		t.Errorf("server saw %v, want %s", got, want)
	}
	if calls.Count(prClass) != 4 || len(sleep.Waits()) != 2 {
		t.Errorf("calls %v, waits %v", calls.Snapshot(), sleep.Waits())
	}
	for s, want := range map[string]float64{"200": 1, "304": 1, "502": 2} {
		if d := testutil.ToFloat64(metrics.GitHubCalls.WithLabelValues(prClass, s)) - before[s]; d != want {
			t.Errorf("metric status %s grew by %v, want %v", s, d, want)
		}
	}
}

func TestCacheKeyFor(t *testing.T) {
	mk := func(url string, kv ...string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, url, nil)
		r.Header.Set("Authorization", "token ghs_x")
		r.Header.Set("Accept", "application/vnd.github.v3+json")
		for i := 0; i+1 < len(kv); i += 2 {
			r.Header.Set(kv[i], kv[i+1])
		}
		return r
	}
	key := func(r *http.Request) cacheKey {
		k, ok := cacheKeyFor(r)
		if !ok {
			t.Fatalf("%s not cacheable", r.URL)
		}
		return k
	}
	base := key(mk("https://api.github.com/repos/a/b/contents/x?ref=main"))
	if base != key(mk("https://api.github.com/repos/a/b/contents/x?ref=main")) {
		t.Error("same request, different keys")
	}
	for name, r := range map[string]*http.Request{
		"query":       mk("https://api.github.com/repos/a/b/contents/x?ref=dev"),
		"host (GHES)": mk("https://ghe.example/api/v3/repos/a/b/contents/x?ref=main"),
		"credential":  mk("https://api.github.com/repos/a/b/contents/x?ref=main", "Authorization", "token ghs_y"),
		"media type":  mk("https://api.github.com/repos/a/b/contents/x?ref=main", "Accept", "application/vnd.github.raw"),
		"API version": mk("https://api.github.com/repos/a/b/contents/x?ref=main", "X-GitHub-Api-Version", "2022-11-28"),
	} {
		if key(r) == base {
			t.Errorf("%s: shares the key", name)
		}
	}
	// The key is a hash: the credential is not in it.
	if strings.Contains(string(base[:]), "ghs_x") {
		t.Error("key contains the token")
	}
	if !isJWTCredential("Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.c2ln") || isJWTCredential("Bearer ghs_abc") || isJWTCredential("token ghs_abc") {
		t.Error("isJWTCredential")
	}
}

// A stored body is handed out intact again and again, whatever the callers
// of earlier responses did with theirs.
func TestETagCacheBodyIndependence(t *testing.T) {
	srv := newETagServer(t)
	cache, _ := cachedStack(t, srv, CacheOptions{}, nil)
	var bodies []string
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/repos/acme/api/pulls/9", nil)
		req.Header.Set("Authorization", "token ghs_inst")
		resp, err := cache.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var v thing
		if err := json.Unmarshal(b, &v); err != nil || v.Path != "/repos/acme/api/pulls/9" {
			t.Fatalf("body %q: %v", b, err)
		}
		if resp.ContentLength != int64(len(b)) || resp.Header.Get("Content-Length") != strconv.Itoa(len(b)) {
			t.Errorf("Content-Length %d / %q for %d bytes", resp.ContentLength, resp.Header.Get("Content-Length"), len(b))
		}
		bodies = append(bodies, string(b))
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Errorf("bodies differ: %q", bodies)
	}
	if st, _, _ := cache.snapshot(); st.Revalidated != 2 || st.Stored != 1 {
		t.Errorf("stats %+v", st)
	}
}
