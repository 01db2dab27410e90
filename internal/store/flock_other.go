//go:build !unix

package store

import "os"

// lockFile is a no-op where flock does not exist (Windows, which shipbot
// does not ship for): a second process is not detected there.
func lockFile(string) (*os.File, error) { return nil, nil }
