package github

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
)

const testAppID = 1234

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

func pkcs1PEM(t *testing.T) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey(t))})
}

// fakeGitHub is a tiny GitHub: the token endpoint verifies the App JWT
// with the public key and counts token requests per installation; the API
// endpoints accept only the token it issued for that installation.
type fakeGitHub struct {
	*httptest.Server
	t      *testing.T
	prefix string // "/api/v3" for GitHub Enterprise Server

	tokenFails atomic.Int32 // answer this many token requests with 502 first
	tokenReqs  sync.Map     // installation id → *atomic.Int32
	paths      sync.Map     // every path seen → true
}

func newFakeGitHub(t *testing.T, prefix string) *fakeGitHub {
	f := &fakeGitHub{t: t, prefix: prefix}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+prefix+"/app/installations/{id}/access_tokens", f.accessToken)
	mux.HandleFunc("GET "+prefix+"/app", func(w http.ResponseWriter, r *http.Request) {
		if _, err := f.verifyJWT(r); err != nil {
			http.Error(w, `{"message":"`+err.Error()+`"}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"id":%d,"slug":"shipbot"}`, testAppID)
	})
	mux.HandleFunc("GET "+prefix+"/repos/{owner}/{repo}", func(w http.ResponseWriter, r *http.Request) {
		// Tokens are "ghs_inst<id>"; the repo id echoes the installation
		// so a test can tell which token was used.
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "token ghs_inst")
		if !ok {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"id":%s,"full_name":"%s/%s"}`, tok, r.PathValue("owner"), r.PathValue("repo"))
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.paths.Store(r.Method+" "+r.URL.Path, true)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeGitHub) verifyJWT(r *http.Request) (*jwt.RegisteredClaims, error) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, errors.New("A JSON web token could not be decoded")
	}
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(tok *jwt.Token) (any, error) {
		if tok.Method != jwt.SigningMethodRS256 {
			return nil, fmt.Errorf("unexpected signing method %v", tok.Header["alg"])
		}
		return &rsaKey(f.t).PublicKey, nil
	})
	if err != nil {
		return nil, errors.New("JWT signature does not verify")
	}
	if claims.Issuer != strconv.Itoa(testAppID) {
		return nil, fmt.Errorf("JWT issuer %q is not the app", claims.Issuer)
	}
	return claims, nil
}

func (f *fakeGitHub) accessToken(w http.ResponseWriter, r *http.Request) {
	if _, err := f.verifyJWT(r); err != nil {
		http.Error(w, `{"message":"`+err.Error()+`"}`, http.StatusUnauthorized)
		return
	}
	id := r.PathValue("id")
	n, _ := f.tokenReqs.LoadOrStore(id, new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	if f.tokenFails.Add(-1) >= 0 {
		http.Error(w, `{"message":"Server Error"}`, http.StatusBadGateway)
		return
	}
	// Make concurrent callers pile up behind the first token fetch.
	time.Sleep(20 * time.Millisecond)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":      "ghs_inst" + id,
		"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	})
}

func (f *fakeGitHub) tokenRequests(id int64) int {
	n, ok := f.tokenReqs.Load(strconv.FormatInt(id, 10))
	if !ok {
		return 0
	}
	return int(n.(*atomic.Int32).Load())
}

func (f *fakeGitHub) sawPath(p string) bool {
	_, ok := f.paths.Load(p)
	return ok
}

func newTestApps(t *testing.T, baseURL string, calls *CallCounter, log *slog.Logger) *Apps {
	t.Helper()
	if log == nil {
		log = quietLogger()
	}
	a, err := NewApps(Options{
		BaseURL:    baseURL,
		AppID:      testAppID,
		PrivateKey: pkcs1PEM(t),
		Retry:      RetryPolicy{Sleep: (&fakeSleep{}).Sleep},
		Calls:      calls,
		Logger:     log,
	})
	if err != nil {
		t.Fatalf("NewApps: %v", err)
	}
	return a
}

func TestInstallationTokenFetchedOnce(t *testing.T) {
	f := newFakeGitHub(t, "")
	calls := &CallCounter{}
	apps := newTestApps(t, f.URL, calls, nil)

	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := apps.Installation(42)
			if err != nil {
				errs <- err
				return
			}
			repo, _, err := c.Repositories.Get(context.Background(), "acme", fmt.Sprintf("r%d", i))
			if err != nil {
				errs <- err
				return
			}
			if repo.GetID() != 42 {
				errs <- fmt.Errorf("repo id %d: wrong installation token", repo.GetID())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	if got := f.tokenRequests(42); got != 1 {
		t.Errorf("token requests for installation 42 = %d, want 1", got)
	}
	if got := calls.Count(tokenClass); got != 1 {
		t.Errorf("counted token calls = %d, want 1", got)
	}
	if got := calls.Count("GET /repos/{owner}/{repo}"); got != n {
		t.Errorf("counted repo calls = %d, want %d", got, n)
	}

	c1, _ := apps.Installation(42)
	c2, _ := apps.Installation(42)
	if c1 != c2 {
		t.Error("Installation(42) returned different clients; want one cached client")
	}

	// Another installation has its own token.
	c3, _ := apps.Installation(7)
	repo, _, err := c3.Repositories.Get(context.Background(), "other", "repo")
	if err != nil {
		t.Fatal(err)
	}
	if repo.GetID() != 7 || f.tokenRequests(7) != 1 || f.tokenRequests(42) != 1 {
		t.Errorf("installation 7: repo id %d, token requests %d/%d", repo.GetID(), f.tokenRequests(7), f.tokenRequests(42))
	}

	if _, err := apps.Installation(0); err == nil {
		t.Error("Installation(0) succeeded")
	}
}

func TestAppClient(t *testing.T) {
	f := newFakeGitHub(t, "")
	calls := &CallCounter{}
	apps := newTestApps(t, f.URL+"/", calls, nil)
	app, _, err := apps.App().Apps.Get(context.Background(), "")
	if err != nil {
		t.Fatalf("GET /app: %v", err)
	}
	if app.GetID() != testAppID {
		t.Errorf("app id = %d", app.GetID())
	}
	if calls.Count("GET /app") != 1 {
		t.Errorf("calls = %v", calls.Snapshot())
	}
}

func TestEnterpriseServerBaseURL(t *testing.T) {
	for _, suffix := range []string{"/api/v3", "/api/v3/"} {
		t.Run(suffix, func(t *testing.T) {
			f := newFakeGitHub(t, "/api/v3")
			calls := &CallCounter{}
			apps := newTestApps(t, f.URL+suffix, calls, nil)

			c, err := apps.Installation(99)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := c.BaseURL.String(), f.URL+"/api/v3/"; got != want {
				t.Errorf("BaseURL = %s, want %s", got, want)
			}
			if got, want := c.UploadURL.String(), f.URL+"/api/uploads/"; got != want {
				t.Errorf("UploadURL = %s, want %s", got, want)
			}
			if _, _, err := c.Repositories.Get(context.Background(), "acme", "api"); err != nil {
				t.Fatalf("repo via GHES: %v", err)
			}
			if _, _, err := apps.App().Apps.Get(context.Background(), ""); err != nil {
				t.Fatalf("app via GHES: %v", err)
			}
			for _, p := range []string{"POST /api/v3/app/installations/99/access_tokens", "GET /api/v3/repos/acme/api", "GET /api/v3/app"} {
				if !f.sawPath(p) {
					t.Errorf("server never saw %s", p)
				}
			}
			want := map[string]int{tokenClass: 1, "GET /repos/{owner}/{repo}": 1, "GET /app": 1}
			if got := calls.Snapshot(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("calls = %v, want %v", got, want)
			}
		})
	}
}

func TestTokenRequestRetried(t *testing.T) {
	f := newFakeGitHub(t, "")
	f.tokenFails.Store(2)
	calls := &CallCounter{}
	apps := newTestApps(t, f.URL, calls, nil)
	c, _ := apps.Installation(5)
	if _, _, err := c.Repositories.Get(context.Background(), "acme", "api"); err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got := calls.Count(tokenClass); got != 3 {
		t.Errorf("token attempts = %d, want 3 (two 502s, then the token)", got)
	}
}

func TestTokenRequestRejected(t *testing.T) {
	f := newFakeGitHub(t, "")
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := NewApps(Options{
		BaseURL:    f.URL,
		AppID:      testAppID,
		PrivateKey: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)}),
		Logger:     quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := apps.Installation(5)
	_, _, err = c.Repositories.Get(context.Background(), "acme", "api")
	if err == nil {
		t.Fatal("Get succeeded with a key GitHub does not know")
	}
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
		t.Fatalf("error = %v, want a 401 *StatusError", err)
	}
	if !strings.Contains(err.Error(), "401 Unauthorized: JWT signature does not verify") {
		t.Errorf("error %q lacks GitHub's message", err)
	}
}

func TestSecretsNotLogged(t *testing.T) {
	f := newFakeGitHub(t, "")
	f.tokenFails.Store(1) // make the transport log a retry of the token request
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	apps := newTestApps(t, f.URL, nil, log)
	c, _ := apps.Installation(3)
	if _, _, err := c.Repositories.Get(context.Background(), "acme", "api"); err != nil {
		t.Fatal(err)
	}
	if buf.Len() == 0 {
		t.Fatal("expected a retry log line")
	}
	for _, s := range []string{"ghs_", "Bearer", "eyJ", "PRIVATE KEY", "Authorization"} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("log contains %q: %s", s, buf.String())
		}
	}
}

func TestNewTokenClient(t *testing.T) {
	var gotAuth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Authorization"))
		io.WriteString(w, `{"id":1}`)
	}))
	defer srv.Close()
	calls := &CallCounter{}
	c, err := NewTokenClient(Options{BaseURL: srv.URL, Calls: calls, Logger: quietLogger()}, "ghs_action")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Repositories.Get(context.Background(), "acme", "api"); err != nil {
		t.Fatal(err)
	}
	if gotAuth.Load() != "Bearer ghs_action" {
		t.Errorf("Authorization = %q", gotAuth.Load())
	}
	if calls.Total() != 1 {
		t.Errorf("calls = %d", calls.Total())
	}
	if _, err := NewTokenClient(Options{}, " "); err == nil {
		t.Error("empty token accepted")
	}
}

func TestParseBaseURL(t *testing.T) {
	tests := []struct {
		in, base, upload, err string
	}{
		{"", "https://api.github.com/", "https://uploads.github.com/", ""},
		{"https://api.github.com", "https://api.github.com/", "https://uploads.github.com/", ""},
		{"https://ghe.example/api/v3", "https://ghe.example/api/v3/", "https://ghe.example/api/uploads/", ""},
		{"https://ghe.example/api/v3/", "https://ghe.example/api/v3/", "https://ghe.example/api/uploads/", ""},
		{"http://127.0.0.1:8081", "http://127.0.0.1:8081/", "http://127.0.0.1:8081/", ""},
		{"api.github.com", "", "", "absolute http(s) URL"},
		{"ftp://ghe.example/", "", "", "absolute http(s) URL"},
		{"https://user:pw@ghe.example/api/v3/", "", "", "must not contain credentials"},
	}
	for _, tt := range tests {
		base, upload, err := parseBaseURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseBaseURL(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "pw@") {
				t.Errorf("error echoes credentials: %v", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseBaseURL(%q): %v", tt.in, err)
			continue
		}
		if base.String() != tt.base || upload.String() != tt.upload {
			t.Errorf("parseBaseURL(%q) = %s, %s; want %s, %s", tt.in, base, upload, tt.base, tt.upload)
		}
	}
}

func TestNewAppsKeyErrors(t *testing.T) {
	// Recognisable filler standing in for secret key material.
	secret := bytes.Repeat([]byte("TOPSECRETKEYMATERIAL"), 20)
	secretB64 := base64.StdEncoding.EncodeToString(secret)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey(t).PublicKey)
	rsaPKCS8, _ := x509.MarshalPKCS8PrivateKey(rsaKey(t))

	tests := []struct {
		name string
		key  []byte
		want string // "" means the key is accepted
	}{
		{"empty", nil, "private key is empty"},
		{"not PEM", secret, "not PEM-encoded"},
		{"garbage in RSA block", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: secret}), "not a valid PKCS #1 RSA key"},
		{"garbage in PKCS8 block", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: secret}), "not a valid PKCS #8 key"},
		{"EC key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), "ecdsa key, not an RSA private key"},
		{"public key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), `PEM block is "PUBLIC KEY"`},
		{"encrypted", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: secret}), "encrypted"},
		{"PKCS1 RSA", pkcs1PEM(t), ""},
		{"PKCS8 RSA", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaPKCS8}), ""},
		{"escaped newlines", bytes.ReplaceAll(pkcs1PEM(t), []byte("\n"), []byte(`\n`)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewApps(Options{AppID: testAppID, PrivateKey: tt.key})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("NewApps: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("NewApps accepted the key")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			msg := err.Error()
			for _, leak := range []string{"TOPSECRET", secretB64[:16], "MII"} {
				if strings.Contains(msg, leak) {
					t.Errorf("error leaks key material %q: %s", leak, msg)
				}
			}
		})
	}

	if _, err := NewApps(Options{AppID: 0, PrivateKey: pkcs1PEM(t)}); err == nil || !strings.Contains(err.Error(), "app id") {
		t.Errorf("app id 0: error = %v", err)
	}
}

// Installations refresh their tokens independently and concurrently; run
// with -race this guards against sharing mutable ghinstallation state.
func TestManyInstallationsConcurrently(t *testing.T) {
	f := newFakeGitHub(t, "")
	calls := &CallCounter{}
	apps := newTestApps(t, f.URL, calls, nil)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := int64(100 + i%8)
			c, err := apps.Installation(id)
			if err != nil {
				t.Error(err)
				return
			}
			if i%5 == 0 {
				if _, _, err := apps.App().Apps.Get(context.Background(), ""); err != nil {
					t.Error(err)
				}
			}
			repo, _, err := c.Repositories.Get(context.Background(), "acme", "api")
			if err != nil {
				t.Error(err)
				return
			}
			if repo.GetID() != id {
				t.Errorf("installation %d used the token of %d", id, repo.GetID())
			}
		}()
	}
	wg.Wait()
	for id := int64(100); id < 108; id++ {
		if n := f.tokenRequests(id); n != 1 {
			t.Errorf("installation %d: %d token requests, want 1", id, n)
		}
	}
	if got := calls.Count(tokenClass); got != 8 {
		t.Errorf("token calls = %d, want 8", got)
	}
}
