// Package github builds the go-github clients shipbot talks to GitHub with.
//
// Every client is the same stack of round trippers, outermost first:
//
//	go-github (*gh.Client: REST paths, JSON, gh.ErrorResponse)
//	  → ghinstallation (adds the App JWT, or an installation token that it
//	    fetches, caches and refreshes shortly before expiry)
//	    → pacer (installations and token clients, when Options.Pacer is
//	      set: a place among the installation's 20 requests in flight, and
//	      for a write a slot in its windows under GitHub's secondary
//	      limits, rollout writes ahead of reporting; see pace.go)
//	    → ETag cache (installation and token clients only: sends
//	      If-None-Match on repeated GETs and turns a 304 back into the
//	      stored 200; always asks GitHub, see etagcache.go)
//	      → retry/count transport (NewTransport: classifies, counts, retries)
//	        → http.Transport (or Options.Base in tests)
//
// The retry/count transport sits under ghinstallation on purpose: the
// installation token requests that ghinstallation makes are then retried
// and counted exactly like API calls, which matters because the per-merge
// call budget counts token fetches too, and because a transient 502 on the
// token endpoint would otherwise fail every call that needed the token.
//
// The ETag cache sits between the two: below the auth layer, because its
// key includes the credential, and above the retry/count transport, so
// that a 304 is retried, counted and recorded as the 304 it is before the
// cache turns it into a 200 for go-github.
//
// Action mode (NewTokenClient) swaps ghinstallation for a static
// "Authorization: Bearer" header and keeps the rest of the stack.
//
// All requests, the App's own token requests included, go to one REST base
// URL (SHIPBOT_GITHUB_API_URL), so a GitHub Enterprise Server base such as
// https://ghe.example/api/v3/ or a test server works end to end.
package github
