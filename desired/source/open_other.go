//go:build !unix

package source

import "os"

// openNonBlocking: without O_NONBLOCK, the Stat before it is the guard.
func openNonBlocking(r *os.Root, name string) (*os.File, error) {
	return r.Open(name)
}
