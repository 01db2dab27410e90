// Package deploy is the rollout engine's outbound edge: it triggers a
// stage's downstream deploy system and asks how the triggered deploy is
// doing. It holds what every kind of target shares; each kind is a Driver
// in a package of its own (internal/deploy/spinnaker, webhook, dispatch),
// and internal/deploy/drivers registers them in one Registry, which the
// targets file is read with (config.ParseTargets checks each target's
// kind-specific keys through its driver) and the engine triggers through.
//
// # Drivers
//
// A Driver names its kind, reads and checks the kind's keys of the targets
// file, triggers, and says how the outcome reaches shipbot (Learns):
// ByCallback, ByPolling (a Poller's Poll asks; a callback may still come
// first) or Never (the stage is handed off once accepted). Triggerer is the
// engine's single entry point: it checks the target and the payload,
// picks the driver by the target's kind, gives it the Env (what all kinds
// share: the HTTP client and retry policy, GitHub clients, the log), and
// scrubs every error it returns.
//
// # Triggering
//
// The body is the design's trigger payload with the target's constraint
// secrets as top-level fields (Echo's payloadConstraints match top-level
// keys or JSON paths), encoded deterministically (sorted keys) so that a
// resend after a crash is byte-identical, signature included. Env.Post
// sends it to the target's URL for the kinds that take one; a driver's
// Accept may judge a 2xx answer (spinnaker wants Echo's), or any 2xx
// accepts.
//
// # Retries
//
// Env.Post retries on connection errors, attempt timeouts, 5xx (except
// 501), 408 and 429, with exponential backoff and full jitter, honouring
// Retry-After, within RetryPolicy's attempt and time budgets. Every retry
// repeats the same body and the same Idempotency-Key
// (<run_id>-<stage>-<attempt>), which is what makes retrying a POST safe:
// a downstream that already acted on the key must not act again. Other
// 4xx, 3xx (redirects are never followed: they would carry the secrets to
// another URL) and TLS certificate errors fail at once. A kind without an
// idempotency key (github-dispatch) sends once; see its package.
//
// Failures are *Error values: errors.Is(err, ErrPermanent) means the same
// request will never succeed (fail the stage); errors.Is(err, ErrExhausted)
// means transient failures outlasted the budget, and the engine may resend
// the same attempt later (same key, same body) or fail the stage.
//
// # Secrets
//
// Constraint values and the signing secret are only ever put on requests
// to their own target's URL. They never appear in an error, a log line or a
// Result: logs name the target, its kind and host; errors carry the URL
// reduced to scheme, host and path (RedactURL), and their whole text is
// scrubbed of every secret of the targets file (config.Target.KnownSecrets:
// constraint values, signing secrets, what URLs carry, including the basic
// auth they produce) and of the callback token, whatever target the answer
// came from, before anyone can read it: the PR comment, check runs, logs
// and the API all show that text. Redactor scrubs every known secret from
// text the engine writes elsewhere (logs via RedactHandler).
//
// # Polling
//
// A Poller's Poll makes one request and maps what it learns to a Status;
// the caller owns the schedule (the stage's lease and timeout live in the
// engine). A permanent error stops the polling of that execution, and
// Triggerer.Poll says so in its text, which the execution keeps and the
// stage's timeout quotes (Triggerer.Overdue).
package deploy
