package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// testOnly are import paths (a trailing slash makes a prefix) the bot binary
// must not link: packages and modules only tests use. `bot demo` links the
// GitHub fake, internal/githubtest, but not the OpenAPI check its tests turn
// on (internal/githubtest/schemacheck, with kin-openapi and the description
// it embeds).
var testOnly = []string{
	"testing",
	"testing/",
	"github.com/shipbot/shipbot/internal/githubtest/schemacheck",
	"github.com/shipbot/shipbot/internal/servicetest",
	"github.com/shipbot/shipbot/internal/deploy/deploytest",
	"github.com/getkin/kin-openapi/",
	"github.com/santhosh-tekuri/jsonschema/",
	"github.com/oasdiff/",
	"github.com/go-openapi/",
	"github.com/chromedp/",
	"github.com/google/go-cmp/",
}

// TestBinaryLinksNoTestOnlyPackages lists what cmd/bot links, as the
// release build (CGO_ENABLED=0) sees it, and fails on a test-only package.
func TestBinaryLinksNoTestOnlyPackages(t *testing.T) {
	root := runtime.GOROOT()
	if root == "" {
		t.Skip("GOROOT unknown; cannot find the go command")
	}
	gobin := filepath.Join(root, "bin", "go")
	cmd := exec.Command(gobin, "list", "-deps", ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s list -deps .: %v\n%s", gobin, err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/shipbot/shipbot/cmd/bot" {
		t.Fatalf("go list -deps . did not end with cmd/bot:\n%s", out)
	}
	for _, dep := range deps {
		for _, bad := range testOnly {
			if dep == bad || strings.HasSuffix(bad, "/") && strings.HasPrefix(dep, bad) {
				t.Errorf("cmd/bot links %s, which only tests should import", dep)
			}
		}
	}
}
