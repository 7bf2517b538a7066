package restarton

import (
	"os"
	"testing"
)

// FuzzLoad: a record file of any content is read or refused with an error
// naming the subject, never a panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"value":"v1","since":"2026-12-02T04:00:01Z"}`))
	f.Add([]byte(`{"value":`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &Store{Dir: t.TempDir()}
		if err := os.WriteFile(s.path("supervisor/p"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.Load("supervisor/p"); err == nil && !ok {
			t.Error("a record file that reads without error is not a record")
		}
	})
}
