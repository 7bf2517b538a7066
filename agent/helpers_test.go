package agent

// The helpers that several of the package's test files use.

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/status"
)

// receive returns the next value of ch, and fails the test if none comes
// within d (what names what was awaited).
func receive[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("no %s within %s", what, d)
		panic("unreachable")
	}
}

// answer serves one request on h and returns what h wrote.
func answer(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// getPath is answer for a plain GET of path.
func getPath(h http.Handler, path string) *httptest.ResponseRecorder {
	return answer(h, httptest.NewRequest(http.MethodGet, path, nil))
}

func countEvents(st status.Status, typ string) int {
	n := 0
	for _, ev := range st.Events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

func conditionStatus(st status.Status, typ string) string {
	for _, c := range st.Conditions {
		if c.Type == typ {
			if c.Status {
				return "true"
			}
			return "false"
		}
	}
	return "absent"
}

// secretFile writes content as a token or secret file (mode 0600, with
// the newline an editor leaves) and returns its path.
func secretFile(t testing.TB, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
