package daemontools

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// record builds a status record byte by byte, the way supervise.c and
// runsv.c lay it out, so the parser is checked against the format and not
// against its own encoder.
func record(unixSec int64, nano uint32, pid uint32, paused, want byte, runit ...byte) []byte {
	b := make([]byte, 0, 20)
	sec := uint64(unixSec) + 1<<62 + 10 // TAI64 label
	for i := 7; i >= 0; i-- {
		b = append(b, byte(sec>>(8*i)))
	}
	b = append(b, byte(nano>>24), byte(nano>>16), byte(nano>>8), byte(nano))
	b = append(b, byte(pid), byte(pid>>8), byte(pid>>16), byte(pid>>24))
	b = append(b, paused, want)
	return append(b, runit...)
}

func TestParseStatus(t *testing.T) {
	at := time.Date(2026, 11, 22, 14, 18, 23, 796000000, time.UTC)
	cases := []struct {
		name    string
		in      []byte
		want    Status
		running bool
		err     string
	}{
		{
			name:    "daemontools up",
			in:      record(at.Unix(), 796000000, 12507, 0, 'u'),
			want:    Status{Changed: at, PID: 12507, Want: 'u'},
			running: true,
		},
		{
			name: "daemontools down, want down",
			in:   record(at.Unix(), 796000000, 0, 0, 'd'),
			want: Status{Changed: at, Want: 'd'},
		},
		{
			name:    "daemontools paused",
			in:      record(at.Unix(), 796000000, 70000, 1, 'u'),
			want:    Status{Changed: at, PID: 70000, Paused: true, Want: 'u'},
			running: true,
		},
		{
			name:    "daemontools once (svc -o: want byte 0)",
			in:      record(at.Unix(), 796000000, 4242, 0, 0),
			want:    Status{Changed: at, PID: 4242, Want: 0},
			running: true,
		},
		{
			name:    "a pid using all four bytes, little-endian",
			in:      record(at.Unix(), 796000000, 0x01020304, 0, 'u'),
			want:    Status{Changed: at, PID: 0x01020304, Want: 'u'},
			running: true,
		},
		{
			name:    "runit run",
			in:      record(at.Unix(), 796000000, 12486, 0, 'u', 0, RunStateRun),
			want:    Status{Runit: true, Changed: at, PID: 12486, Want: 'u', RunState: RunStateRun},
			running: true,
		},
		{
			name:    "runit once running: want d, no term",
			in:      record(at.Unix(), 796000000, 12486, 0, 'd', 0, RunStateRun),
			want:    Status{Runit: true, Changed: at, PID: 12486, Want: 'd', RunState: RunStateRun},
			running: true,
		},
		{
			name:    "runit stopping: term pending",
			in:      record(at.Unix(), 796000000, 12486, 0, 'd', 1, RunStateRun),
			want:    Status{Runit: true, Changed: at, PID: 12486, Want: 'd', Term: true, RunState: RunStateRun},
			running: true,
		},
		{
			name: "runit finish script running: its pid, not the service's",
			in:   record(at.Unix(), 796000000, 555, 0, 'u', 0, RunStateFinish),
			want: Status{Runit: true, Changed: at, PID: 555, Want: 'u', RunState: RunStateFinish},
		},
		{
			name: "runit down, paused flag kept",
			in:   record(at.Unix(), 796000000, 0, 1, 'd', 0, RunStateDown),
			want: Status{Runit: true, Changed: at, Paused: true, Want: 'd'},
		},
		{
			name: "before 1970 is still a valid label",
			in:   record(-86400, 0, 0, 0, 'd'),
			want: Status{Changed: time.Unix(-86400, 0), Want: 'd'},
		},
		{name: "empty", in: nil, err: "0 bytes"},
		{name: "s6 is not read", in: make([]byte, 35), err: "35 bytes"},
		{name: "19 bytes", in: append(record(at.Unix(), 0, 1, 0, 'u'), 0), err: "19 bytes"},
		{name: "nanoseconds out of range", in: record(at.Unix(), 1e9, 1, 0, 'u'), err: "nanoseconds"},
		{name: "unknown want", in: record(at.Unix(), 0, 1, 0, 'x'), err: "wanted state"},
		{name: "unknown runit state", in: record(at.Unix(), 0, 1, 0, 'u', 0, 3), err: "run state"},
		{name: "negative pid", in: record(at.Unix(), 0, 0xffffffff, 0, 'u'), err: "pid"},
		{
			name: "reserved TAI64 label",
			in:   append(bytes.Repeat([]byte{0xff}, 8), make([]byte, 10)...),
			err:  "reserved",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStatus(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseStatus(%x) = %+v, %v; want an error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStatus(%x): %v", tc.in, err)
			}
			if !got.Changed.Equal(tc.want.Changed) {
				t.Errorf("Changed = %s, want %s", got.Changed.UTC(), tc.want.Changed.UTC())
			}
			got.Changed, tc.want.Changed = time.Time{}, time.Time{}
			if got != tc.want {
				t.Errorf("ParseStatus = %+v, want %+v", got, tc.want)
			}
			if got.Running() != tc.running {
				t.Errorf("Running() = %v, want %v", got.Running(), tc.running)
			}
		})
	}
}

// TestParseStatusRealRecords reads records captured from the testbed's
// supervise and runsv (xxd of supervise/status) right after a start.
func TestParseStatusRealRecords(t *testing.T) {
	cases := []struct {
		hex   string
		runit bool
		pid   int
		want  byte
		unix  int64
	}{
		{"400000006b02f9af2fa676a4db3000000075", false, 0x30db, 'u', 0x6b02f9af - 10},
		{"400000006b02f9af26461a74c630000000750001", true, 0x30c6, 'u', 0x6b02f9af - 10},
		{"400000006b02f9b403f5929c000000000000", false, 0, 0, 0x6b02f9b4 - 10},
		{"400000006b02f9b4045254b4000000000064" + "0000", true, 0, 'd', 0x6b02f9b4 - 10},
	}
	for _, tc := range cases {
		b, _ := hex.DecodeString(tc.hex)
		st, err := ParseStatus(b)
		if err != nil {
			t.Fatalf("%s: %v", tc.hex, err)
		}
		if st.Runit != tc.runit || st.PID != tc.pid || st.Want != tc.want || st.Changed.Unix() != tc.unix {
			t.Errorf("%s: got %+v (unix %d)", tc.hex, st, st.Changed.Unix())
		}
		if !bytes.Equal(st.Bytes(), b) {
			t.Errorf("%s: Bytes() = %x", tc.hex, st.Bytes())
		}
	}
}

func TestUptimeFromTheRecord(t *testing.T) {
	changed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := Status{Changed: changed}
	if got := st.Uptime(changed.Add(90 * time.Second)); got != 90*time.Second {
		t.Errorf("Uptime = %s, want 1m30s", got)
	}
	if got := st.Uptime(changed.Add(-time.Second)); got != 0 {
		t.Errorf("Uptime before the change = %s, want 0", got)
	}
}

// FuzzStatusRecord: the parser never panics, accepts only the two record
// sizes, and what it accepts encodes back to the same bytes (nothing is
// silently dropped, except flag bytes other than 0 and 1, which read as
// set).
func FuzzStatusRecord(f *testing.F) {
	at := time.Date(2026, 11, 22, 14, 18, 23, 0, time.UTC).Unix()
	f.Add(record(at, 796000000, 12507, 0, 'u'))
	f.Add(record(at, 0, 0, 0, 'd'))
	f.Add(record(at, 1, 4242, 1, 0))
	f.Add(record(at, 5, 12486, 0, 'd', 1, RunStateRun))
	f.Add(record(at, 5, 555, 0, 'u', 0, RunStateFinish))
	f.Add([]byte{})
	f.Add(make([]byte, 35))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStatus(b)
		if err != nil {
			return
		}
		if len(b) != DaemontoolsRecordSize && len(b) != RunitRecordSize {
			t.Fatalf("accepted a record of %d bytes", len(b))
		}
		if st.Runit != (len(b) == RunitRecordSize) {
			t.Fatalf("runit %v for %d bytes", st.Runit, len(b))
		}
		norm := append([]byte(nil), b...)
		for _, i := range []int{16, 18} {
			if i < len(norm) && norm[i] != 0 {
				norm[i] = 1
			}
		}
		if out := st.Bytes(); !bytes.Equal(out, norm) {
			t.Fatalf("round trip: %x -> %+v -> %x", b, st, out)
		}
		again, err := ParseStatus(st.Bytes())
		if err != nil || !again.Changed.Equal(st.Changed) {
			t.Fatalf("re-parse: %+v, %v", again, err)
		}
		_ = st.Running()
		_ = st.Uptime(time.Now())
	})
}
