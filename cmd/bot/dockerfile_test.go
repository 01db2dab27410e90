package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// No Docker engine runs where the tests do, so the image's promises are
// checked in its recipe: bases pinned by digest, the database in a volume
// the non-root user owns, and a build context without the repository's
// history or local databases.
func TestDockerfileKeepsItsPromises(t *testing.T) {
	root := filepath.Join("..", "..")
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	pinned := regexp.MustCompile(`^FROM \S+:\S+@sha256:[0-9a-f]{64}( AS \w+)?$`)
	froms := 0
	var env, volume, chown string
	for l := range strings.Lines(string(df)) {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "FROM "):
			froms++
			if !pinned.MatchString(l) {
				t.Errorf("base image not pinned by digest: %s", l)
			}
		case strings.HasPrefix(l, "ENV "):
			env = l
		case strings.HasPrefix(l, "VOLUME "):
			volume = strings.TrimPrefix(l, "VOLUME ")
		case strings.HasPrefix(l, "COPY --from=build --chown="):
			chown = l
		}
	}
	if froms != 2 {
		t.Errorf("%d FROM lines; want the build and the runtime stage", froms)
	}
	if volume != "/data" || !strings.Contains(env, "SHIPBOT_DB=/data/shipbot.db") {
		t.Errorf("the database must live in the /data volume: VOLUME %q, %s", volume, env)
	}
	// distroless's nonroot is uid 65532; the volume's directory must be
	// its own or SQLite cannot create the database.
	if !strings.Contains(chown, "65532:65532") || !strings.HasSuffix(chown, " /data") {
		t.Errorf("/data is not made nonroot's: %q", chown)
	}

	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ignored []string
	for s := bufio.NewScanner(f); s.Scan(); {
		if l := strings.TrimSpace(s.Text()); l != "" && !strings.HasPrefix(l, "#") {
			ignored = append(ignored, l)
		}
	}
	for _, want := range []string{".git", "**/*.db", "/bot"} {
		if !slices.Contains(ignored, want) {
			t.Errorf(".dockerignore lacks %s: %v", want, ignored)
		}
	}
}
