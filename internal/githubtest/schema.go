package githubtest

// ResponseCheck checks one JSON response the fake is about to send: its
// route pattern ("METHOD /template"), status and body. A non-nil error is
// recorded as a SchemaViolation. schemacheck.ValidateResponse is the one
// the tests use; it lives in its own package so that the binary, which
// links this package for `bot demo`, does not link the OpenAPI validator.
type ResponseCheck func(pattern string, status int, body []byte) error

// SchemaViolation is a response the fake sent that does not match GitHub's
// published response schema.
type SchemaViolation struct {
	Pattern string
	Status  int
	Err     string
}

func (v SchemaViolation) String() string { return v.Err }

// WithSchemaCheck runs check on every JSON response the fake sends (except
// injected faults and 304s) and records each mismatch; read them with
// SchemaViolations. Tests pass schemacheck.ValidateResponse, which checks
// against the response schema of GitHub's OpenAPI description. A nil check
// checks nothing.
func WithSchemaCheck(check ResponseCheck) Option { return func(s *Server) { s.check = check } }

// SchemaViolations returns the mismatches recorded since New; always empty
// without WithSchemaCheck.
func (s *Server) SchemaViolations() []SchemaViolation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SchemaViolation(nil), s.violations...)
}

// checkSchema runs the response check; s.mu is held.
func (s *Server) checkSchema(pattern string, status int, body []byte) {
	if err := s.check(pattern, status, body); err != nil {
		s.violations = append(s.violations, SchemaViolation{Pattern: pattern, Status: status, Err: err.Error()})
	}
}
