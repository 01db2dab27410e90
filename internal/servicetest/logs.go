package servicetest

import (
	"testing"

	"github.com/shipbot/shipbot/internal/syncbuf"
)

// LogBuffer collects a service's logs: an io.Writer that the service may
// write while the test reads.
type LogBuffer struct {
	syncbuf.Buffer
}

// NewLogBuffer returns an empty LogBuffer that, at tb's cleanup, logs what
// it holds if tb failed: all of it, or, when tail > 0, its last tail
// bytes. Create it before what writes to it, so that the dump comes after
// the service stopped (cleanups run last-in first-out).
func NewLogBuffer(tb testing.TB, tail int) *LogBuffer {
	b := &LogBuffer{}
	tb.Cleanup(func() {
		if !tb.Failed() {
			return
		}
		logs := b.String()
		if tail > 0 && len(logs) > tail {
			tb.Logf("service logs (tail):\n…\n%s", logs[len(logs)-tail:])
			return
		}
		tb.Logf("service logs:\n%s", logs)
	})
	return b
}
