package config

import (
	"strings"
)

// EnvVar documents one environment variable of the service.
type EnvVar struct {
	Name string
	// Default is Markdown: a value in backquotes, "none", or when there is
	// no default, what needs the variable ("required for `serve`").
	Default string
	// Meaning is one line of Markdown (backquotes only, no pipes).
	Meaning string
}

// EnvVars is every SHIPBOT_* variable the service reads, in the order
// README.md lists them. It is the one source of README's "Server
// configuration" table (a test keeps the two equal) and of
// `bot serve --help`, so that neither can drift from the code: when you add
// an Env constant, add its row here.
var EnvVars = []EnvVar{
	{EnvListen, "`" + DefaultListen + "`", "listen address"},
	{EnvDB, "`" + DefaultDB + "`", "SQLite database file, or a `postgres://` (`postgresql://`) URL: the PostgreSQL database to use instead (see \"PostgreSQL\")"},
	{EnvGitHubAPIURL, "`" + DefaultGitHubAPIURL + "`", "GitHub REST base URL; for GitHub Enterprise Server include `/api/v3/` (the App's token requests use it too)"},
	{EnvAppID, "required for `serve`", "GitHub App id"},
	{EnvPrivateKeyFile, "required for `serve`, or `" + EnvPrivateKey + "`", "file holding the App's PEM private key"},
	{EnvPrivateKey, "required for `serve`, or `" + EnvPrivateKeyFile + "`", "the App's PEM private key itself (a one-line value may spell newlines `\\n`); set exactly one of the two"},
	{EnvWebhookSecret, "required for `serve`", "the App's webhook secret"},
	{EnvTargetsFile, "none", "server-side deploy targets, secrets and alarms (see \"Targets\")"},
	{EnvPublicURL, "`" + DefaultPublicURL + "`", "the service's external URL, for callback URLs and links"},
	{EnvLogLevel, "`info`", "`debug`, `info`, `warn`, `error`"},
	{EnvAPIToken, "none", "bearer token for the write API (freeze); unset disables it"},
	{EnvDashboardToken, "none", "read token for the dashboard (`Authorization: Bearer …` or `?token=…`, which then sets a cookie); unset leaves it open"},
	{EnvWriteLimits, "`80/m,500/h`", "content-generating GitHub requests (POST, PATCH, PUT, DELETE) per installation a minute and an hour: GitHub's secondary limits; set your GitHub Enterprise Server's own (see \"GitHub's write limits\")"},
	{EnvRetention, "`14d`", "how long processed deliveries keep their payloads (their rows, runs and events stay); a Go duration or days: `14d`, `36h`, `1d12h`"},
}

// EnvMarkdown renders EnvVars as the Markdown table of README.md.
func EnvMarkdown() string {
	var b strings.Builder
	b.WriteString("| variable | meaning | default |\n|---|---|---|\n")
	for _, v := range EnvVars {
		b.WriteString("| `" + v.Name + "` | " + v.Meaning + " | " + v.Default + " |\n")
	}
	return b.String()
}
