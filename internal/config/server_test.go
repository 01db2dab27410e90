package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/internal/pacing"
)

const webhookSecret = "whsec-do-not-log-7f3a"

type testKeys struct {
	pkcs1, pkcs8, ec, encrypted []byte
	body                        string // a base64 line of the RSA key, to look for in output
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func loadKeys(t *testing.T) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		rk, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			panic(err)
		}
		keys.pkcs1 = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)})
		der, err := x509.MarshalPKCS8PrivateKey(rk)
		if err != nil {
			panic(err)
		}
		keys.pkcs8 = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		if der, err = x509.MarshalPKCS8PrivateKey(ek); err != nil {
			panic(err)
		}
		keys.ec = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		keys.encrypted = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
			Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"},
			Bytes:   []byte("garbage")})
		keys.body = strings.Split(string(keys.pkcs1), "\n")[2]
	})
	return keys
}

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func files(m map[string][]byte) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if b, ok := m[name]; ok {
			return b, nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
}

func TestServerFromEnvDefaults(t *testing.T) {
	got, err := ServerFromEnv(mapEnv(nil), files(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Server{
		Listen:       ":8080",
		DB:           "shipbot.db",
		GitHubAPIURL: "https://api.github.com/",
		PublicURL:    "http://localhost:8080",
		LogLevel:     slog.LevelInfo,
		Retention:    14 * 24 * time.Hour,
		WriteLimits:  pacing.Limits{PerMinute: 80, PerHour: 500},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestServerFromEnv(t *testing.T) {
	k := loadKeys(t)
	tests := []struct {
		name  string
		env   map[string]string
		files map[string][]byte
		want  func(s *Server)
	}{
		{"everything", map[string]string{
			EnvListen: "127.0.0.1:9000", EnvDB: "/data/shipbot.db", EnvGitHubAPIURL: "https://ghe.example/api/v3",
			EnvAppID: "12345", EnvPrivateKeyFile: "/k.pem", EnvWebhookSecret: webhookSecret,
			EnvTargetsFile: "/etc/shipbot/targets.yml", EnvPublicURL: "https://shipbot.example/base/",
			EnvLogLevel: "DEBUG", EnvDashboardToken: "dash", EnvRetention: "36h",
			EnvWriteLimits: "1000/h,100/m",
		}, map[string][]byte{"/k.pem": k.pkcs1}, func(s *Server) {
			*s = Server{
				Listen: "127.0.0.1:9000", DB: "/data/shipbot.db", GitHubAPIURL: "https://ghe.example/api/v3/",
				AppID: 12345, PrivateKey: k.pkcs1, WebhookSecret: []byte(webhookSecret),
				TargetsFile: "/etc/shipbot/targets.yml", PublicURL: "https://shipbot.example/base",
				LogLevel: slog.LevelDebug, DashboardToken: "dash", Retention: 36 * time.Hour,
				WriteLimits: pacing.Limits{PerMinute: 100, PerHour: 1000},
			}
		}},
		{"api url keeps its slash", map[string]string{EnvGitHubAPIURL: "http://127.0.0.1:1234/"}, nil, func(s *Server) {
			s.GitHubAPIURL = "http://127.0.0.1:1234/"
		}},
		{"api url host only", map[string]string{EnvGitHubAPIURL: "https://api.github.com"}, nil, func(s *Server) {}},
		{"public url many slashes", map[string]string{EnvPublicURL: "http://x:8080//"}, nil, func(s *Server) { s.PublicURL = "http://x:8080" }},
		{"pkcs8 key inline", map[string]string{EnvPrivateKey: string(k.pkcs8)}, nil, func(s *Server) { s.PrivateKey = k.pkcs8 }},
		{"inline key with literal \\n", map[string]string{EnvPrivateKey: strings.ReplaceAll(string(k.pkcs1), "\n", `\n`)}, nil,
			func(s *Server) { s.PrivateKey = k.pkcs1 }},
		{"warn", map[string]string{EnvLogLevel: "warn"}, nil, func(s *Server) { s.LogLevel = slog.LevelWarn }},
		{"error", map[string]string{EnvLogLevel: "error"}, nil, func(s *Server) { s.LogLevel = slog.LevelError }},
		{"listen port zero", map[string]string{EnvListen: ":0"}, nil, func(s *Server) { s.Listen = ":0" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ServerFromEnv(mapEnv(tt.env), files(tt.files))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ServerFromEnv(mapEnv(nil), files(nil))
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestServerFromEnvErrors(t *testing.T) {
	k := loadKeys(t)
	tests := []struct {
		name  string
		env   map[string]string
		files map[string][]byte
		want  string
	}{
		{"app id not a number", map[string]string{EnvAppID: "abc"}, nil, `SHIPBOT_APP_ID: must be a positive integer, got "abc"`},
		{"app id zero", map[string]string{EnvAppID: "0"}, nil, `SHIPBOT_APP_ID: must be a positive integer, got "0"`},
		{"app id negative", map[string]string{EnvAppID: "-3"}, nil, `SHIPBOT_APP_ID: must be a positive integer, got "-3"`},
		{"key file missing", map[string]string{EnvPrivateKeyFile: "/x.pem"}, nil, `SHIPBOT_PRIVATE_KEY_FILE: read /x.pem: file does not exist`},
		{"both keys", map[string]string{EnvPrivateKeyFile: "/k.pem", EnvPrivateKey: string(k.pkcs1)}, map[string][]byte{"/k.pem": k.pkcs1},
			`SHIPBOT_PRIVATE_KEY_FILE: set either SHIPBOT_PRIVATE_KEY_FILE or SHIPBOT_PRIVATE_KEY, not both`},
		{"key file not PEM", map[string]string{EnvPrivateKeyFile: "/k.pem"}, map[string][]byte{"/k.pem": []byte("hello " + webhookSecret)},
			`SHIPBOT_PRIVATE_KEY_FILE: /k.pem: not a PEM private key (want -----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)`},
		{"key file EC", map[string]string{EnvPrivateKeyFile: "/k.pem"}, map[string][]byte{"/k.pem": k.ec},
			`SHIPBOT_PRIVATE_KEY_FILE: /k.pem: the private key is *ecdsa.PrivateKey, want an RSA key`},
		{"inline key encrypted", map[string]string{EnvPrivateKey: string(k.encrypted)}, nil,
			`SHIPBOT_PRIVATE_KEY: the private key is encrypted; provide it unencrypted`},
		{"inline key wrong block", map[string]string{EnvPrivateKey: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, nil,
			`SHIPBOT_PRIVATE_KEY: PEM block is "CERTIFICATE", want RSA PRIVATE KEY or PRIVATE KEY`},
		{"inline pkcs8 corrupt", map[string]string{EnvPrivateKey: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, nil,
			`SHIPBOT_PRIVATE_KEY: the PEM block is not a valid PKCS#8 private key`},
		{"inline key corrupt", map[string]string{EnvPrivateKey: "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"}, nil,
			`SHIPBOT_PRIVATE_KEY: the PEM block is not a valid PKCS#1 RSA private key`},
		{"listen without port", map[string]string{EnvListen: "8080"}, nil, `SHIPBOT_LISTEN: must be host:port or :port, e.g. :8080, got "8080"`},
		{"listen bad port", map[string]string{EnvListen: ":http"}, nil, `SHIPBOT_LISTEN: port must be a number from 0 to 65535, got ":http"`},
		{"listen port too big", map[string]string{EnvListen: ":70000"}, nil, `SHIPBOT_LISTEN: port must be a number from 0 to 65535, got ":70000"`},
		{"api url relative", map[string]string{EnvGitHubAPIURL: "api.github.com"}, nil, `SHIPBOT_GITHUB_API_URL: must be an absolute http(s) URL, got "api.github.com"`},
		{"api url scheme", map[string]string{EnvGitHubAPIURL: "ftp://x/"}, nil, `SHIPBOT_GITHUB_API_URL: must be an absolute http(s) URL, got "ftp://x/"`},
		{"api url no host", map[string]string{EnvGitHubAPIURL: "https:///api"}, nil, `SHIPBOT_GITHUB_API_URL: must be an absolute http(s) URL with a host, got "https:///api"`},
		{"api url query", map[string]string{EnvGitHubAPIURL: "https://x/?a=b"}, nil, `SHIPBOT_GITHUB_API_URL: must not have a query or fragment, got "https://x/?a=b"`},
		{"api url credentials", map[string]string{EnvGitHubAPIURL: "https://u:hunter2@x/"}, nil, `SHIPBOT_GITHUB_API_URL: must not contain credentials`},
		{"api url unparsable", map[string]string{EnvGitHubAPIURL: "http://[::1"}, nil, `SHIPBOT_GITHUB_API_URL: must be an absolute http(s) URL: missing ']' in host`},
		{"public url relative", map[string]string{EnvPublicURL: "/shipbot"}, nil, `SHIPBOT_PUBLIC_URL: must be an absolute http(s) URL, got "/shipbot"`},
		{"public url fragment", map[string]string{EnvPublicURL: "https://x/#a"}, nil, `SHIPBOT_PUBLIC_URL: must not have a query or fragment, got "https://x/#a"`},
		{"log level", map[string]string{EnvLogLevel: "verbose"}, nil, `SHIPBOT_LOG_LEVEL: must be debug, info, warn or error, got "verbose"`},
		{"write limits", map[string]string{EnvWriteLimits: "80 a minute"}, nil,
			`SHIPBOT_GITHUB_WRITE_LIMITS: write limits "80 a minute": want a positive number of writes per minute and per hour, like "80/m,500/h"`},
		{"log level slog syntax", map[string]string{EnvLogLevel: "INFO+2"}, nil, `SHIPBOT_LOG_LEVEL: must be debug, info, warn or error, got "INFO+2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{EnvWebhookSecret: webhookSecret}
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := ServerFromEnv(mapEnv(env), files(tt.files))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q\n   want %q", err, tt.want)
			}
			assertNoSecrets(t, err.Error(), webhookSecret, k.body, "hunter2")
			var ee *EnvError
			if !errors.As(err, &ee) || !strings.HasPrefix(err.Error(), ee.Var+": ") {
				t.Errorf("error %q is not an *EnvError naming its variable", err)
			}
		})
	}
}

func TestServerFromEnvKeyFileErrorUnwraps(t *testing.T) {
	_, err := ServerFromEnv(mapEnv(map[string]string{EnvPrivateKeyFile: "/x.pem"}), files(nil))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
}

func TestRequireApp(t *testing.T) {
	k := loadKeys(t)
	valid := Server{AppID: 1, PrivateKey: k.pkcs1, WebhookSecret: []byte(webhookSecret)}
	tests := []struct {
		name   string
		modify func(s *Server)
		want   string
	}{
		{"valid", func(s *Server) {}, ""},
		{"valid pkcs8", func(s *Server) { s.PrivateKey = k.pkcs8 }, ""},
		{"no app id", func(s *Server) { s.AppID = 0 }, "SHIPBOT_APP_ID: required for serve"},
		{"negative app id", func(s *Server) { s.AppID = -1 }, "SHIPBOT_APP_ID: must be a positive integer, got -1"},
		{"no key", func(s *Server) { s.PrivateKey = nil }, "SHIPBOT_PRIVATE_KEY_FILE: required for serve (or put the key itself in SHIPBOT_PRIVATE_KEY)"},
		{"no webhook secret", func(s *Server) { s.WebhookSecret = nil }, "SHIPBOT_WEBHOOK_SECRET: required for serve"},
		{"bad key", func(s *Server) { s.PrivateKey = k.ec }, "SHIPBOT_PRIVATE_KEY_FILE / SHIPBOT_PRIVATE_KEY: the private key is *ecdsa.PrivateKey, want an RSA key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid
			tt.modify(&s)
			err := s.RequireApp()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("RequireApp: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("RequireApp() = %v, want %q", err, tt.want)
			}
		})
	}

	// The whole path serve takes: environment, then RequireApp.
	s, err := ServerFromEnv(mapEnv(map[string]string{EnvAppID: "7", EnvPrivateKeyFile: "/k", EnvWebhookSecret: webhookSecret}),
		files(map[string][]byte{"/k": k.pkcs8}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequireApp(); err != nil {
		t.Errorf("RequireApp after ServerFromEnv: %v", err)
	}
	s, err = ServerFromEnv(mapEnv(nil), files(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequireApp(); err == nil || err.Error() != "SHIPBOT_APP_ID: required for serve" {
		t.Errorf("RequireApp on an empty environment = %v", err)
	}
}

func TestServerNeverShowsSecrets(t *testing.T) {
	k := loadKeys(t)
	s, err := ServerFromEnv(mapEnv(map[string]string{
		EnvAppID: "7", EnvPrivateKey: string(k.pkcs1), EnvWebhookSecret: webhookSecret,
		EnvDashboardToken: "dash-tok-secret", EnvAPIToken: "api-tok-secret", EnvDB: "postgres://shipbot:db-pass-secret@db:5432/shipbot",
	}), files(nil))
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{webhookSecret, k.body, "dash-tok-secret", "api-tok-secret", "db-pass-secret"}
	for _, want := range secrets {
		found := false
		for _, got := range s.Secrets() {
			found = found || strings.Contains(got, want)
		}
		if !found {
			t.Errorf("Secrets() does not cover %q", want)
		}
	}

	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Info("starting", "config", s)
	log.Debug("starting", slog.Any("config", s))
	log.Warn("starting", "config", &s)
	if got := strings.Count(buf.String(), `"webhook_secret":"[redacted]"`); got != 3 {
		t.Errorf("want 3 redacted records, got %d:\n%s", got, buf.String())
	}
	assertNoSecrets(t, buf.String(), secrets...)

	var rec struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(bytes.SplitN(buf.Bytes(), []byte("\n"), 2)[0], &rec); err != nil {
		t.Fatal(err)
	}
	wantLogged := map[string]any{
		"listen": ":8080", "db": "postgres://shipbot:xxxxx@db:5432/shipbot", "github_api_url": "https://api.github.com/",
		"app_id": float64(7), "private_key": "[redacted]", "webhook_secret": "[redacted]", "targets_file": "",
		"public_url": "http://localhost:8080", "log_level": "INFO", "dashboard_token": "[redacted]",
		"api_token": "[redacted]", "retention": "336h0m0s",
		"github_write_limits": "80/m,500/h",
	}
	if diff := cmp.Diff(wantLogged, rec.Config); diff != "" {
		t.Errorf("logged config (-want +got):\n%s", diff)
	}

	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		assertNoSecrets(t, fmt.Sprintf(verb, s), secrets...)
		assertNoSecrets(t, fmt.Sprintf(verb, &s), secrets...)
	}
	if !strings.Contains(s.String(), `WebhookSecret:"[redacted]"`) {
		t.Errorf("String() = %s", s)
	}
}

func TestRedactDB(t *testing.T) {
	tests := []struct{ in, want, password string }{
		{"shipbot.db", "shipbot.db", ""},
		{"postgres://u:p4ss@h/db?sslmode=disable", "postgres://u:xxxxx@h/db?sslmode=disable", "p4ss"},
		{"host=h user=u password=p4ss dbname=d", "host=h user=u password=[redacted] dbname=d", "p4ss"},
	}
	for _, tt := range tests {
		if got := redactDB(tt.in); got != tt.want {
			t.Errorf("redactDB(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := dbPassword(tt.in); got != tt.password {
			t.Errorf("dbPassword(%q) = %q, want %q", tt.in, got, tt.password)
		}
	}
}

func assertNoSecrets(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("output contains secret %q:\n%s", s, out)
		}
	}
}
