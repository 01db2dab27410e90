// Package deploy is the rollout engine's outbound edge: it triggers a
// stage's downstream deploy system and asks how the triggered deploy is
// doing: Spinnaker Gate for spinnaker targets with Gate configured, GitHub
// for the workflow run a github-dispatch target started.
//
// # Triggering
//
// Triggerer.Trigger sends one stage execution's Payload to a target:
//
//   - spinnaker: POST the JSON body to the Echo webhook URL. Echo answers
//     200 {"eventProcessed":true,"eventId":…} whether or not a pipeline
//     matched, so a Result proves only that Echo accepted the event; the
//     outcome comes from the callback or from Gate (Poller). An answer that
//     is not Echo's shape (an SSO proxy's 200 login page, say) is an error,
//     not an acceptance.
//   - webhook: the same body to any URL; any 2xx accepts.
//   - github-dispatch: a workflow_dispatch through the installation client,
//     with a fixed set of string inputs (see DispatchInputs) and without the
//     constraint secrets, which belong to the target's URL only.
//
// The body is the design's trigger payload with the target's constraint
// secrets as top-level fields (Echo's payloadConstraints match top-level
// keys or JSON paths), encoded deterministically (sorted keys) so that a
// resend after a crash is byte-identical, signature included.
//
// # Retries
//
// HTTP targets are retried on connection errors, attempt timeouts, 5xx
// (except 501), 408 and 429, with exponential backoff and full jitter,
// honouring Retry-After, within RetryPolicy's attempt and time budgets.
// Every retry repeats the same body and the same Idempotency-Key
// (<run_id>-<stage>-<attempt>), which is what makes retrying a POST safe:
// a downstream that already acted on the key must not act again. Other 4xx,
// 3xx (redirects are never followed: they would carry the secrets to
// another URL) and TLS certificate errors fail at once.
//
// github-dispatch is sent once per Trigger: GitHub has no idempotency key
// for workflow_dispatch and its 204 carries no run id, so after a 5xx or a
// dropped connection nobody can tell whether a run was created, and a blind
// retry could deploy twice. The client from the DispatchClients factory
// (internal/github) already retries what GitHub certainly did not act on:
// rate limits and connection failures before sending.
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
// # Polling Gate
//
// Poller.Poll makes one request and maps what Gate says to a State; the
// caller owns the schedule (the stage's lease and timeout live in the
// engine), using RetryPolicy.Backoff or its own.
//
// # Following a dispatched workflow run
//
// GitHub answers a workflow_dispatch with 204 and no run id. The dispatched
// workflow puts the idempotency key in its run's title (run-name), and
// Triggerer.PollDispatch, one request per call like Poller.Poll, first
// searches the workflow's workflow_dispatch runs created since the
// execution began for the title carrying the key (TitleHasKey), then,
// given the run's id, reads that run until it completes; MapRun maps its
// conclusion (success succeeds, anything else fails). The engine keeps the
// run's id on the execution, so a restart reads the same run.
package deploy
