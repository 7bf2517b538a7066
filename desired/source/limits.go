package source

import (
	"errors"
	"fmt"
	"io"
)

// Limits bound what one revision, and one conversation with a git server,
// may cost. Every bound is checked before the bytes it guards are read: a
// blob's size from its object header, a folder file's from fstat, a
// server's answer as it streams in. Whoever can push to the followed ref
// (or run a git server the agent talks to) must not be able to exhaust the
// memory of every agent with one small commit. A zero field takes its
// default (DefaultLimits).
type Limits struct {
	MaxFileBytes     int64 // one file under Path (a blob, or a folder's file); also any commit, tag or tree object
	MaxRevisionBytes int64 // every file under Path together, trees included
	MaxRefLines      int   // lines of one ref listing (ls-refs)
	MaxRefBytes      int64 // bytes of one ref listing, and of any response body before a pack
	MaxShallowLines  int   // shallow and unshallow lines of one fetch answer
	MaxPackBytes     int64 // bytes of one pack as received
}

// The bounds by the name of the flag that sets each one: a LimitError
// carries it, so the refusal says what to raise.
const (
	BoundFileBytes     = "max-file-bytes"
	BoundRevisionBytes = "max-revision-bytes"
	BoundRefLines      = "max-ref-lines"
	BoundRefBytes      = "max-ref-bytes"
	BoundShallowLines  = "max-shallow-lines"
	BoundPackBytes     = "max-pack-bytes"
)

// DefaultLimits are far above any honest desired state (a host's
// documents are kilobytes) and far below what hurts an agent.
func DefaultLimits() Limits {
	return Limits{
		MaxFileBytes:     8 << 20,
		MaxRevisionBytes: 32 << 20,
		MaxRefLines:      1024,
		MaxRefBytes:      1 << 20,
		MaxShallowLines:  4096,
		MaxPackBytes:     64 << 20,
	}
}

// withDefaults fills zero fields; negative ones are an error.
func (l Limits) withDefaults() (Limits, error) {
	d := DefaultLimits()
	for _, err := range []error{
		fillLimit(BoundFileBytes, &l.MaxFileBytes, d.MaxFileBytes),
		fillLimit(BoundRevisionBytes, &l.MaxRevisionBytes, d.MaxRevisionBytes),
		fillLimit(BoundRefBytes, &l.MaxRefBytes, d.MaxRefBytes),
		fillLimit(BoundPackBytes, &l.MaxPackBytes, d.MaxPackBytes),
		fillLimit(BoundRefLines, &l.MaxRefLines, d.MaxRefLines),
		fillLimit(BoundShallowLines, &l.MaxShallowLines, d.MaxShallowLines),
	} {
		if err != nil {
			return l, err
		}
	}
	return l, nil
}

// fillLimit sets a zero bound to its default; a negative one is an error.
func fillLimit[T int | int64](name string, v *T, def T) error {
	if *v < 0 {
		return fmt.Errorf("limit %s: negative value %d", name, *v)
	}
	if *v == 0 {
		*v = def
	}
	return nil
}

// ErrLimit is what every LimitError matches with errors.Is.
var ErrLimit = errors.New("over a bound")

// LimitError refuses something for being over a bound. It names the bound
// (the flag that sets it), what was over it and by how much. Commit is set
// when the bound is on a revision's content: the revision is then refused
// as a whole, like an invalid one, and the revision in force stays.
type LimitError struct {
	Bound  string // one of the Bound constants
	What   string // the file (path in the revision), object or answer at fault
	Size   int64  // its size or count, at least as far as it was read
	Limit  int64
	Unit   string // "bytes" or "lines"
	Commit string // full hash, when the content of a commit is at fault
	// AtLeast: Size is how far reading went before it stopped, not the
	// whole (a stream refused as it came in).
	AtLeast bool
}

func (e *LimitError) Error() string {
	unit := e.Unit
	if unit == "" {
		unit = "bytes"
	}
	size := fmt.Sprintf("%d %s", e.Size, unit)
	limit := fmt.Sprintf("%d %s", e.Limit, unit)
	if unit == "bytes" {
		size, limit = humanBytes(e.Size), humanBytes(e.Limit)
	}
	is := "is"
	if e.AtLeast {
		is = "is at least"
	}
	return fmt.Sprintf("%s %s %s, over the bound of %s (--%s)", e.What, is, size, limit, e.Bound)
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB (%d bytes)", float64(n)/(1<<30), n)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB (%d bytes)", float64(n)/(1<<10), n)
	}
	return fmt.Sprintf("%d bytes", n)
}

// capReader fails with a LimitError once more than limit bytes are read
// through it: a server's answer is refused as it streams in, never
// buffered first.
type capReader struct {
	r     io.Reader
	n     int64
	limit int64
	bound string
	what  string
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n > c.limit {
		return 0, c.err()
	}
	if rest := c.limit + 1 - c.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		return n, c.err()
	}
	return n, err
}

func (c *capReader) err() error {
	return &LimitError{Bound: c.bound, What: c.what, Size: c.n, Limit: c.limit, AtLeast: true}
}
