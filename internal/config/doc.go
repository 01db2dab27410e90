// Package config reads shipbot's three kinds of configuration and validates
// them before anything acts on them:
//
//   - Server: the service settings from SHIPBOT_* environment variables
//     (ServerFromEnv, then Server.RequireApp for `bot serve`). Errors are one
//     line starting with the variable's name; secrets are redacted from
//     String, GoString and slog output.
//   - Repo: a repository's `.github/shipbot.yml` (ParseRepo), read at the
//     merge commit: one pipeline, or several in the `pipelines:` form, each
//     started by the files a merge changed (Repo.Affected). A repository
//     without the file is not opted in; see DefaultRepo.
//   - Targets: the operator's targets file (ParseTargets, from
//     SHIPBOT_TARGETS_FILE) with deploy targets, their secrets, the
//     repositories allowed to use them, and alarms.
//
// The YAML parsers are strict (unknown and duplicate keys are errors, "1" is
// not a number, "yes" is not a boolean), report every problem at once as an
// ErrorList whose entries carry file, line and column, and never quote a
// secret value in a message. Everything here is a pure function of its
// inputs: file contents and environment lookups are passed in.
package config
