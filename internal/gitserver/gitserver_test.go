package gitserver

import (
	"bytes"
	"compress/gzip"
	"testing"
)

func TestV2Command(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("0012command=fetch\n0001000ddeepen 1\n0000"))
	zw.Close()
	for _, tc := range []struct {
		body, encoding, want string
	}{
		{"0014command=ls-refs\n00010009peel\n0000", "", "ls-refs"},
		{"0012command=fetch\n0001000ddeepen 1\n0000", "", "fetch"},
		{"0013command=fetch\n", "", "unknown"}, // length past the body
		{gz.String(), "gzip", "fetch"},
		{"0032want 1111111111111111111111111111111111111111\n", "", "unknown"}, // a v0 request
		{"", "", "unknown"},
		{"zzzz", "", "unknown"},
		{"not gzip", "gzip", "unknown"},
	} {
		if got := v2Command([]byte(tc.body), tc.encoding); got != tc.want {
			t.Errorf("v2Command(%q, %q) = %q, want %q", tc.body, tc.encoding, got, tc.want)
		}
	}
}
