// Package github builds the go-github clients shipbot talks to GitHub with.
//
// Every client is the same stack of round trippers, outermost first:
//
//	go-github (*gh.Client: REST paths, JSON, gh.ErrorResponse)
//	  → ghinstallation (adds the App JWT, or an installation token that it
//	    fetches, caches and refreshes shortly before expiry)
//	    → retry/count transport (NewTransport: classifies, counts, retries)
//	      → http.Transport (or Options.Base in tests)
//
// The retry/count transport sits under ghinstallation on purpose: the
// installation token requests that ghinstallation makes are then retried
// and counted exactly like API calls, which matters because the per-merge
// call budget counts token fetches too, and because a transient 502 on the
// token endpoint would otherwise fail every call that needed the token.
//
// Action mode (NewTokenClient) swaps ghinstallation for a static
// "Authorization: Bearer" header and keeps the rest of the stack.
//
// All requests, the App's own token requests included, go to one REST base
// URL (SHIPBOT_GITHUB_API_URL), so a GitHub Enterprise Server base such as
// https://ghe.example/api/v3/ or a test server works end to end.
package github
