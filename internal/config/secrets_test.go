package config

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ignoreDerived leaves out of comparisons what ParseTargets derives for
// redaction (Target.urlVars, Target.fileSecrets, Alarm.urlVars); the tests
// below check it through Secrets and KnownSecrets.
var ignoreDerived = cmpopts.IgnoreUnexported(Target{}, Alarm{})

// Every credential a URL carries is a secret: a ${VAR} anywhere in it, a
// password (or a user name alone), the basic-auth value net/http sends for
// them, and query values long enough to be tokens; short literal settings
// are not.
func TestURLSecrets(t *testing.T) {
	ts, err := ParseTargets("t.yml", []byte(`
targets:
  query:
    kind: webhook
    url: 'https://hooks.example/x?env=qa&token=${TOKEN}&sig=literal-signature'
    repos: [acme/api]
  path:
    kind: webhook
    url: 'https://hooks.example/services/${PATH_TOKEN}'
    repos: [acme/api]
  basic:
    kind: spinnaker
    url: 'https://deployer:${PW}@echo.example/webhooks/webhook/api'
    gate_url: 'https://ghp_tokenasuser@gate.example'
    application: api
    repos: [acme/api]
alarms:
  a:
    kind: http
    url: 'https://alarms.example/firing?key=${ALARM_KEY}'
`), env("TOKEN", "t1", "PATH_TOKEN", "p-secret", "PW", "pw-9", "ALARM_KEY", "ak"), KindsForTest)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		"query": {"literal-signature", "t1"},
		"path":  {"p-secret"},
		// base64("deployer:pw-9"), base64("ghp_tokenasuser:")
		"basic": {"pw-9", "ZGVwbG95ZXI6cHctOQ==", "ghp_tokenasuser", "Z2hwX3Rva2VuYXN1c2VyOg=="},
	} {
		if diff := cmp.Diff(want, ts.Targets[name].Secrets()); diff != "" {
			t.Errorf("%s: Secrets (-want +got):\n%s", name, diff)
		}
	}
	if !slices.Contains(ts.Secrets(), "ak") {
		t.Errorf("an alarm's ${VAR} is not among the file's secrets: %q", ts.Secrets())
	}
	if slices.Contains(ts.Secrets(), "qa") {
		t.Errorf("a short literal query value is taken for a secret: %q", ts.Secrets())
	}
}

// Whatever a target's downstream answers may quote another target's
// secret: KnownSecrets has them all, Secrets only the target's own.
func TestKnownSecretsCoverTheWholeFile(t *testing.T) {
	ts, err := ParseTargets("t.yml", []byte(`
targets:
  a: {kind: webhook, url: 'https://a.example/', constraints: {k: '${A}'}, repos: [acme/api]}
  b: {kind: webhook, url: 'https://b.example/', signing_secret: '${B}', repos: [acme/api]}
alarms:
  c: {kind: http, url: 'https://u:${C}@c.example/'}
`), env("A", "secret-a", "B", "secret-b", "C", "secret-c"), KindsForTest)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ts.Lookup("a", "acme/api")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"secret-a"}, a.Secrets()); diff != "" {
		t.Errorf("Secrets (-want +got):\n%s", diff)
	}
	known := a.KnownSecrets()
	for _, s := range []string{"secret-a", "secret-b", "secret-c"} {
		if !slices.Contains(known, s) {
			t.Errorf("KnownSecrets %q lacks %q", known, s)
		}
	}
}
