package main

import (
	"io"
	"unicode/utf8"
)

// termSafe wraps a writer of text meant for a terminal. Much of what the
// CLI prints comes from others: commit authors and messages, error text
// from git servers and agents, file names in a repository. A control
// character in it could move the cursor, rewrite earlier lines, retitle
// the window or hide text; so C0 controls other than tab and newline, and
// DEL, are written in caret notation (ESC as ^[), and C1 controls and the
// bidirectional overrides as '?'. JSON output does not go through it: JSON
// escapes C0 itself and its readers are programs.
func termSafe(w io.Writer) io.Writer { return termWriter{w} }

type termWriter struct{ w io.Writer }

func (t termWriter) Write(p []byte) (int, error) {
	clean := true
	for _, b := range p {
		if b < 0x20 && b != '\t' && b != '\n' || b >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return t.w.Write(p)
	}
	if _, err := t.w.Write(sanitize(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// sanitize returns p with terminal controls made visible (see termSafe).
func sanitize(p []byte) []byte {
	out := make([]byte, 0, len(p)+8)
	for len(p) > 0 {
		r, n := utf8.DecodeRune(p)
		switch {
		case r == '\t' || r == '\n':
			out = append(out, byte(r))
		case r < 0x20:
			out = append(out, '^', byte(r)+'@')
		case r == 0x7f:
			out = append(out, '^', '?')
		case r == utf8.RuneError && n == 1:
			out = append(out, '?') // not UTF-8: a lone byte a terminal may take as C1
		case r >= 0x80 && r <= 0x9f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			out = append(out, '?')
		default:
			out = append(out, p[:n]...)
		}
		p = p[n:]
	}
	return out
}
