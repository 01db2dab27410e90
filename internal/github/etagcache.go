package github

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Defaults for a zero CacheOptions.
const (
	DefaultCacheBytes      = 32 << 20
	DefaultCacheEntryBytes = 1 << 20
)

// entryOverhead approximates what one stored response costs beyond its
// body and header bytes (map slot, list element, slice and string headers),
// so that many tiny entries are still bounded by MaxBytes.
const entryOverhead = 256

// CacheOptions bounds the conditional-request (ETag) cache. Zero fields take
// the defaults above.
type CacheOptions struct {
	// MaxBytes bounds the memory of all stored responses together (bodies,
	// headers and bookkeeping); the least recently used ones are dropped to
	// stay under it. Negative turns the cache off.
	MaxBytes int64
	// MaxEntryBytes is the largest response body stored; larger responses
	// are passed on untouched and fetched in full every time.
	MaxEntryBytes int64
}

// etagCache is an always-revalidating cache of GET responses: it remembers
// the body of each 200 that carried an ETag, sends that ETag back as
// If-None-Match on the next GET of the same resource, and when GitHub
// answers 304 Not Modified, hands the caller the remembered body as a
// normal 200. It never answers from memory without asking GitHub, so a gate
// decision always rests on GitHub's current facts; what it saves is rate
// limit (GitHub does not charge an authorised request that ends in 304
// against the primary rate limit) and response bytes, not round trips.
//
// # Why not an off-the-shelf HTTP cache
//
// RFC 9111 caches such as github.com/gregjones/httpcache serve a stored
// response without contacting the server while it is fresh. GitHub's REST
// responses carry freshness: authenticated GETs typically come with
// "Cache-Control: private, max-age=60, s-maxage=60" (anonymous ones with
// "public, ..."), and httpcache, being a private cache, honours max-age and
// so would answer repeated reads for up to a minute with what GitHub said
// earlier: a review dismissed or a check that turned red in that minute
// would be invisible to the gate. httpcache also keys on the URL alone and
// tells credentials apart through Vary, by keeping each request's
// Authorization value in the stored response — a token in memory for as
// long as the entry lives. The rules here are short enough to write down:
// always revalidate, key on a hash of the credential, bound memory.
//
// # Where it sits
//
//	go-github → auth (ghinstallation or WithAuthToken) → etagCache → retry/count transport → http.Transport
//
// Below the auth layer, because the key must include the credential, which
// only exists once ghinstallation or go-github's WithAuthToken has set
// Authorization. Above the retry/count transport, because that transport
// must see what really went over the wire: a 304 is an API call, counted
// in the CallCounter and the context's Tally and recorded as status "304"
// in the metric, and the cache turns it into a 200 only after that. Were
// the cache underneath, every 304 would be counted as a 200, and a retry
// would re-enter the cache instead of repeating the conditional request.
// Retries keep working: the retry transport clones the conditional request,
// If-None-Match included, for every attempt, and the cache only looks at
// the final outcome.
//
// # What is stored
//
// GET requests that carry an Authorization header, answered 200 with an
// ETag, with a body of at most MaxEntryBytes, and not marked no-store. Not
// stored: any other method; error and redirect responses; requests without
// Authorization (GitHub only waives the rate-limit cost of a 304 for
// authorised requests, and shipbot makes no anonymous calls on purpose);
// App JWT requests (ghinstallation signs a new JWT for every request, so
// the key would change every second and the entries would never be read
// again; the App client is built without the cache anyway); requests
// that already carry their own validators or a Range; the installation
// token endpoint and the webhook and secret endpoints, whatever the method,
// so that nothing credential-like outlives the call that read it.
//
// The key is a SHA-256 over method, full URL (with query), the
// Authorization header and the request headers GitHub varies the
// representation on (Accept, X-GitHub-Api-Version, Accept-Encoding). Only
// the hash is kept, never the credential. Installation tokens rotate
// hourly, which simply starts a new set of keys; the old entries age out
// of the LRU.
type etagCache struct {
	next     http.RoundTripper
	maxBytes int64
	maxEntry int64

	mu      sync.Mutex
	entries map[cacheKey]*list.Element // element values are *cacheEntry
	lru     *list.List                 // front is the most recently used
	bytes   int64
	stats   cacheStats
}

type cacheKey [sha256.Size]byte

// cacheEntry is one stored response. Entries are never modified after they
// are stored, so a request may keep using one that was evicted meanwhile.
type cacheEntry struct {
	key    cacheKey
	etag   string
	header http.Header
	body   []byte
	size   int64
}

// cacheStats counts what the cache did, for tests and debugging.
type cacheStats struct {
	Revalidated int // 304s answered with a stored body
	Stored      int // 200s stored
	Evicted     int // entries dropped to stay under MaxBytes
}

// newETagCache wraps next in a cache bounded by opts, or returns next when
// the cache is turned off.
func newETagCache(next http.RoundTripper, opts CacheOptions) http.RoundTripper {
	if opts.MaxBytes < 0 {
		return next
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultCacheBytes
	}
	if opts.MaxEntryBytes <= 0 {
		opts.MaxEntryBytes = DefaultCacheEntryBytes
	}
	return &etagCache{
		next:     next,
		maxBytes: opts.MaxBytes,
		maxEntry: min(opts.MaxEntryBytes, opts.MaxBytes),
		entries:  make(map[cacheKey]*list.Element),
		lru:      list.New(),
	}
}

func (c *etagCache) RoundTrip(req *http.Request) (*http.Response, error) {
	key, ok := cacheKeyFor(req)
	if !ok {
		return c.next.RoundTrip(req)
	}
	ent := c.get(key)
	out := req
	if ent != nil {
		// Per the RoundTripper contract the caller's request is not
		// modified; the clone carries the validator.
		out = req.Clone(req.Context())
		out.Header.Set("If-None-Match", ent.etag)
	}
	resp, err := c.next.RoundTrip(out)
	if err != nil {
		// A failed call says nothing about the resource: keep the entry.
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotModified && ent != nil:
		drainClose(resp.Body)
		c.mu.Lock()
		c.stats.Revalidated++
		c.mu.Unlock()
		return ent.response(req, resp), nil
	case resp.StatusCode == http.StatusOK:
		return c.store(key, resp), nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		// The resource is gone (or no longer visible to this credential):
		// free the memory. Other errors (rate limits, 5xx) leave the entry,
		// which is only ever used after GitHub confirms it with a 304.
		if ent != nil {
			c.remove(key, ent)
		}
	}
	return resp, nil
}

// store keeps a 200 response if it is cacheable and returns the response to
// pass on, whose body reads exactly what the server sent.
func (c *etagCache) store(key cacheKey, resp *http.Response) *http.Response {
	etag := resp.Header.Get("ETag")
	if etag == "" || hasDirective(resp.Header, "no-store") || resp.ContentLength > c.maxEntry || resp.Body == nil {
		c.remove(key, nil) // whatever was stored is outdated now
		return resp
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxEntry+1))
	if err != nil || int64(len(body)) > c.maxEntry {
		// Too big to keep, or the read failed: put the bytes back in front
		// of the rest (or of the error) and pass the response on.
		rest := io.Reader(resp.Body)
		if err != nil {
			rest = errReader{err}
		}
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(body), rest), resp.Body}
		c.remove(key, nil)
		return resp
	}
	_ = resp.Body.Close()
	// The stored slice is shared with the reader handed to the caller;
	// neither ever writes to it.
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))

	h := storedHeader(resp.Header)
	e := &cacheEntry{key: key, etag: etag, header: h, body: body}
	e.size = int64(len(body)+len(etag)+headerBytes(h)) + entryOverhead

	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.removeLocked(el)
	}
	if e.size > c.maxBytes {
		return resp
	}
	c.entries[key] = c.lru.PushFront(e)
	c.bytes += e.size
	c.stats.Stored++
	for c.bytes > c.maxBytes {
		c.removeLocked(c.lru.Back())
		c.stats.Evicted++
	}
	return resp
}

// get returns the entry for key, marking it most recently used, or nil.
func (c *etagCache) get(key cacheKey) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cacheEntry)
}

// remove drops the entry for key; when only is not nil, only if that is the
// entry still stored (a concurrent request may have stored a newer one).
func (c *etagCache) remove(key cacheKey, only *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok || (only != nil && el.Value.(*cacheEntry) != only) {
		return
	}
	c.removeLocked(el)
}

func (c *etagCache) removeLocked(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.entries, e.key)
	c.bytes -= e.size
}

// snapshot returns the counters, the number of entries and the bytes held.
func (c *etagCache) snapshot() (s cacheStats, entries int, held int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats, len(c.entries), c.bytes
}

// response builds the 200 handed to the caller when GitHub confirmed the
// entry with notModified: the stored status, headers and body, updated with
// the 304's headers (fresh X-RateLimit-*, Date, X-GitHub-Request-Id), as
// RFC 9111 section 4.3.4 updates a stored response, except those that
// describe the 304's own (empty) content.
func (e *cacheEntry) response(req *http.Request, notModified *http.Response) *http.Response {
	h := e.header.Clone()
	for k, vs := range notModified.Header {
		switch k {
		case "Content-Length", "Content-Type", "Content-Encoding", "Content-Range", "Transfer-Encoding":
			continue
		}
		if !storable(k) {
			continue
		}
		h[k] = append([]string(nil), vs...)
	}
	h.Set("Content-Length", strconv.Itoa(len(e.body)))
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         notModified.Proto,
		ProtoMajor:    notModified.ProtoMajor,
		ProtoMinor:    notModified.ProtoMinor,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(e.body)),
		ContentLength: int64(len(e.body)),
		Request:       req,
		TLS:           notModified.TLS,
	}
}

// cacheKeyFor returns the key of a cacheable request, or false when the
// request must bypass the cache (see etagCache).
func cacheKeyFor(req *http.Request) (cacheKey, bool) {
	if req.Method != http.MethodGet || req.URL == nil || sensitivePath(req.URL.Path) {
		return cacheKey{}, false
	}
	h := req.Header
	auth := h.Get("Authorization")
	if auth == "" || isJWTCredential(auth) {
		return cacheKey{}, false
	}
	// The caller's own validators or a byte range want the raw answer.
	for _, k := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"} {
		if h.Get(k) != "" {
			return cacheKey{}, false
		}
	}
	if hasDirective(h, "no-store") {
		return cacheKey{}, false
	}
	d := sha256.New()
	for _, part := range []string{
		req.Method,
		req.URL.String(),
		auth,
		strings.Join(h.Values("Accept"), ", "),
		h.Get("X-GitHub-Api-Version"),
		strings.Join(h.Values("Accept-Encoding"), ", "),
	} {
		d.Write([]byte(part))
		d.Write([]byte{0})
	}
	var k cacheKey
	d.Sum(k[:0])
	return k, true
}

// sensitivePath reports whether a path belongs to an endpoint whose
// responses carry or describe credentials: installation access tokens,
// webhook configuration (whose URL may embed credentials) and Actions,
// Dependabot or Codespaces secrets. A GitHub Enterprise Server prefix
// makes no difference, as only segments are compared.
func sensitivePath(path string) bool {
	for _, seg := range strings.Split(path, "/") {
		switch seg {
		case "access_tokens", "hook", "hooks", "secrets":
			return true
		}
	}
	return false
}

// isJWTCredential reports whether an Authorization value is a bearer JWT,
// as the App authenticates with: three base64url parts, the first a JSON
// header ("eyJ" is the encoding of `{"`). Installation and Actions tokens
// (ghs_…) and personal access tokens contain no dots.
func isJWTCredential(auth string) bool {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(auth), " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		strings.HasPrefix(cred, "eyJ") && strings.Count(cred, ".") == 2
}

// hasDirective reports whether the Cache-Control header holds directive.
func hasDirective(h http.Header, directive string) bool {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(d), "=")
			if strings.EqualFold(name, directive) {
				return true
			}
		}
	}
	return false
}

// storedHeader copies the end-to-end headers worth keeping: not hop-by-hop
// ones, not cookies.
func storedHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		if storable(k) {
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
}

func storable(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Set-Cookie":
		return false
	}
	return true
}

func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
