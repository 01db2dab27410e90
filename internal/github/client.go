package github

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/internal/pacing"
	"github.com/shipbot/shipbot/internal/truncate"
)

// DefaultBaseURL is the REST base URL of github.com.
const DefaultBaseURL = "https://api.github.com/"

// Options configures the clients. Only BaseURL, Base, Retry, Calls, Logger
// and Cache matter to NewTokenClient.
type Options struct {
	// BaseURL is the REST base URL (SHIPBOT_GITHUB_API_URL), including
	// "/api/v3/" on GitHub Enterprise Server. Empty means DefaultBaseURL.
	BaseURL string
	// AppID and PrivateKey (PEM) identify the GitHub App.
	AppID      int64
	PrivateKey []byte
	// Base is the innermost round tripper; nil means http.DefaultTransport.
	Base   http.RoundTripper
	Retry  RetryPolicy
	Calls  *CallCounter
	Logger *slog.Logger
	// Cache bounds the conditional-request cache that saves rate limit on
	// repeated reads (see etagcache.go); the zero value means 32 MiB in
	// all, 1 MiB per response. One cache serves all installations of an
	// Apps, one each NewTokenClient.
	Cache CacheOptions
	// TokenBackoff paces an installation's token fetches after a failure
	// (see tokenbackoff.go); the zero value takes the defaults.
	TokenBackoff TokenBackoff
	// Pacer, when set, keeps each installation's requests under GitHub's
	// secondary rate limits (see pace.go); a token client is paced as
	// installation 0.
	Pacer *pacing.Pacer
}

// Apps hands out clients for a GitHub App: one authenticated as the App
// (JWT) and one per installation (installation token). It is safe for
// concurrent use.
type Apps struct {
	appID   int64
	key     *rsa.PrivateKey
	baseURL *url.URL
	upload  *url.URL
	tr      http.RoundTripper // retrying, counting transport
	cached  http.RoundTripper // tr under the ETag cache, for installations
	app     *gh.Client
	backoff TokenBackoff
	pacer   *pacing.Pacer
	log     *slog.Logger

	mu sync.Mutex
	// installations caches one client, and so one ghinstallation.Transport
	// and one token, per installation id. A service has a handful of
	// installations, so the map is not pruned.
	installations map[int64]*gh.Client
	// repoInstallations caches which installation covers a repository.
	repoInstallations map[string]int64
}

// NewApps validates opts and builds the App's clients. Errors never
// contain key material.
func NewApps(opts Options) (*Apps, error) {
	if opts.AppID <= 0 {
		return nil, fmt.Errorf("github app: app id must be a positive number, got %d", opts.AppID)
	}
	key, err := parsePrivateKey(opts.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("github app: %w", err)
	}
	base, upload, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	tr := NewTransport(opts.Base, opts.Retry, opts.Calls, opts.Logger)
	a := &Apps{
		appID:         opts.AppID,
		key:           key,
		baseURL:       base,
		upload:        upload,
		tr:            tr,
		cached:        newETagCache(tr, opts.Cache),
		installations: make(map[int64]*gh.Client),
		backoff:       opts.TokenBackoff,
		pacer:         opts.Pacer,
		log:           opts.Logger,
	}
	// The App client goes without the ETag cache: every request carries
	// a freshly signed JWT, so no key would ever repeat.
	a.app = newClient(a.appsTransport(a.tr), a.baseURL, a.upload)
	return a, nil
}

// appsTransport returns a fresh JWT transport over tr. Each installation
// gets its own: ghinstallation writes the BaseURL and Client fields of the
// AppsTransport it refreshes through while holding only that
// installation's lock, so sharing one between installations is a data race.
//
// An installation's ghinstallation.Transport sends both its API calls and
// its token requests through the tr of the AppsTransport it is made from,
// so for installations tr is the token gate over the cached transport; the
// gate holds token requests back while they are backing off and the cache
// passes them through untouched (see tokenGate and etagCache).
func (a *Apps) appsTransport(tr http.RoundTripper) *ghinstallation.AppsTransport {
	atr := ghinstallation.NewAppsTransportFromPrivateKey(tr, a.appID, a.key)
	atr.BaseURL = a.tokenBaseURL()
	return atr
}

// tokenBaseURL is the base URL in the form ghinstallation wants: it appends
// "/app/installations/..." itself.
func (a *Apps) tokenBaseURL() string {
	return strings.TrimSuffix(a.baseURL.String(), "/")
}

// App returns the client authenticated as the App itself (a JWT), for
// app-level endpoints such as GET /app or finding a repository's
// installation.
func (a *Apps) App() *gh.Client { return a.app }

// Installation returns the client for one installation. Clients are cached,
// so all callers share one installation token, fetched on first use and
// refreshed by ghinstallation shortly before it expires.
func (a *Apps) Installation(id int64) (*gh.Client, error) {
	if id <= 0 {
		return nil, fmt.Errorf("github installation client: installation id must be positive, got %d", id)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.installations[id]; ok {
		return c, nil
	}
	// The gate paces this installation's token fetches after failures;
	// its API calls pass through it untouched.
	var tr http.RoundTripper = newTokenGate(a.cached, id, a.backoff, a.log)
	if a.pacer != nil {
		tr = &pacedTransport{next: tr, inst: id, pacer: a.pacer}
	}
	itr := ghinstallation.NewFromAppsTransport(a.appsTransport(tr), id)
	itr.BaseURL = a.tokenBaseURL()
	c := newClient(itr, a.baseURL, a.upload)
	a.installations[id] = c
	return c, nil
}

// NewTokenClient returns a client that authenticates with a fixed token,
// e.g. the GITHUB_TOKEN of an Actions run, over the same ETag cache and
// retrying, counting transport as the installation clients. go-github's
// WithAuthToken sets Authorization above the cache, so the cache sees it.
func NewTokenClient(opts Options, token string) (*gh.Client, error) {
	if strings.TrimSpace(token) == "" {
		return nil, errors.New("github token client: token is empty")
	}
	base, upload, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	tr := newETagCache(NewTransport(opts.Base, opts.Retry, opts.Calls, opts.Logger), opts.Cache)
	if opts.Pacer != nil {
		tr = &pacedTransport{next: tr, inst: 0, pacer: opts.Pacer}
	}
	return newClient(tr, base, upload).WithAuthToken(token), nil
}

func newClient(rt http.RoundTripper, baseURL, uploadURL *url.URL) *gh.Client {
	c := gh.NewClient(&http.Client{Transport: rt})
	// Set the URLs directly rather than with WithEnterpriseURLs, which
	// appends "/api/v3/" to any host not named api.*: that would break a
	// test server or a proxy serving the API at its root.
	base, upload := *baseURL, *uploadURL
	c.BaseURL, c.UploadURL = &base, &upload
	return c
}

// parseBaseURL normalises SHIPBOT_GITHUB_API_URL and derives the upload
// URL that go-github uses for release assets.
func parseBaseURL(raw string) (base, upload *url.URL, err error) {
	if strings.TrimSpace(raw) == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("github api base url %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("github api base url %q: want an absolute http(s) URL such as %s", raw, DefaultBaseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// Credentials in the URL would end up in error messages.
		return nil, nil, fmt.Errorf("github api base url: must not contain credentials, a query or a fragment")
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	up := *u
	switch {
	case strings.EqualFold(u.Host, "api.github.com"):
		up.Host, up.Path, up.RawPath = "uploads.github.com", "/", ""
	case strings.HasSuffix(u.Path, "/api/v3/"):
		up.Path, up.RawPath = strings.TrimSuffix(u.Path, "/api/v3/")+"/api/uploads/", ""
	}
	return u, &up, nil
}

// parsePrivateKey reads the App's PEM key. Its errors describe the shape of
// the input only: they must never quote it, since a near-miss is still
// mostly secret.
func parsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	if len(bytes.TrimSpace(pemBytes)) == 0 {
		return nil, errors.New("private key is empty")
	}
	// A key pasted into a single-line environment variable often arrives
	// with literal "\n" sequences instead of line breaks.
	if !bytes.Contains(pemBytes, []byte("\n")) && bytes.Contains(pemBytes, []byte(`\n`)) {
		pemBytes = bytes.ReplaceAll(pemBytes, []byte(`\n`), []byte("\n"))
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New(`private key is not PEM-encoded: want the .pem file GitHub generated ("-----BEGIN RSA PRIVATE KEY-----")`)
	}
	if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, errors.New("private key is encrypted: GitHub App keys are used unencrypted")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			// The parse error is left out: ASN.1 errors can quote bytes.
			return nil, errors.New(`private key: the "RSA PRIVATE KEY" PEM block is not a valid PKCS #1 RSA key`)
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New(`private key: the "PRIVATE KEY" PEM block is not a valid PKCS #8 key`)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("private key is a %s key, not an RSA private key as GitHub Apps use", keyKind(k))
		}
		key = rk
	default:
		return nil, fmt.Errorf("private key: PEM block is %q, not an RSA private key", truncate.Bytes(block.Type, 40, "…"))
	}
	return key, nil
}

func keyKind(k any) string {
	s := fmt.Sprintf("%T", k)
	s = strings.TrimPrefix(s, "*")
	return strings.TrimSuffix(s, ".PrivateKey")
}

// ForRepository returns the installation client of the installation that
// covers repository ("owner/name"). The lookup is one App call per
// repository for the life of a; installations rarely move.
func (a *Apps) ForRepository(ctx context.Context, repository string) (*gh.Client, error) {
	owner, name, ok := strings.Cut(repository, "/")
	if !ok {
		return nil, fmt.Errorf("repository %q is not owner/name", repository)
	}
	a.mu.Lock()
	id, known := a.repoInstallations[repository]
	a.mu.Unlock()
	if !known {
		inst, _, err := a.app.Apps.FindRepositoryInstallation(ctx, owner, name)
		if err != nil {
			return nil, fmt.Errorf("installation of %s: %w", repository, err)
		}
		id = inst.GetID()
		a.mu.Lock()
		if a.repoInstallations == nil {
			a.repoInstallations = map[string]int64{}
		}
		a.repoInstallations[repository] = id
		a.mu.Unlock()
	}
	return a.Installation(id)
}
