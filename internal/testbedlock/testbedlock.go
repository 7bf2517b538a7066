// Package testbedlock is how the processes that share one testbed take
// turns: the e2e tests (test/e2e, lockTestbed and holdDaemons) and the
// benchmark (hack/bench) lock a part of it (the factory-proxy services and
// timer, "daemons", "bench", ...) with a flock on one file per part under
// Dir. The kernel releases a flock when its process dies, so a killed test
// leaves no stale lock behind. Both sides must agree on the folder and the
// file names, which is why they live here once.
package testbedlock

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Dir holds one lock file per part, <part>.lock.
const Dir = "/run/reconciler-testbed/locks"

// Patience is how long Take waits for a lock before it says, once, that it
// is waiting (another process holds the part).
const Patience = 5 * time.Second

// Take takes a flock on part's lock file, exclusive (syscall.LOCK_EX) or
// shared (syscall.LOCK_SH), waiting as long as another process holds it;
// waiting is called once when that takes longer than Patience. release
// closes the file, which releases the lock.
func Take(part string, how int, waiting func()) (release func(), err error) {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return nil, fmt.Errorf("testbed lock %s: %w", part, err)
	}
	f, err := os.OpenFile(filepath.Join(Dir, part+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testbed lock %s: %w", part, err)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(Patience):
			waiting()
		}
	}()
	err = syscall.Flock(int(f.Fd()), how)
	close(done)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("testbed lock %s: %w", part, err)
	}
	return func() { f.Close() }, nil
}
