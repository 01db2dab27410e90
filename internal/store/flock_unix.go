//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes the exclusive lock on path (created if needed) that says
// one process uses the database beside it. The operating system drops it
// when the process dies, however it dies, so holding it also proves that
// no earlier process is still at work: its leases and claims are over.
// Not SQLite's own locks: those are per transaction, and two processes on
// one file each think they may drive every pipeline.
func lockFile(path string) (*os.File, error) {
	// Readable by all: a process that may only read the database (see
	// Ready) can still take the lock on a read-only descriptor.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, os.ErrPermission) {
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errInUse
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
