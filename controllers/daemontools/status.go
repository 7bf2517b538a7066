package daemontools

import (
	"encoding/binary"
	"fmt"
	"time"
)

// The sizes of the status record supervise keeps in DIR/supervise/status.
const (
	// DaemontoolsRecordSize is daemontools' record: TAI64N, pid, paused, want.
	DaemontoolsRecordSize = 18
	// RunitRecordSize is runit's: the same 18 bytes, then a term flag and
	// the run state.
	RunitRecordSize = 20
)

// tai64Epoch is the TAI64 label of 1970-01-01 00:00:00 UTC as daemontools
// and runit write it: 2^62 plus the 10 s TAI was ahead of UTC in 1970
// (neither tool counts the leap seconds since, and neither do we).
const tai64Epoch = 1<<62 + 10

// The run states of runit's record (byte 19).
const (
	RunStateDown   = 0 // nothing runs
	RunStateRun    = 1 // ./run runs
	RunStateFinish = 2 // ./finish runs after ./run exited
)

// Status is one supervise status record.
type Status struct {
	// Runit is true for a 20-byte record (runsv), false for daemontools'.
	Runit bool
	// Changed is when the state last changed (the service started or
	// stopped), from the record's TAI64N label.
	Changed time.Time
	// PID is the process supervise runs (0: none). Under runit it is the
	// ./finish script while RunState is RunStateFinish.
	PID int
	// Paused is true after svc -p (a STOP signal) until svc -c.
	Paused bool
	// Want is what supervise is told to keep: 'u' (restart it when it
	// stops), 'd' (keep it down) or 0 (daemontools after svc -o: run once,
	// do not restart). runit writes 'd' after sv once.
	Want byte
	// Term (runit) is true while a TERM sent to the service is pending.
	Term bool
	// RunState (runit) is RunStateDown, RunStateRun or RunStateFinish.
	RunState byte
}

// ParseStatus decodes a status record, telling daemontools (18 bytes) from
// runit (20 bytes) by its size. Both start with a TAI64N label (8 bytes of
// seconds and 4 of nanoseconds, big-endian), then the pid (4 bytes,
// little-endian), a paused flag and the wanted state ('u', 'd', or 0 after
// daemontools' svc -o); runit adds a term flag and the run state.
func ParseStatus(b []byte) (Status, error) {
	if len(b) != DaemontoolsRecordSize && len(b) != RunitRecordSize {
		return Status{}, fmt.Errorf("status record of %d bytes: want %d (daemontools) or %d (runit)",
			len(b), DaemontoolsRecordSize, RunitRecordSize)
	}
	sec := binary.BigEndian.Uint64(b[0:8])
	nano := binary.BigEndian.Uint32(b[8:12])
	if sec >= 1<<63 {
		return Status{}, fmt.Errorf("status record: TAI64 label %#x is reserved (top bit set)", sec)
	}
	if nano >= 1e9 {
		return Status{}, fmt.Errorf("status record: %d nanoseconds is not below one second", nano)
	}
	pid := binary.LittleEndian.Uint32(b[12:16])
	if pid > 1<<31-1 {
		return Status{}, fmt.Errorf("status record: pid %d out of range", pid)
	}
	s := Status{
		Changed: time.Unix(int64(sec)-tai64Epoch, int64(nano)),
		PID:     int(pid),
		Paused:  b[16] != 0,
		Want:    b[17],
	}
	switch s.Want {
	case 'u', 'd', 0:
	default:
		return Status{}, fmt.Errorf("status record: wanted state %q is not u, d or none", s.Want)
	}
	if len(b) == RunitRecordSize {
		s.Runit = true
		s.Term = b[18] != 0
		s.RunState = b[19]
		if s.RunState > RunStateFinish {
			return Status{}, fmt.Errorf("status record: runit run state %d is not 0, 1 or 2", s.RunState)
		}
	}
	return s, nil
}

// Bytes encodes the record as supervise (or runsv, when Runit) writes it.
func (s Status) Bytes() []byte {
	n := DaemontoolsRecordSize
	if s.Runit {
		n = RunitRecordSize
	}
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b[0:8], uint64(s.Changed.Unix()+tai64Epoch))
	binary.BigEndian.PutUint32(b[8:12], uint32(s.Changed.Nanosecond()))
	binary.LittleEndian.PutUint32(b[12:16], uint32(s.PID))
	if s.Paused {
		b[16] = 1
	}
	b[17] = s.Want
	if s.Runit {
		if s.Term {
			b[18] = 1
		}
		b[19] = s.RunState
	}
	return b
}

// Running is true while the service's ./run process is alive: a pid for
// daemontools; run state "run" for runit (whose pid is the ./finish script
// while that runs).
func (s Status) Running() bool {
	if s.Runit {
		return s.RunState == RunStateRun && s.PID != 0
	}
	return s.PID != 0
}

// WantsUp is true when supervise restarts the service whenever it stops.
func (s Status) WantsUp() bool { return s.Want == 'u' }

// Uptime is how long the service has been in its state at now (up or
// down), from the record's own time.
func (s Status) Uptime(now time.Time) time.Duration {
	d := now.Sub(s.Changed)
	if d < 0 {
		return 0
	}
	return d
}
