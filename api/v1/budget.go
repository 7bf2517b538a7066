package v1

import (
	"fmt"
	"time"
)

// Limits bound what parsing and validating one revision may cost, whatever
// its files say: a push to the followed ref must not be able to make every
// agent spend minutes of CPU or gigabytes of memory on it. A zero field
// takes its default (DefaultLimits).
type Limits struct {
	MaxNodes     int           // YAML values of the whole revision, unknown keys and what they hold included, aliases counted each time they are followed
	MaxDocuments int           // YAML documents of the whole revision
	MaxServices  int           // services and units declared in the whole revision, counted per document
	MaxErrors    int           // errors listed; the rest are counted in one "and N more"
	MaxTime      time.Duration // wall time of parsing and validating the revision
}

// The flags that set each bound, named in refusals.
const (
	BoundNodes     = "max-yaml-nodes"
	BoundDocuments = "max-documents"
	BoundServices  = "max-services"
	BoundErrors    = "max-errors"
	BoundTime      = "max-parse-time"
)

// DefaultLimits: an honest revision is a few hundred values per host.
func DefaultLimits() Limits {
	return Limits{MaxNodes: 200000, MaxDocuments: 1000, MaxServices: 10000, MaxErrors: 100, MaxTime: 5 * time.Second}
}

// WithDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxNodes <= 0 {
		l.MaxNodes = d.MaxNodes
	}
	if l.MaxDocuments <= 0 {
		l.MaxDocuments = d.MaxDocuments
	}
	if l.MaxServices <= 0 {
		l.MaxServices = d.MaxServices
	}
	if l.MaxErrors <= 0 {
		l.MaxErrors = d.MaxErrors
	}
	if l.MaxTime <= 0 {
		l.MaxTime = d.MaxTime
	}
	return l
}

// Budget is what parsing one revision may still cost, shared by all its
// files. Once a bound is reached, Over is the error saying which (it is in
// the revision's error list too) and parsing stops: nothing beyond it is
// read. Errors past MaxErrors are counted, not kept.
type Budget struct {
	lim      Limits
	deadline time.Time
	nodes    int
	docs     int
	objects  int
	kept     int
	dropped  int
	over     *Error
}

// NewBudget starts the budget of one revision now.
func NewBudget(l Limits) *Budget {
	l = l.WithDefaults()
	return &Budget{lim: l, deadline: time.Now().Add(l.MaxTime)}
}

// Limits are the bounds in force.
func (b *Budget) Limits() Limits { return b.lim }

// Over is the bound that stopped parsing, or nil.
func (b *Budget) Over() *Error { return b.over }

// Dropped counts the errors found but not kept.
func (b *Budget) Dropped() int { return b.dropped }

// keep says whether one more error may be kept in full.
func (b *Budget) keep() bool {
	if b.kept >= b.lim.MaxErrors {
		b.dropped++
		return false
	}
	b.kept++
	return true
}

// exceed records the first bound reached, at pos.
func (b *Budget) exceed(pos Pos, format string, args ...any) *Error {
	if b.over == nil {
		b.over = &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
	}
	return b.over
}

// TimeUp reports (and records, at pos) whether the time bound has passed.
func (b *Budget) TimeUp(pos Pos) bool {
	if b.over != nil {
		return true
	}
	if time.Now().After(b.deadline) {
		b.exceed(pos, "revision refused: parsing and validating it took longer than %s (--%s)", b.lim.MaxTime, BoundTime)
		return true
	}
	return false
}

// node charges n values; false once the bound is passed.
func (b *Budget) node(pos Pos, n int) bool {
	if b.over != nil {
		return false
	}
	b.nodes += n
	if b.nodes > b.lim.MaxNodes {
		b.exceed(pos, "revision refused: more than %d YAML values (unknown keys included, aliases counted each time they are followed; --%s)", b.lim.MaxNodes, BoundNodes)
		return false
	}
	if b.nodes&1023 == 0 && b.TimeUp(pos) {
		return false
	}
	return true
}

// document charges one document; false once the bound is passed.
func (b *Budget) document(pos Pos) bool {
	if b.over != nil {
		return false
	}
	if b.docs++; b.docs > b.lim.MaxDocuments {
		b.exceed(pos, "revision refused: more than %d YAML documents (--%s)", b.lim.MaxDocuments, BoundDocuments)
		return false
	}
	return !b.TimeUp(pos)
}

// Objects charges the services and units of one document; false once the
// bound is passed.
func (b *Budget) Objects(pos Pos, n int) bool {
	if b.over != nil {
		return false
	}
	if b.objects += n; b.objects > b.lim.MaxServices {
		b.exceed(pos, "revision refused: more than %d services and units declared (--%s)", b.lim.MaxServices, BoundServices)
		return false
	}
	return true
}

// Capped returns the first max errors of l and, when more were found
// (dropped counts those never kept), a last entry saying how many more.
// That entry stays last through Sorted.
func (l ErrorList) Capped(max, dropped int) ErrorList {
	if max <= 0 {
		max = DefaultLimits().MaxErrors
	}
	var kept ErrorList
	for _, e := range l {
		if !e.more {
			kept = append(kept, e)
		} else {
			dropped += e.count
		}
	}
	if len(kept) > max {
		dropped += len(kept) - max
		kept = kept[:max]
	}
	if dropped == 0 {
		return kept
	}
	file := ""
	if len(kept) > 0 {
		file = kept[len(kept)-1].Pos.File
	}
	return append(kept, &Error{Pos: Pos{File: file}, more: true, count: dropped,
		Msg: fmt.Sprintf("and %d more error(s), not listed (the first %d are; --%s)", dropped, len(kept), BoundErrors)})
}

// Total counts the errors of l, those an "and N more" entry stands for
// included.
func (l ErrorList) Total() int {
	n := 0
	for _, e := range l {
		if e.more {
			n += e.count
		} else {
			n++
		}
	}
	return n
}
