package githubtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	jwt "github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v60/github"
)

// appJWT signs an App JWT the way ghinstallation does.
func appJWT(t *testing.T, s *Server, keyPEM []byte) string {
	t.Helper()
	return signJWT(t, keyPEM, jwt.MapClaims{
		"iat": time.Now().Add(-30 * time.Second).Unix(),
		"exp": time.Now().Add(2 * time.Minute).Unix(),
		"iss": s.AppID(),
	})
}

func signJWT(t *testing.T, keyPEM []byte, claims jwt.Claims) string {
	t.Helper()
	key, err := jwt.ParseRSAPrivateKeyFromPEM(keyPEM)
	if err != nil {
		t.Fatalf("parsing key: %v", err)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return tok
}

func otherKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// TestGhinstallationRoundTrip is the bot's real path: ghinstallation signs
// the JWT, exchanges it for an installation token and go-github uses it.
func TestGhinstallationRoundTrip(t *testing.T) {
	for _, ghes := range []bool{false, true} {
		s := newServer(t)
		seed(t, s)
		base := s.URL()
		if ghes {
			base = s.GHESURL()
		}
		tr, err := ghinstallation.New(http.DefaultTransport, s.AppID(), s.InstallationID(), s.PrivateKeyPEM())
		if err != nil {
			t.Fatal(err)
		}
		tr.BaseURL = strings.TrimSuffix(base, "/")
		client, err := github.NewClient(&http.Client{Transport: tr}).WithEnterpriseURLs(base, base)
		if err != nil {
			t.Fatal(err)
		}
		if !ghes {
			client = github.NewClient(&http.Client{Transport: tr})
			client.BaseURL = mustParseURL(t, base)
		}
		repo, _, err := client.Repositories.Get(context.Background(), "acme", "api")
		if err != nil {
			t.Fatalf("ghes=%v: %v", ghes, err)
		}
		if repo.GetDefaultBranch() != "main" || repo.GetFullName() != testRepo {
			t.Errorf("ghes=%v: got %s default %s", ghes, repo.GetFullName(), repo.GetDefaultBranch())
		}
		if got := s.Count("POST /app/installations/{installation_id}/access_tokens"); got != 1 {
			t.Errorf("ghes=%v: %d token requests, want 1", ghes, got)
		}
		for _, r := range s.Requests() {
			if ghes != strings.HasPrefix(r.Path, "/api/v3/") {
				t.Errorf("ghes=%v: request path %s", ghes, r.Path)
			}
		}
	}
}

func TestAppsTransportJWTAccepted(t *testing.T) {
	s := newServer(t)
	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, s.AppID(), s.PrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	atr.BaseURL = strings.TrimSuffix(s.URL(), "/")
	client := github.NewClient(&http.Client{Transport: atr})
	client.BaseURL = mustParseURL(t, s.URL())
	app, _, err := client.Apps.Get(context.Background(), "")
	if err != nil {
		t.Fatalf("GET /app with ghinstallation's JWT: %v", err)
	}
	if app.GetID() != s.AppID() || app.GetSlug() != "shipbot" {
		t.Errorf("app = %d %q", app.GetID(), app.GetSlug())
	}
	tok, _, err := client.Apps.CreateInstallationToken(context.Background(), s.InstallationID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.GetToken(), "ghs_") || tok.GetExpiresAt().Before(time.Now().Add(50*time.Minute)) {
		t.Errorf("token %q expires %v", tok.GetToken(), tok.GetExpiresAt())
	}
}

func TestJWTRejected(t *testing.T) {
	s := newServer(t)
	now := time.Now()
	cases := map[string]string{
		"wrong key": appJWT(t, s, otherKeyPEM(t)),
		"wrong issuer": signJWT(t, s.PrivateKeyPEM(), jwt.MapClaims{
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "iss": "42",
		}),
		"expired": signJWT(t, s.PrivateKeyPEM(), jwt.MapClaims{
			"iat": now.Add(-20 * time.Minute).Unix(), "exp": now.Add(-10 * time.Minute).Unix(), "iss": s.AppID(),
		}),
		"exp too far": signJWT(t, s.PrivateKeyPEM(), jwt.MapClaims{
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "iss": s.AppID(),
		}),
		"issued in the future": signJWT(t, s.PrivateKeyPEM(), jwt.MapClaims{
			"iat": now.Add(5 * time.Minute).Unix(), "exp": now.Add(6 * time.Minute).Unix(), "iss": s.AppID(),
		}),
		"not a JWT": "ghs_notajwt",
		"HS256": func() string {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "iss": s.AppID(),
			}).SignedString(s.PrivateKeyPEM())
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}(),
	}
	for name, tok := range cases {
		c := &rawClient{t: t, base: s.URL(), auth: "Bearer " + tok}
		if status, _, body := c.do("POST", "app/installations/"+itoa(s.InstallationID())+"/access_tokens", nil); status != 401 {
			t.Errorf("%s: status %d, want 401: %s", name, status, body)
		}
	}
	// The issuer may also be a string, as ghinstallation sends it.
	ok := signJWT(t, s.PrivateKeyPEM(), jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "iss": itoa(s.AppID())})
	c := &rawClient{t: t, base: s.URL(), auth: "Bearer " + ok}
	c.call("GET", "app", nil, 200)
}

func TestTokenScopeAndExpiry(t *testing.T) {
	s := newServer(t)
	seed(t, s)
	other := s.AddInstallation("globex")
	s.AddRepo("globex/web", RepoSpec{InstallationID: other})

	c := tokenClient(t, s)
	c.call("GET", "repos/acme/api", nil, 200)
	// Another installation's repository is invisible, not forbidden.
	c.call("GET", "repos/globex/web", nil, 404)
	// A JWT is not a repository credential.
	jwtClient := &rawClient{t: t, base: s.URL(), auth: "Bearer " + appJWT(t, s, s.PrivateKeyPEM())}
	jwtClient.call("GET", "repos/acme/api", nil, 401)

	s.ExpireTokens()
	c.call("GET", "repos/acme/api", nil, 401)

	// A static token (GITHUB_TOKEN in Action mode) sees every repository
	// and acts as github-actions[bot].
	s.AddStaticToken("ghp_static")
	st := &rawClient{t: t, base: s.URL(), auth: "Bearer ghp_static"}
	st.call("GET", "repos/globex/web", nil, 200)
	cm := obj(t, st.call("POST", "repos/acme/api/issues/1/comments", map[string]any{"body": "hi"}, 201))
	if login := obj(t, cm["user"])["login"]; login != "github-actions[bot]" {
		t.Errorf("static token comment by %v", login)
	}
	wrong := &rawClient{t: t, base: s.URL(), auth: "token ghs_wrong"}
	wrong.call("GET", "repos/acme/api", nil, 401)
}
