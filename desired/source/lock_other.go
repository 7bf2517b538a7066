//go:build !unix

package source

import "context"

// lockDir is a no-op where flock does not exist; the agent targets Linux.
func lockDir(ctx context.Context, dir string) (func(), error) { return func() {}, nil }
