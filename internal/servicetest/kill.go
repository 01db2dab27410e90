package servicetest

import (
	"context"
	"errors"
	"net/http"
)

// ErrCrashed is what a crashed process's requests end in.
var ErrCrashed = errors.New("the process crashed")

// KillSwitch cuts a process's outbound HTTP at once, requests in flight
// included: what a test's "crash" does to the part of a process that talks
// to GitHub and the targets.
type KillSwitch struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// NewKillSwitch is a switch not yet thrown.
func NewKillSwitch() *KillSwitch {
	ctx, cancel := context.WithCancel(context.Background())
	return &KillSwitch{ctx: ctx, cancel: cancel}
}

// Kill throws the switch.
func (k *KillSwitch) Kill() { k.cancel() }

// Transport is base until Kill, and fails with ErrCrashed from then on.
func (k *KillSwitch) Transport(base http.RoundTripper) http.RoundTripper {
	return RoundTripFunc(func(req *http.Request) (*http.Response, error) {
		if k.ctx.Err() != nil {
			return nil, ErrCrashed
		}
		// Cancelled when the process dies, body reads included; a live
		// process's request ends with its body, as any other.
		ctx, cancel := context.WithCancel(req.Context())
		context.AfterFunc(k.ctx, cancel)
		resp, err := base.RoundTrip(req.WithContext(ctx))
		if k.ctx.Err() != nil {
			// The answer came too late: the process is gone.
			if resp != nil {
				resp.Body.Close()
			}
			return nil, ErrCrashed
		}
		return resp, err
	})
}

// RoundTripFunc is a function as an http.RoundTripper.
type RoundTripFunc func(*http.Request) (*http.Response, error)

func (f RoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
