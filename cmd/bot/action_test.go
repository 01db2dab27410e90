package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeRelease serves the assets of one GitHub Release as
// <url>/<tag>/<name>, and counts what was asked for.
type fakeRelease struct {
	srv    *httptest.Server
	mu     sync.Mutex
	assets map[string][]byte // "<tag>/<name>"
	asked  []string
}

func newFakeRelease(t *testing.T) *fakeRelease {
	f := &fakeRelease{assets: map[string][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		name := strings.TrimPrefix(r.URL.Path, "/")
		f.asked = append(f.asked, name)
		data, ok := f.assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// publish puts what GoReleaser publishes for tag on linux/amd64: the
// archive holding bot (here a script printing body) and checksums.txt.
// tamper makes the archive differ from its listed checksum.
func (f *fakeRelease) publish(t *testing.T, tag, body string, tamper bool) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, file := range []struct {
		name string
		data string
		mode int64
	}{{"README.md", "# shipbot\n", 0o644}, {"bot", "#!/bin/sh\necho " + body + "\n", 0o755}} {
		if err := tw.WriteHeader(&tar.Header{Name: file.name, Mode: file.mode, Size: int64(len(file.data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(file.data))
	}
	tw.Close()
	gz.Close()
	archive := fmt.Sprintf("shipbot_%s_linux_amd64.tar.gz", strings.TrimPrefix(tag, "v"))
	sum := sha256.Sum256(buf.Bytes())
	listed := hex.EncodeToString(sum[:])
	if tamper {
		listed = strings.Repeat("0", 64)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.assets[tag+"/"+archive] = buf.Bytes()
	f.assets[tag+"/checksums.txt"] = []byte(fmt.Sprintf("%s  shipbot_%s_darwin_arm64.tar.gz\n%s  %s\n",
		strings.Repeat("1", 64), strings.TrimPrefix(tag, "v"), listed, archive))
}

func (f *fakeRelease) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

// actionCheckout lays the action out as the runner does for
// `uses: <repo>/action@<ref>`: the repository at _actions/<owner>/<name>/<ref>,
// here only action/bot.sh and a go.mod.
func actionCheckout(t *testing.T, repo, ref string) string {
	t.Helper()
	script, err := os.ReadFile(filepath.Join("..", "..", "action", "bot.sh"))
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "_actions", filepath.FromSlash(repo), ref)
	if err := os.MkdirAll(filepath.Join(root, "action"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "action", "bot.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/shipbot\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// resolveBot runs `bot.sh resolve` as the action's first step does, with
// the runner's environment, and returns its GITHUB_OUTPUT and stdout.
func resolveBot(t *testing.T, root, downloads string, env ...string) (map[string]string, string) {
	t.Helper()
	for _, tool := range []string{"bash", "curl", "tar", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is needed to run action/bot.sh: %v", tool, err)
			}
			t.Skipf("%s not found", tool)
		}
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "github_output")
	if err := os.WriteFile(out, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "action", "bot.sh"), "resolve")
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"RUNNER_OS=Linux", "RUNNER_ARCH=X64",
		"RUNNER_TOOL_CACHE=" + filepath.Join(dir, "toolcache"), "RUNNER_TEMP=" + dir,
		"GITHUB_OUTPUT=" + out, "GITHUB_SERVER_URL=https://github.invalid",
		"SHIPBOT_ACTION_DOWNLOAD_URL=" + downloads,
	}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bot.sh resolve: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	t.Logf("bot.sh resolve:\n%s%s", stdout.String(), stderr.String())
	return parseOutputs(t, out), stdout.String()
}

// The action prefers the release binary of its ref: downloaded, checked
// against the release's checksums.txt, and used; whatever it cannot check
// it leaves, and the action builds from source instead.
func TestActionFindsItsReleaseBinary(t *testing.T) {
	rel := newFakeRelease(t)
	rel.publish(t, "v1.2.3", "released-1.2.3", false)
	rel.publish(t, "v1.2.4", "tampered", true)

	t.Run("a version tag with a release", func(t *testing.T) {
		// The ref and repository from the action's path, as composite
		// actions are not always told them.
		root := actionCheckout(t, "shipbot/shipbot", "v1.2.3")
		out, _ := resolveBot(t, root, rel.srv.URL)
		bot := out["path"]
		if bot == "" || !strings.Contains(bot, "release-v1.2.3-linux-amd64") {
			t.Fatalf("path %q; want the release binary (outputs %v)", bot, out)
		}
		got, err := exec.Command(bot).Output()
		if err != nil || strings.TrimSpace(string(got)) != "released-1.2.3" {
			t.Errorf("the binary at %s printed %q (%v); want the release's", bot, got, err)
		}
		for _, k := range []string{"build-dir", "build-path", "cache-key", "go-mod"} {
			if out[k] == "" {
				t.Errorf("output %s not set: %v", k, out)
			}
		}
		if !strings.HasPrefix(out["cache-key"], "shipbot-bot-linux-amd64-") || out["go-mod"] != filepath.Join(root, "go.mod") {
			t.Errorf("cache-key %q, go-mod %q", out["cache-key"], out["go-mod"])
		}
	})
	t.Run("an archive that does not match its checksum", func(t *testing.T) {
		root := actionCheckout(t, "shipbot/shipbot", "v1.2.4")
		out, stdout := resolveBot(t, root, rel.srv.URL)
		if out["path"] != "" {
			t.Fatalf("path %q: a binary that failed its checksum was taken", out["path"])
		}
		if !strings.Contains(stdout, "::warning") || !strings.Contains(stdout, "does not match its checksums.txt") {
			t.Errorf("no warning about the checksum:\n%s", stdout)
		}
		if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(out["build-dir"]), "release-*", "bot")); len(matches) > 0 {
			t.Errorf("the rejected binary was kept: %v", matches)
		}
	})
	t.Run("a version tag without a release", func(t *testing.T) {
		out, _ := resolveBot(t, actionCheckout(t, "shipbot/shipbot", "v9.9.9"), rel.srv.URL)
		if out["path"] != "" || out["build-path"] == "" {
			t.Errorf("outputs %v; want a build", out)
		}
	})
	t.Run("a ref that is not a version, without gh", func(t *testing.T) {
		before := len(rel.requests())
		out, _ := resolveBot(t, actionCheckout(t, "shipbot/shipbot", "main"), rel.srv.URL,
			"ACTION_REPOSITORY=shipbot/shipbot", "ACTION_REF=main")
		if out["path"] != "" || len(rel.requests()) != before {
			t.Errorf("outputs %v, downloads %v; want a build and no download", out, rel.requests()[before:])
		}
	})
	t.Run("a local action", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "work", "repo")
		if err := os.MkdirAll(filepath.Join(root, "action"), 0o755); err != nil {
			t.Fatal(err)
		}
		script, _ := os.ReadFile(filepath.Join("..", "..", "action", "bot.sh"))
		os.WriteFile(filepath.Join(root, "action", "bot.sh"), script, 0o755)
		before := len(rel.requests())
		out, _ := resolveBot(t, root, rel.srv.URL)
		if out["path"] != "" || len(rel.requests()) != before {
			t.Errorf("outputs %v; want a build and no download", out)
		}
	})
}
