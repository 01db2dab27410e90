package config

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shipbot/shipbot/internal/pacing"
)

// Environment variables of the service (design.md, "Server configuration").
const (
	EnvListen         = "SHIPBOT_LISTEN"
	EnvDB             = "SHIPBOT_DB"
	EnvGitHubAPIURL   = "SHIPBOT_GITHUB_API_URL"
	EnvAppID          = "SHIPBOT_APP_ID"
	EnvPrivateKeyFile = "SHIPBOT_PRIVATE_KEY_FILE"
	EnvPrivateKey     = "SHIPBOT_PRIVATE_KEY"
	EnvWebhookSecret  = "SHIPBOT_WEBHOOK_SECRET"
	EnvTargetsFile    = "SHIPBOT_TARGETS_FILE"
	EnvPublicURL      = "SHIPBOT_PUBLIC_URL"
	EnvLogLevel       = "SHIPBOT_LOG_LEVEL"
	EnvDashboardToken = "SHIPBOT_DASHBOARD_TOKEN"
	EnvAPIToken       = "SHIPBOT_API_TOKEN"
	EnvRetention      = "SHIPBOT_RETENTION"
	EnvWriteLimits    = "SHIPBOT_GITHUB_WRITE_LIMITS"
)

// Defaults of the service settings.
const (
	DefaultListen       = ":8080"
	DefaultDB           = "shipbot.db"
	DefaultGitHubAPIURL = "https://api.github.com/"
	DefaultPublicURL    = "http://localhost:8080"
	// DefaultRetention is how long processed deliveries keep their
	// payloads: long enough to look into a fortnight's deliveries, short
	// enough that 25 MB ones do not pile up.
	DefaultRetention = 14 * 24 * time.Hour
)

// Server is the service's settings, read from the environment.
type Server struct {
	Listen         string
	DB             string // SQLite path, or a postgres:// URL
	GitHubAPIURL   string // absolute, always ends in "/"
	AppID          int64  // 0 when unset
	PrivateKey     []byte // PEM; secret
	WebhookSecret  []byte // secret
	TargetsFile    string // empty: no targets
	PublicURL      string // absolute, never ends in "/"
	LogLevel       slog.Level
	DashboardToken string // optional; secret
	APIToken       string // optional; secret: guards the write API (freeze)
	// Retention is how long processed deliveries keep their payloads;
	// their rows, and runs and events, stay.
	Retention time.Duration
	// WriteLimits are the content-generating requests per installation
	// shipbot allows itself a minute and an hour (GitHub's secondary
	// limits; see the pacing package).
	WriteLimits pacing.Limits
}

// EnvError is a problem with one environment variable. Its message starts
// with the variable's name and never contains a secret value.
type EnvError struct {
	Var string
	Msg string
	Err error // underlying cause, if any
}

func (e *EnvError) Error() string { return e.Var + ": " + e.Msg }
func (e *EnvError) Unwrap() error { return e.Err }

func envErr(name, format string, args ...any) error {
	return &EnvError{Var: name, Msg: fmt.Sprintf(format, args...)}
}

// ServerFromEnv reads the service settings through getenv (os.Getenv) and
// reads the private key file through readFile (os.ReadFile); both are
// parameters so tests need no process environment or files. An empty
// variable counts as unset. Every variable that is set must be well formed,
// including the private key, so that any command fails fast on a broken
// deployment; whether the App settings are present at all is RequireApp's
// business, since only `bot serve` needs them. It returns the first problem,
// as one line naming the variable.
func ServerFromEnv(getenv func(string) string, readFile func(string) ([]byte, error)) (Server, error) {
	s := Server{
		Listen:         orDefault(getenv(EnvListen), DefaultListen),
		DB:             orDefault(getenv(EnvDB), DefaultDB),
		WebhookSecret:  []byte(getenv(EnvWebhookSecret)),
		TargetsFile:    getenv(EnvTargetsFile),
		DashboardToken: getenv(EnvDashboardToken),
		APIToken:       getenv(EnvAPIToken),
	}
	if len(s.WebhookSecret) == 0 {
		s.WebhookSecret = nil
	}
	if err := checkListen(s.Listen); err != nil {
		return Server{}, err
	}
	if err := checkDB(s.DB); err != nil {
		return Server{}, err
	}
	u, err := parseBaseURL(EnvGitHubAPIURL, orDefault(getenv(EnvGitHubAPIURL), DefaultGitHubAPIURL))
	if err != nil {
		return Server{}, err
	}
	// go-github resolves API paths against the base URL, which works only
	// with a trailing slash (GHES: https://host/api/v3/).
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	s.GitHubAPIURL = u.String()

	if v := getenv(EnvAppID); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return Server{}, envErr(EnvAppID, "must be a positive integer, got %q", v)
		}
		s.AppID = id
	}

	keyFile, keyInline := getenv(EnvPrivateKeyFile), getenv(EnvPrivateKey)
	switch {
	case keyFile != "" && keyInline != "":
		return Server{}, envErr(EnvPrivateKeyFile, "set either %s or %s, not both", EnvPrivateKeyFile, EnvPrivateKey)
	case keyFile != "":
		b, err := readFile(keyFile)
		if err != nil {
			cause := err
			var pe *fs.PathError
			if errors.As(err, &pe) {
				cause = pe.Err // PathError would repeat the path as "open …"
			}
			return Server{}, &EnvError{Var: EnvPrivateKeyFile, Msg: fmt.Sprintf("read %s: %v", keyFile, cause), Err: err}
		}
		if err := checkPrivateKey(b); err != nil {
			return Server{}, &EnvError{Var: EnvPrivateKeyFile, Msg: fmt.Sprintf("%s: %v", keyFile, err), Err: err}
		}
		s.PrivateKey = b
	case keyInline != "":
		b := []byte(keyInline)
		// Env files and CI secret stores often flatten the PEM to one line
		// with literal \n sequences.
		if !strings.Contains(keyInline, "\n") && strings.Contains(keyInline, `\n`) {
			b = []byte(strings.ReplaceAll(keyInline, `\n`, "\n"))
		}
		if err := checkPrivateKey(b); err != nil {
			return Server{}, &EnvError{Var: EnvPrivateKey, Msg: err.Error(), Err: err}
		}
		s.PrivateKey = b
	}

	pu, err := parseBaseURL(EnvPublicURL, orDefault(getenv(EnvPublicURL), DefaultPublicURL))
	if err != nil {
		return Server{}, err
	}
	// Callback URLs are built as PublicURL + "/api/v1/…".
	pu.Path = strings.TrimRight(pu.Path, "/")
	pu.RawPath = ""
	s.PublicURL = pu.String()

	s.Retention = DefaultRetention
	if v := getenv(EnvRetention); v != "" {
		d, err := parseRetention(v)
		if err != nil {
			return Server{}, &EnvError{Var: EnvRetention, Msg: err.Error(), Err: err}
		}
		s.Retention = d
	}

	if s.WriteLimits, err = pacing.ParseLimits(getenv(EnvWriteLimits)); err != nil {
		return Server{}, &EnvError{Var: EnvWriteLimits, Msg: err.Error(), Err: err}
	}

	switch v := strings.ToLower(getenv(EnvLogLevel)); v {
	case "", "info":
		s.LogLevel = slog.LevelInfo
	case "debug":
		s.LogLevel = slog.LevelDebug
	case "warn":
		s.LogLevel = slog.LevelWarn
	case "error":
		s.LogLevel = slog.LevelError
	default:
		return Server{}, envErr(EnvLogLevel, "must be debug, info, warn or error, got %q", getenv(EnvLogLevel))
	}
	return s, nil
}

// RequireApp checks what `bot serve` needs beyond ServerFromEnv: the App id,
// exactly one private key (an RSA key in PEM, PKCS#1 or PKCS#8) and the
// webhook secret. It returns the first problem as one line naming the
// variable.
func (s Server) RequireApp() error {
	switch {
	case s.AppID == 0:
		return envErr(EnvAppID, "required for serve")
	case s.AppID < 0:
		return envErr(EnvAppID, "must be a positive integer, got %d", s.AppID)
	case len(s.PrivateKey) == 0:
		return envErr(EnvPrivateKeyFile, "required for serve (or put the key itself in %s)", EnvPrivateKey)
	case len(s.WebhookSecret) == 0:
		return envErr(EnvWebhookSecret, "required for serve")
	}
	// ServerFromEnv has already checked a key it read; this covers a Server
	// built some other way, which does not know which variable it came from.
	if err := checkPrivateKey(s.PrivateKey); err != nil {
		return &EnvError{Var: EnvPrivateKeyFile + " / " + EnvPrivateKey, Msg: err.Error(), Err: err}
	}
	return nil
}

// parseRetention reads a duration as Go writes them ("36h", "90m") or in
// days, which Go's durations lack ("14d", also "1d12h").
func parseRetention(v string) (time.Duration, error) {
	bad := fmt.Errorf("must be a positive duration such as 14d, 36h or 1d12h, got %q", v)
	var days time.Duration
	rest := v
	if i := strings.IndexByte(v, 'd'); i >= 0 {
		n, err := strconv.ParseUint(v[:i], 10, 16)
		if err != nil {
			return 0, bad
		}
		days, rest = time.Duration(n)*24*time.Hour, v[i+1:]
	}
	var d time.Duration
	if rest != "" {
		var err error
		if d, err = time.ParseDuration(rest); err != nil || d < 0 {
			return 0, bad
		}
	}
	if days+d <= 0 {
		return 0, bad
	}
	return days + d, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return envErr(EnvListen, "must be host:port or :port, e.g. :8080, got %q", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return envErr(EnvListen, "port must be a number from 0 to 65535, got %q", addr)
	}
	return nil
}

// checkDB checks a postgres:// or postgresql:// SHIPBOT_DB: the store
// needs a URL it can parse. The message never shows the value, which may
// hold a password. Any other value is a SQLite file's path, which the
// store checks when it opens it.
func checkDB(db string) error {
	scheme, _, ok := strings.Cut(db, "://")
	if !ok || !strings.EqualFold(scheme, "postgres") && !strings.EqualFold(scheme, "postgresql") {
		return nil
	}
	if _, err := url.Parse(db); err != nil {
		return envErr(EnvDB, "is not a valid %s:// URL (percent-encode special characters in the user name and password)", strings.ToLower(scheme))
	}
	return nil
}

// parseBaseURL checks that v is an absolute http(s) URL without credentials,
// query or fragment. Messages show the value only when it holds no
// credentials.
func parseBaseURL(name, v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole value
		}
		return nil, &EnvError{Var: name, Msg: "must be an absolute http(s) URL: " + err.Error(), Err: err}
	}
	switch {
	case u.User != nil:
		return nil, envErr(name, "must not contain credentials")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, envErr(name, "must be an absolute http(s) URL, got %q", v)
	case u.Host == "":
		return nil, envErr(name, "must be an absolute http(s) URL with a host, got %q", v)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, envErr(name, "must not have a query or fragment, got %q", v)
	}
	return u, nil
}

// checkPrivateKey reports whether b is a PEM-encoded RSA private key, which
// is what GitHub issues for an App and what signing its JWTs needs. Its
// errors never include key material.
func checkPrivateKey(b []byte) error {
	block, _ := pem.Decode(b)
	if block == nil {
		return errors.New("not a PEM private key (want -----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)")
	}
	if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") || block.Type == "ENCRYPTED PRIVATE KEY" {
		return errors.New("the private key is encrypted; provide it unencrypted")
	}
	// The parsers' own errors are ASN.1 diagnostics that help nobody fixing
	// an environment variable, so they are replaced, not wrapped.
	switch block.Type {
	case "RSA PRIVATE KEY":
		if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return errors.New("the PEM block is not a valid PKCS#1 RSA private key")
		}
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return errors.New("the PEM block is not a valid PKCS#8 private key")
		}
		if _, ok := k.(*rsa.PrivateKey); !ok {
			return fmt.Errorf("the private key is %T, want an RSA key", k)
		}
	default:
		return fmt.Errorf("PEM block is %q, want RSA PRIVATE KEY or PRIVATE KEY", block.Type)
	}
	return nil
}

const redacted = "[redacted]"

func mask(set bool) string {
	if set {
		return redacted
	}
	return ""
}

var dsnPasswordRE = regexp.MustCompile(`(?i)(password=)(\S+)`)

// redactDB hides a password in a database URL or key=value DSN.
func redactDB(db string) string {
	if u, err := url.Parse(db); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsnPasswordRE.ReplaceAllString(db, "${1}"+redacted)
}

func dbPassword(db string) string {
	if u, err := url.Parse(db); err == nil && u.User != nil {
		p, _ := u.User.Password()
		return p
	}
	if m := dsnPasswordRE.FindStringSubmatch(db); m != nil {
		return m[2]
	}
	return ""
}

// LogValue implements slog.LogValuer so that logging a Server never writes
// its secrets.
func (s Server) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("listen", s.Listen),
		slog.String("db", redactDB(s.DB)),
		slog.String("github_api_url", s.GitHubAPIURL),
		slog.Int64("app_id", s.AppID),
		slog.String("private_key", mask(len(s.PrivateKey) > 0)),
		slog.String("webhook_secret", mask(len(s.WebhookSecret) > 0)),
		slog.String("targets_file", s.TargetsFile),
		slog.String("public_url", s.PublicURL),
		slog.String("log_level", s.LogLevel.String()),
		slog.String("dashboard_token", mask(s.DashboardToken != "")),
		slog.String("api_token", mask(s.APIToken != "")),
		slog.String("retention", s.Retention.String()),
		slog.String("github_write_limits", s.WriteLimits.String()),
	)
}

// String redacts the secrets, so %v and %+v are safe to log.
func (s Server) String() string {
	return fmt.Sprintf("config.Server{Listen:%q DB:%q GitHubAPIURL:%q AppID:%d PrivateKey:%q WebhookSecret:%q TargetsFile:%q PublicURL:%q LogLevel:%s DashboardToken:%q}",
		s.Listen, redactDB(s.DB), s.GitHubAPIURL, s.AppID, mask(len(s.PrivateKey) > 0),
		mask(len(s.WebhookSecret) > 0), s.TargetsFile, s.PublicURL, s.LogLevel, mask(s.DashboardToken != ""))
}

// GoString makes %#v as safe as %v.
func (s Server) GoString() string { return s.String() }

// Secrets returns the secret values of the settings, for scrubbing output.
func (s Server) Secrets() []string {
	var out []string
	out = appendSecret(out, string(s.PrivateKey))
	out = appendSecret(out, string(s.WebhookSecret))
	out = appendSecret(out, s.DashboardToken)
	out = appendSecret(out, s.APIToken)
	out = appendSecret(out, dbPassword(s.DB))
	return out
}
