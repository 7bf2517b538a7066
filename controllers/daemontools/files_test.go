package daemontools

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestDownFileNeverFollowsALink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, filepath.Join(dir, downFile)); err != nil {
		t.Fatal(err)
	}
	err := writeDownFile(dir)
	if err == nil || !errors.Is(err, syscall.ELOOP) {
		t.Errorf("down file as a dangling link: %v, want ELOOP", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the link's target was created: %v", err)
	}
}

func TestDownFileRefusesAFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, downFile), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- writeDownFile(dir) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a FIFO as the down file was accepted")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("writeDownFile blocked on a FIFO")
	}
}

func TestDownFileCreatedAndKept(t *testing.T) {
	dir := t.TempDir()
	if err := writeDownFile(dir); err != nil {
		t.Fatal(err)
	}
	if err := writeDownFile(dir); err != nil {
		t.Fatalf("again, on the existing file: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, downFile)); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		t.Errorf("down file: %v %v", fi, err)
	}
}

// TestStatusReadNeverBlocks: a FIFO where supervise/status should be (with
// no writer it would block a plain read for ever) is an error at once, as
// is a symlink or an oversized file.
func TestStatusReadNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	sup := filepath.Join(dir, "supervise")
	if err := os.Mkdir(sup, 0o755); err != nil {
		t.Fatal(err)
	}
	status := filepath.Join(sup, "status")
	if err := syscall.Mkfifo(status, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadStatusFile(dir); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, errNotRegular) {
			t.Errorf("FIFO status: %v, want errNotRegular", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("reading a FIFO status blocked")
	}
	sl := &Folder{Dir: dir}
	readStatus(sl)
	if sl.HasStatus || sl.StatusErr == "" {
		t.Errorf("observe of a FIFO status: %+v", sl)
	}

	os.Remove(status)
	real := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(real, make([]byte, DaemontoolsRecordSize), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, status); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStatusFile(dir); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("symlinked status: %v, want ELOOP", err)
	}
	os.Remove(status)
	if err := os.WriteFile(status, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStatusFile(dir); err == nil {
		t.Error("a 1 MiB status file was read")
	}
	if _, err := ReadStatusFile(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no status: %v, want fs.ErrNotExist", err)
	}
}
