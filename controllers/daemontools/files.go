package daemontools

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The files of a service folder are the host's, but a folder may be
// writable by the service's own user, who could put a FIFO, a symlink or a
// huge file where the driver expects a small regular file. Every read and
// create here opens without following a final symlink and without
// blocking, and checks with fstat what it opened before using it.

// maxStatusFile bounds what is read of a status record or a mark file.
const maxStatusFile = 4 << 10

// errNotRegular says a path holds something other than a regular file.
var errNotRegular = errors.New("not a regular file")

// openNoFollow opens path with flags plus O_NOFOLLOW, O_NONBLOCK and
// O_CLOEXEC, and refuses anything that is not a regular file.
func openNoFollow(path string, flags int, perm uint32) (*os.File, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, flags|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, perm)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		syscall.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: path, Err: errNotRegular}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// readSmall reads a regular file of at most maxStatusFile bytes.
func readSmall(path string) ([]byte, error) {
	f, err := openNoFollow(path, syscall.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStatusFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxStatusFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxStatusFile)
	}
	return b, nil
}

// ReadStatusFile reads and parses DIR/supervise/status without blocking:
// a FIFO or a symlink in its place is an error at once. A missing record
// is an error that errors.Is fs.ErrNotExist.
func ReadStatusFile(dir string) (Status, error) {
	b, err := readSmall(filepath.Join(dir, "supervise", "status"))
	if err != nil {
		return Status{}, err
	}
	return ParseStatus(b)
}

// writeDownFile creates DIR/down, as the runbook's touch did, but never
// through a symlink (O_NOFOLLOW: a link planted as "down" is refused, not
// followed to create or open its target) and never on anything but a
// regular file. Nothing is written to it.
func writeDownFile(dir string) error {
	f, err := openNoFollow(filepath.Join(dir, downFile), syscall.O_WRONLY|syscall.O_CREAT, 0o644)
	if err != nil {
		return fmt.Errorf("creating the down file: %w", err)
	}
	return f.Close()
}
