//go:build unix

package source

import (
	"os"
	"syscall"
)

// openNonBlocking opens name in r for reading with O_NONBLOCK, so that a
// FIFO (or a device) swapped in after the Stat does not hold the reader up;
// for a regular file the flag changes nothing.
func openNonBlocking(r *os.Root, name string) (*os.File, error) {
	return r.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}
