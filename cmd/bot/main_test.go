package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/store"
)

func runBot(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// clearEnv unsets every SHIPBOT_ variable for the test.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SHIPBOT_") {
			t.Setenv(k, "")
		}
	}
}

func TestServeStartupErrorsNameTheVariable(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"nothing set", nil, "SHIPBOT_APP_ID"},
		{"bad app id", map[string]string{"SHIPBOT_APP_ID": "abc"}, "SHIPBOT_APP_ID"},
		{"no key", map[string]string{"SHIPBOT_APP_ID": "1", "SHIPBOT_WEBHOOK_SECRET": "s"}, "SHIPBOT_PRIVATE_KEY"},
		{"missing key file", map[string]string{"SHIPBOT_APP_ID": "1", "SHIPBOT_WEBHOOK_SECRET": "s", "SHIPBOT_PRIVATE_KEY_FILE": filepath.Join(dir, "none.pem")}, "SHIPBOT_PRIVATE_KEY_FILE"},
		{"bad log level", map[string]string{"SHIPBOT_LOG_LEVEL": "loud"}, "SHIPBOT_LOG_LEVEL"},
		{"bad api url", map[string]string{"SHIPBOT_GITHUB_API_URL": "not a url"}, "SHIPBOT_GITHUB_API_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, stderr := runBot(t, "serve")
			if code == 0 {
				t.Fatal("serve started; want a non-zero exit")
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("stderr = %q; want one line naming %s", stderr, tc.want)
			}
		})
	}
}

func TestServeRefusesMalformedTargetsFile(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets.yml")
	os.WriteFile(targets, []byte("targets:\n  qa:\n    kind: rocket\n"), 0o600)
	t.Setenv("SHIPBOT_APP_ID", "1")
	t.Setenv("SHIPBOT_WEBHOOK_SECRET", "s")
	t.Setenv("SHIPBOT_PRIVATE_KEY", testKeyPEM(t))
	t.Setenv("SHIPBOT_TARGETS_FILE", targets)
	code, _, stderr := runBot(t, "serve")
	if code == 0 || !strings.Contains(stderr, "targets.yml:3:") {
		t.Fatalf("exit %d, stderr %q; want failure naming targets.yml line 3", code, stderr)
	}
}

// Warnings about the targets file are logged once at start, with their
// line. The listen address is taken, so serve stops right after them.
func TestServeWarnsAboutTargetsAtStart(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets.yml")
	os.WriteFile(targets, []byte("targets:\n  qa:\n    kind: webhook\n    url: http://169.254.169.254/latest\n    constraints: {key: '${SHIPBOT_TEST_NOT_SET}'}\n    repos: [acme/api]\n"), 0o600)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	t.Setenv("SHIPBOT_APP_ID", "1")
	t.Setenv("SHIPBOT_WEBHOOK_SECRET", "s")
	t.Setenv("SHIPBOT_PRIVATE_KEY", testKeyPEM(t))
	t.Setenv("SHIPBOT_TARGETS_FILE", targets)
	t.Setenv("SHIPBOT_DB", filepath.Join(dir, "shipbot.db"))
	t.Setenv("SHIPBOT_LISTEN", busy.Addr().String())
	code, _, stderr := runBot(t, "serve")
	if code == 0 {
		t.Fatal("serve started on a busy address")
	}
	for _, want := range []string{
		`"level":"WARN","msg":"targets file","warning":"targets.qa.url: points at \"169.254.169.254\", a link-local address`,
		`"line":4,"column":10}`,
		`"level":"WARN","msg":"targets file","warning":"targets.qa.constraints.key: ${SHIPBOT_TEST_NOT_SET} is not set`,
		`"line":5,"column":24}`,
	} {
		if strings.Count(stderr, want) != 1 {
			t.Errorf("stderr has %q %d times; want once:\n%s", want, strings.Count(stderr, want), stderr)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	os.WriteFile(good, []byte("version: 1\nstages:\n  - name: qa\n    target: spinnaker-qa\n"), 0o644)
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("version: 1\nstages:\n  - name: qa\n    target: spinnaker-qa\n    bake: 10 minutes\n"), 0o644)

	if code, out, _ := runBot(t, "check-config", good); code != 0 || !strings.Contains(out, "valid") {
		t.Errorf("good file: exit %d, %q", code, out)
	}
	code, _, stderr := runBot(t, "check-config", bad)
	if code != 1 || !strings.Contains(stderr, "bad.yml:5:") {
		t.Errorf("bad file: exit %d, stderr %q; want exit 1 naming bad.yml:5:", code, stderr)
	}
	if code, _, _ := runBot(t, "check-config"); code != 2 {
		t.Errorf("no argument: exit %d; want 2", code)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, stderr := runBot(t, "deploy-everything")
	if code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Fatalf("exit %d, %q", code, stderr)
	}
}

func testKeyPEM(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

func TestMigrateAppliesOnceAndVersionPrints(t *testing.T) {
	clearEnv(t)
	db := filepath.Join(t.TempDir(), "shipbot.db")
	t.Setenv("SHIPBOT_DB", db)
	code, out, stderr := runBot(t, "migrate")
	if code != 0 || !strings.Contains(out, "applied migrations") {
		t.Fatalf("first migrate: exit %d, %q %q", code, out, stderr)
	}
	if code, out, _ = runBot(t, "migrate"); code != 0 || !strings.Contains(out, "schema up to date") {
		t.Fatalf("second migrate: exit %d, %q", code, out)
	}
	if code, out, _ = runBot(t, "version"); code != 0 || !strings.HasPrefix(out, "shipbot ") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
}

// A second bot serve on a SQLite file another process uses exits non-zero
// at start, with one line naming the file; it does not run beside the
// first. (The first process is stood for by an open store: the lock is the
// OS's, per open file, so it excludes this process's second open too.)
func TestServeRefusesASQLiteFileInUse(t *testing.T) {
	clearEnv(t)
	db := filepath.Join(t.TempDir(), "shipbot.db")
	first, err := store.OpenSQLite(db)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	t.Setenv("SHIPBOT_APP_ID", "1")
	t.Setenv("SHIPBOT_WEBHOOK_SECRET", "s")
	t.Setenv("SHIPBOT_PRIVATE_KEY", testKeyPEM(t))
	t.Setenv("SHIPBOT_DB", db)
	t.Setenv("SHIPBOT_LISTEN", "127.0.0.1:0")
	code, _, stderr := runBot(t, "serve")
	if code == 0 {
		t.Fatal("a second serve on a file in use started")
	}
	// After the start-up log line, the error: one line.
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "bot serve: ") || !strings.Contains(last, db) || !strings.Contains(last, "in use") {
		t.Errorf("stderr = %q; want it to end with one line naming %s as in use", stderr, db)
	}
}
