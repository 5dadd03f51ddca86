//go:build !unix

package runstore

import "time"

// lockDir is a no-op where flock is missing: one scheduler per state
// directory is then the operator's responsibility.
func lockDir(string, time.Duration) (func(), error) { return func() {}, nil }
