package servicetest

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/shipbot/shipbot/internal/service"
)

// Listen listens on a free loopback port, for a service whose address must
// be known before it is built (its public URL).
func Listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// Server is a service started by Start.
type Server struct {
	// URL is where the service is reached: http://127.0.0.1:port.
	URL string

	tb     testing.TB
	owner  string
	secret []byte
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// Start builds the service from opts (service.New) and serves it on ln
// until it is stopped: by Stop, Kill, or, at the latest, at tb's cleanup
// (registered here, so a rig's own cleanup registered later runs first and
// may stop it in its own order).
func Start(tb testing.TB, ln net.Listener, opts service.Options) *Server {
	tb.Helper()
	svc, err := service.New(opts)
	if err != nil {
		ln.Close()
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		URL: "http://" + ln.Addr().String(),
		tb:  tb, owner: opts.Owner, secret: opts.WebhookSecret,
		cancel: cancel, done: make(chan error, 1),
	}
	go func() { s.done <- svc.Serve(ctx, ln) }()
	tb.Cleanup(s.Stop)
	return s
}

// Hook is the service's webhook endpoint, with its secret.
func (s *Server) Hook() Hook {
	return Hook{URL: s.URL + WebhookPath, Secret: s.secret}
}

// Cancel tells the service to shut down (cancels Serve's context) and
// returns at once; Stop or Kill then waits for it.
func (s *Server) Cancel() { s.cancel() }

// Stop shuts the service down gracefully, as SIGTERM does: it cancels
// Serve's context, waits until Serve returned and fails tb if Serve
// returned an error. Only the first call of Stop or Kill does anything.
func (s *Server) Stop() {
	s.once.Do(func() {
		s.cancel()
		if err := <-s.done; err != nil {
			if s.owner != "" {
				s.tb.Errorf("%s: serve: %v", s.owner, err)
			} else {
				s.tb.Errorf("serve: %v", err)
			}
		}
	})
}

// Kill is Stop for a process a test makes crash: what Serve returns from
// a dying process means nothing, and is dropped.
func (s *Server) Kill() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
	})
}
