package githubtest

// holdInFlight makes every request counted toward an installation's
// concurrency limit call hook, with that installation's id, while it is in
// flight (before it is served), so a test can keep requests in flight
// until it lets them go. A nil hook removes it.
func (s *Server) holdInFlight(hook func(installation int64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlightHook = hook
}
