// Package githubtest is an in-memory, stateful fake of the GitHub REST API,
// served over real HTTP by net/http/httptest.
//
// It exists so that shipbot's GitHub-facing code (the go-github client with
// App JWTs and installation tokens, the gate, release and report packages,
// and the `bot demo` command) can be exercised end to end without a network
// or an account, while still speaking GitHub's exact wire format: routes,
// status codes, error bodies, pagination Link headers, ETags and 304s, and
// JSON response shapes that validate against GitHub's published OpenAPI
// description (tests check that with WithSchemaCheck and package
// schemacheck).
//
// # Using it
//
//	srv := githubtest.New()
//	defer srv.Close()
//	srv.AddRepo("acme/api", githubtest.RepoSpec{
//		Files: map[string]string{".github/shipbot.yml": "version: 1\n"},
//	})
//	pr := srv.OpenPullRequest("acme/api", githubtest.PullRequestSpec{
//		Title: "feat: add things", Author: "alice",
//		Files: map[string]string{"main.go": "package main\n"},
//	})
//	srv.AddReview("acme/api", pr, "bob", "APPROVED", "")
//	sha := srv.Merge("acme/api", pr, "alice")
//	body := srv.PullRequestEvent("acme", "api", pr, "closed")
//	resp, err := githubtest.Deliver(ctx, hookURL, "pull_request", "delivery-1", body, secret)
//
// Point a client at URL() (or GHESURL() for a GitHub Enterprise Server style
// base ending in /api/v3/). Authenticate as the App with AppID and
// PrivateKeyPEM (the fake verifies the JWT and issues installation tokens),
// or register a static token with AddStaticToken, as a workflow's
// GITHUB_TOKEN would be.
//
// Every request is recorded (Requests, Count) under its route pattern, which
// is the path template of GitHub's OpenAPI description, for example
// "GET /repos/{owner}/{repo}/pulls/{pull_number}"; Routes lists them all.
// FailNext injects faults and SetLatency adds a delay to every request.
//
// # Rate limits
//
// Every response carries GitHub's primary rate-limit headers
// (X-RateLimit-*), but the fake does not refuse requests over the primary
// limit. WithSecondaryLimits makes it enforce GitHub's secondary rate
// limits per App installation (GitHubSecondaryLimits, also what a zero
// SecondaryLimits means): at most 80 content-generating requests (POST,
// PATCH, PUT, DELETE) in any rolling minute and 500 in any rolling hour,
// and at most 100 requests of any method in flight at once. Only requests
// made with an installation token count: not the App-JWT routes (the token
// exchange POST /app/installations/{installation_id}/access_tokens among
// them), not static tokens, and the fake serves no GraphQL. A request over
// a limit is answered as GitHub does, 403 with the body
//
//	{"message": "You have exceeded a secondary rate limit. Please wait a few
//	minutes before you try again. If you reach out to GitHub Support for
//	help, please include the request ID <id>.", "documentation_url":
//	"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
//	"status": "403"}
//
// and headers Retry-After (whole seconds until the window admits one more
// request, at least 1; 1 for the concurrency limit) and
// X-GitHub-Request-Id, which go-github returns as
// *github.AbuseRateLimitError with RetryAfter set. A refused request has
// no effect and does not count toward the limits; it is still recorded in
// Requests. Any other write counts, whatever it answers (a 404 or 422
// too). The windows roll by the fake's clock (WithClock), so a test moves
// time instead of sleeping. Without the option nothing is refused.
// Either way the fake measures: SecondaryLimitRefusals,
// MaxWritesInAnyMinute, MaxWritesInAnyHour and MaxConcurrentRequests let a
// test assert that a client stays within GitHub's limits.
//
// Webhook bodies come from the builders (PullRequestEvent, PushEvent,
// MergeGroupEvent, CheckSuiteEvent, …), which start from GitHub's published
// examples and say what the fake's state says. A merge queue is
// EnqueueMergeGroup (the group's gh-readonly-queue branch of merge
// commits), then LandMergeGroup (one fast-forward push of the base branch,
// each pull request merged by MergeQueueBot with its own merge commit) or
// DequeueMergeGroup.
//
// Setup and reader methods name a repository by its full name "owner/name".
// They panic when given a repository, pull request or commit that does not
// exist: that is a mistake in the calling test or demo script, not a
// condition to handle. All methods are safe for concurrent use.
//
// The package must not import package testing, or anything else only tests
// need, outside _test.go files, because the demo command links it into the
// shipbot binary. That is why the OpenAPI validator (kin-openapi and the
// embedded description) is in package schemacheck: cmd/bot's
// TestBinaryLinksNoTestOnlyPackages fails if the binary links it.
package githubtest
