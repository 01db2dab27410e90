package github

import (
	"net/http"

	"github.com/shipbot/shipbot/internal/pacing"
)

// rolloutWrites are the content-generating requests a rollout waits on:
// they may use all of an installation's write windows (pacing.Rollout).
// Every other write reports (pacing.Report) and may use three quarters.
var rolloutWrites = map[string]bool{
	"POST /repos/{owner}/{repo}/releases":                                   true,
	"POST /repos/{owner}/{repo}/git/refs":                                   true,
	"POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches": true,
}

// writeClass is the pacing class of a content-generating request, by its
// route class (Classify); ok is false for a request GitHub does not count
// as one.
func writeClass(method, op string) (c pacing.Class, ok bool) {
	if !isWrite(method) {
		return 0, false
	}
	if rolloutWrites[op] {
		return pacing.Rollout, true
	}
	return pacing.Report, true
}

// isWrite reports whether method is content-generating in GitHub's sense.
func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// pacedTransport keeps one installation's requests within its pacer: a
// place among the requests in flight for every call, and a write slot for
// every content-generating one. It sits above the retry transport, so a
// write GitHub refused and the transport repeats takes one slot: GitHub
// does not count the refused request.
//
// The installation's token request is the App's, not the installation's,
// and every call of the installation may be waiting on it: it passes.
type pacedTransport struct {
	next  http.RoundTripper
	inst  int64
	pacer *pacing.Pacer
}

func (t *pacedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := Classify(req.Method, req.URL.EscapedPath())
	if op == tokenClass {
		return t.next.RoundTrip(req)
	}
	ctx := req.Context()
	leave, err := t.pacer.Enter(ctx, t.inst)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	// In flight until the answer's headers arrive: GitHub's answers are
	// small, and a caller that never closes a body (go-github leaves some
	// to theirs) must not keep the place forever.
	defer leave()
	if c, ok := writeClass(req.Method, op); ok {
		done, err := t.pacer.Take(ctx, t.inst, c)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		defer done()
	}
	return t.next.RoundTrip(req)
}

// closeBody honours RoundTripper's contract for a request not sent.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
