package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"reconciler.dev/reconciler/agent"
	"reconciler.dev/reconciler/api/status"
)

func TestTermSafe(t *testing.T) {
	cases := map[string]string{
		"plain text\twith a tab\n":             "plain text\twith a tab\n",
		"Mallory \x1b[2J\x1b]0;pwned\x07<m@x>": "Mallory ^[[2J^[]0;pwned^G<m@x>",
		"over\rwrite":                          "over^Mwrite",
		"del\x7f":                              "del^?",
		"c1 \u009b31m csi":                     "c1 ?31m csi",
		"bidi \u202eevil\u202c":                "bidi ?evil?",
		"lone byte \x9b":                       "lone byte ?",
		"ünïcødé stays, 日本語 too":               "ünïcødé stays, 日本語 too",
		"isolate \u2066x\u2069":                "isolate ?x?",
	}
	for in, want := range cases {
		var b bytes.Buffer
		if _, err := fmt.Fprint(termSafe(&b), in); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Errorf("%q: got %q, want %q", in, b.String(), want)
		}
	}
}

// TestStatusPrintsNoControls: a commit author and an error text with
// escape sequences reach the terminal defused.
func TestStatusPrintsNoControls(t *testing.T) {
	st := status.Status{Host: "h", Revision: &status.RevisionStatus{ID: "0123456789abcdef", Author: "Eve \x1b]8;;http://x\x07", Message: "fix\x1b[1A\x1b[2K"},
		LastPass: &status.PassSummary{Result: "failed", Error: "boom \x1b[31mred"}}
	var b bytes.Buffer
	if err := writeOutput(&b, "text", nil, func(w io.Writer) { printStatus(w, st) }); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(b.String(), 0x1b) || strings.ContainsRune(b.String(), 0x07) {
		t.Errorf("control characters in the output:\n%q", b.String())
	}
	if !strings.Contains(b.String(), "^[[31mred") {
		t.Errorf("the error text is not shown defused:\n%s", b.String())
	}
}

func TestStatusSendsTheToken(t *testing.T) {
	const token = "a-token-of-more-than-16-bytes"
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"host":"h"}`)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, _, err := fetchStatus(context.Background(), addr, "")
	if err == nil || !strings.Contains(err.Error(), "give --token-file") {
		t.Errorf("without a token: %v, want a 401 naming --token-file", err)
	}
	tok, err := agent.ReadToken(file)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := fetchStatus(context.Background(), addr, tok)
	if err != nil || st.Host != "h" {
		t.Errorf("with the token: %+v, %v", st, err)
	}
	// fleet status sends it too.
	var out bytes.Buffer
	root := newRootCommand()
	root.SetArgs([]string{"fleet", "status", "--agents", addr, "--token-file", file, "-o", "json", "--timeout", "5s"})
	root.SetOut(&out)
	err = root.ExecuteContext(context.Background())
	if !strings.Contains(out.String(), `"host": "h"`) {
		t.Errorf("fleet status with --token-file: %v\n%s", err, out.String())
	}
}

func TestFleetServeRefusesNonLoopback(t *testing.T) {
	root := newRootCommand()
	root.SetArgs([]string{"fleet", "serve", "--agents", "127.0.0.1:1", "--listen", "10.213.9.1:9450"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "--allow-non-loopback") {
		t.Errorf("fleet serve on 10.213.9.1: %v, want a refusal naming --allow-non-loopback", err)
	}
}

// FuzzTermSafe: whatever goes in, nothing a terminal acts on comes out
// (C0 but tab and newline, DEL, C1, bidirectional overrides), and text
// without them comes out unchanged.
func FuzzTermSafe(f *testing.F) {
	for _, s := range []string{"plain\n", "\x1b[2J", "\u009b1m", "\u202e", "\xff\xfe", "日本"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var b bytes.Buffer
		if n, err := termSafe(&b).Write(in); err != nil || n != len(in) {
			t.Fatalf("write: %d, %v", n, err)
		}
		out := b.Bytes()
		for _, c := range out {
			if c < 0x20 && c != '\t' && c != '\n' || c == 0x7f {
				t.Fatalf("control byte %#x in %q", c, out)
			}
		}
		if !utf8.Valid(out) {
			t.Fatalf("invalid UTF-8 out: %q", out)
		}
		for _, r := range string(out) {
			if r >= 0x80 && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
				t.Fatalf("rune %U in %q", r, out)
			}
		}
		if utf8.Valid(in) && bytes.Equal(sanitize(in), in) != bytes.Equal(out, in) {
			t.Fatalf("inconsistent: %q -> %q", in, out)
		}
	})
}
