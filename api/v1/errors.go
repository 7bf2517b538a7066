package v1

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in a source file. Line and Col count from 1.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one problem at one place: "file:line:col: path: message".
type Error struct {
	Pos  Pos    `json:"pos"`
	Path string `json:"path,omitempty"` // the field, e.g. spec.services[factory-proxy].replicas
	Msg  string `json:"message"`

	more  bool // the "and N more" entry of a capped list: it sorts last
	count int  // how many it stands for
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Pos.String() + ": " + e.Msg
	}
	return e.Pos.String() + ": " + e.Path + ": " + e.Msg
}

// ErrorList is every problem found in a run. Validation collects them all
// rather than stopping at the first, so one run of `reconciler validate` in a
// pull request shows everything to fix.
type ErrorList []*Error

func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns the list as an error, or nil when it is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Sorted returns the errors ordered by file, line and column, without
// duplicates (the same problem found in a document and again in a host's
// merged state is reported once).
func (l ErrorList) Sorted() ErrorList {
	out := append(ErrorList(nil), l...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.more != b.more {
			return b.more
		}
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Error() < b.Error()
	})
	dedup := out[:0]
	for i, e := range out {
		if i > 0 && e.Error() == out[i-1].Error() {
			continue
		}
		dedup = append(dedup, e)
	}
	return dedup
}

// path is a field's address in two forms: idx ("spec.services[2].replicas")
// is what positions are recorded under; disp ("spec.services[factory-proxy]
// .replicas") is what people read in messages.
type path struct{ idx, disp string }

func rootPath(name string) path { return path{name, name} }

func (p path) field(name string) path {
	if p.idx == "" {
		return path{name, name}
	}
	return path{p.idx + "." + name, p.disp + "." + name}
}

// item addresses the i-th element of a list; named elements display by name.
func (p path) item(i int, name string) path {
	d := fmt.Sprintf("%s[%d]", p.disp, i)
	if name != "" {
		d = fmt.Sprintf("%s[%s]", p.disp, name)
	}
	return path{fmt.Sprintf("%s[%d]", p.idx, i), d}
}

// locator finds where the value at an idx path came from.
type locator func(idx string) Pos

// errs collects errors, positioned through a locator.
type errs struct {
	list    ErrorList
	loc     locator
	partial bool // see ValidateEffective
}

func (e *errs) add(p path, format string, args ...any) {
	e.list = append(e.list, &Error{Pos: e.loc(p.idx), Path: p.disp, Msg: fmt.Sprintf(format, args...)})
}

// parentIdx returns the idx path one level up ("a.b[2].c" -> "a.b[2]" ->
// "a.b" -> "a" -> "").
func parentIdx(idx string) string {
	if strings.HasSuffix(idx, "]") {
		if i := strings.LastIndex(idx, "["); i >= 0 {
			return idx[:i]
		}
	}
	if i := strings.LastIndex(idx, "."); i >= 0 {
		return idx[:i]
	}
	return ""
}
