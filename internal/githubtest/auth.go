package githubtest

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
)

// tokenLifetime is how long GitHub's installation tokens live.
const tokenLifetime = time.Hour

// actionsBot is who a workflow's GITHUB_TOKEN acts as.
const actionsBot = "github-actions[bot]"

type installation struct {
	id      int64
	account string
	created time.Time
	// noMembersRead: the installation has not granted the organization
	// permission Members: read (an owner who never accepted it), so
	// GitHub answers 403 to its team membership reads.
	noMembersRead bool
}

type accessToken struct {
	installationID int64
	expires        time.Time
}

// AppID is the GitHub App's id, the JWT issuer the fake expects.
func (s *Server) AppID() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appID
}

// AppSlug is the App's slug; its bot user is AppSlug()+"[bot]".
func (s *Server) AppSlug() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appSlug
}

// PrivateKeyPEM is the App's RSA private key in PKCS#1 PEM, the format
// GitHub lets App owners download.
func (s *Server) PrivateKeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(s.key)})
}

// InstallationID is the id of the installation New creates; repositories
// belong to it unless RepoSpec names another.
func (s *Server) InstallationID() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.defaultInstID
}

// AddInstallation installs the App on another account and returns the
// installation id. Tokens of one installation cannot see another's
// repositories.
func (s *Server) AddInstallation(account string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addInstallationLocked(account)
}

func (s *Server) addInstallationLocked(account string) int64 {
	id := s.newID()
	s.installations[id] = &installation{id: id, account: account, created: s.now()}
	return id
}

// InstallationToken mints an installation token directly, for tests that do
// not exercise the JWT exchange.
func (s *Server) InstallationToken(installationID int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.installations[installationID] == nil {
		panic(fmt.Sprintf("githubtest: no installation %d", installationID))
	}
	return s.mintTokenLocked(installationID)
}

// AddStaticToken accepts token for every repository, acting as
// github-actions[bot], like a workflow's GITHUB_TOKEN in Action mode.
func (s *Server) AddStaticToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.static[token] = actionsBot
}

// ExpireTokens makes every installation token issued so far expired, so a
// client's refresh path can be tested.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.now().Add(-time.Second)
	for _, t := range s.tokens {
		t.expires = past
	}
}

func (s *Server) mintTokenLocked(instID int64) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 36)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(fmt.Sprintf("githubtest: minting a token: %v", err))
		}
		b[i] = alphabet[n.Int64()]
	}
	tok := "ghs_" + string(b)
	s.tokens[tok] = &accessToken{installationID: instID, expires: s.now().Add(tokenLifetime)}
	return tok
}

// credential extracts the token from "token X" or "Bearer X".
func credential(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || tok == "" {
		return "", false
	}
	switch strings.ToLower(scheme) {
	case "token", "bearer":
		return strings.TrimSpace(tok), true
	}
	return "", false
}

// tokenActor checks a repository credential. instID is 0 for a static
// token, which sees every repository.
func (s *Server) tokenActor(header string) (actor, app string, instID int64, ok bool) {
	tok, ok := credential(header)
	if !ok {
		return "", "", 0, false
	}
	if login, found := s.static[tok]; found {
		return login, "github-actions", 0, true
	}
	t := s.tokens[tok]
	if t == nil || !s.now().Before(t.expires) {
		return "", "", 0, false
	}
	return s.appSlug + "[bot]", s.appSlug, t.installationID, true
}

// verifyJWT checks an App JWT the way GitHub does: RS256 signed by the
// App's key, iss the App id, iat not in the future (60 s of clock skew
// allowed), exp in the future but at most 10 minutes after now.
func (s *Server) verifyJWT(header string) error {
	raw, ok := credential(header)
	if !ok || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(header)), "bearer ") {
		return errors.New("A JSON web token could not be decoded")
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithJSONNumber(),
		jwt.WithoutClaimsValidation(),
	).ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return &s.key.PublicKey, nil })
	if err != nil {
		return fmt.Errorf("A JSON web token could not be decoded: %w", err)
	}
	if iss, err := claimInt(claims, "iss"); err != nil || iss != s.appID {
		return errors.New("'Issuer' claim ('iss') must be an Integer")
	}
	now := s.now()
	iat, err := claimInt(claims, "iat")
	if err != nil || time.Unix(iat, 0).After(now.Add(60*time.Second)) {
		return errors.New("'Issued at' claim ('iat') must be an Integer representing a time in the past")
	}
	exp, err := claimInt(claims, "exp")
	if err != nil || !time.Unix(exp, 0).After(now) {
		return errors.New("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
	}
	if time.Unix(exp, 0).After(now.Add(10*time.Minute + 30*time.Second)) {
		return errors.New("'Expiration time' claim ('exp') is too far in the future")
	}
	return nil
}

// claimInt reads a numeric claim; GitHub accepts iss as a string or number.
func claimInt(claims jwt.MapClaims, name string) (int64, error) {
	switch v := claims[name].(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n, nil
		}
		f, err := v.Float64()
		if err != nil {
			return 0, fmt.Errorf("claim %s: %w", name, err)
		}
		return int64(f), nil
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("claim %s: %w", name, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("claim %s missing or not a number", name)
}

func (s *Server) appJSON() map[string]any {
	owner := "shipbot"
	return map[string]any{
		"id":           s.appID,
		"slug":         s.appSlug,
		"node_id":      nodeID("A", s.appID),
		"client_id":    "Iv1.fake" + strconv.FormatInt(s.appID, 10),
		"owner":        s.userJSON(owner),
		"name":         s.appSlug,
		"description":  "shipbot turns merges into deploys",
		"external_url": "https://example.com/shipbot",
		"html_url":     s.WebURL() + "apps/" + s.appSlug,
		"created_at":   "2024-01-01T00:00:00Z",
		"updated_at":   "2024-01-01T00:00:00Z",
		"permissions": map[string]string{
			"administration": "read", "checks": "write", "contents": "write",
			"deployments": "write", "issues": "write", "metadata": "read",
			"pull_requests": "write", "statuses": "write", "actions": "write",
			"members": "read", // organization permission: team approvers
		},
		"events":              []string{"pull_request", "pull_request_review", "push", "issue_comment", "check_run", "check_suite", "status", "merge_group"},
		"installations_count": len(s.installations),
	}
}

// integrationJSON is the "app" object GitHub embeds in check runs and
// deployments; foreign apps (CI systems) get a plausible stand-in.
func (s *Server) integrationJSON(slug string) any {
	if slug == "" {
		return nil
	}
	if slug == s.appSlug {
		return s.appJSON()
	}
	id := s.appIDOf(slug)
	return map[string]any{
		"id":           id,
		"slug":         slug,
		"node_id":      nodeID("A", id),
		"owner":        s.userJSON("github"),
		"name":         slug,
		"description":  "",
		"external_url": "https://example.com/" + slug,
		"html_url":     s.WebURL() + "apps/" + slug,
		"created_at":   "2018-07-30T09:30:17Z",
		"updated_at":   "2018-07-30T09:30:17Z",
		"permissions":  map[string]string{"checks": "write", "metadata": "read", "statuses": "write"},
		"events":       []string{},
	}
}

// appIDOf is the id of the App with slug.
func (s *Server) appIDOf(slug string) int64 {
	switch slug {
	case s.appSlug:
		return s.appID
	case "github-actions":
		return 15368 // GitHub Actions' real App id
	}
	return s.userID(slug + "[app]")
}

func (s *Server) installationJSON(c *call, inst *installation) map[string]any {
	account := inst.account
	if account == "" {
		account = "shipbot"
	}
	return map[string]any{
		"id":                   inst.id,
		"account":              s.userJSON(account),
		"repository_selection": "all",
		"access_tokens_url":    c.apiURL("/app/installations/%d/access_tokens", inst.id),
		"repositories_url":     c.apiURL("/installation/repositories"),
		"html_url":             fmt.Sprintf("%sorganizations/%s/settings/installations/%d", s.WebURL(), account, inst.id),
		"app_id":               s.appID,
		"app_slug":             s.appSlug,
		"target_id":            s.userID(account),
		"target_type":          "Organization",
		"permissions":          inst.permissions(s),
		"events":               s.appJSON()["events"],
		"created_at":           timestamp(inst.created),
		"updated_at":           timestamp(inst.created),
		"single_file_name":     nil,
		"suspended_by":         nil,
		"suspended_at":         nil,
	}
}

// permissions are what the installation granted: the App's, less
// Members: read where an organization owner did not accept it.
func (inst *installation) permissions(s *Server) map[string]string {
	perms := maps.Clone(s.appJSON()["permissions"].(map[string]string))
	if inst.noMembersRead {
		delete(perms, "members")
	}
	return perms
}

// SetMembersReadDenied withdraws (or grants again) the organization
// permission Members: read from installation id: its team membership reads
// answer 403 "Resource not accessible by integration", as GitHub's do for
// an installation whose owner has not granted it.
func (s *Server) SetMembersReadDenied(id int64, denied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := s.installations[id]
	if inst == nil {
		panic(fmt.Sprintf("githubtest: no installation %d", id))
	}
	inst.noMembersRead = denied
}

func getApp(c *call) (int, any) { return http.StatusOK, c.s.appJSON() }

func getInstallation(c *call) (int, any) {
	id, _ := c.intParam("installation_id")
	inst := c.s.installations[id]
	if inst == nil {
		return notFound()
	}
	return http.StatusOK, c.s.installationJSON(c, inst)
}

func getRepoInstallation(c *call) (int, any) {
	return http.StatusOK, c.s.installationJSON(c, c.s.installations[c.repo.installationID])
}

func createAccessToken(c *call) (int, any) {
	id, _ := c.intParam("installation_id")
	if c.s.installations[id] == nil {
		return notFound()
	}
	var req struct {
		Repositories []string          `json:"repositories"`
		Permissions  map[string]string `json:"permissions"`
	}
	if err := c.decode(&req); err != nil {
		return badJSON()
	}
	tok := c.s.mintTokenLocked(id)
	perms := req.Permissions
	if len(perms) == 0 {
		perms = c.s.installations[id].permissions(c.s)
	}
	selection := "all"
	if len(req.Repositories) > 0 {
		selection = "selected"
	}
	return http.StatusCreated, map[string]any{
		"token":                tok,
		"expires_at":           timestamp(c.s.tokens[tok].expires),
		"permissions":          perms,
		"repository_selection": selection,
	}
}
