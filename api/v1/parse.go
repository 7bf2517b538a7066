package v1

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"
)

// Document is one YAML document of a file: a Host or a Defaults.
type Document struct {
	File     string
	Index    int // 0-based position of the document in its file
	Pos      Pos // where the document starts
	Kind     string
	Host     *Host     // set when Kind is Host
	Defaults *Defaults // set when Kind is Defaults
	// Invalid is set when the document had errors. What could be read of it is
	// kept, so validation can still report problems elsewhere in it; an
	// invalid document is never applied.
	Invalid bool

	positions map[string]Pos // idx path -> position of the value
}

// Name is metadata.name.
func (d *Document) Name() string {
	if d.Host != nil {
		return d.Host.Metadata.Name
	}
	if d.Defaults != nil {
		return d.Defaults.Metadata.Name
	}
	return ""
}

// Spec is the document's desired state (a Defaults' selection left aside).
func (d *Document) Spec() *HostSpec {
	if d.Host != nil {
		return &d.Host.Spec
	}
	return &d.Defaults.Spec.HostSpec
}

// PosOf returns where the value at an idx path (e.g. "spec.services[1]
// .replicas") is written, or where its nearest written parent is.
func (d *Document) PosOf(idx string) Pos {
	for p := idx; ; p = parentIdx(p) {
		if pos, ok := d.positions[p]; ok {
			return pos
		}
		if p == "" {
			return d.Pos
		}
	}
}

// specIdx is where a document's HostSpec fields sit, as an idx path.
const specIdx = "spec"

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// ParseFile reads every document of one YAML file. Parsing is strict:
// unknown fields, wrong types and duplicate keys are errors, each with its
// file:line:col. It returns every document it could make sense of (those
// with errors marked Invalid, the offending fields left out) and every error
// it found. A YAML syntax error ends the file, since nothing after it can be
// read reliably. The file is bounded by DefaultLimits on its own; a
// revision's files share one Budget through ParseFileBudget.
func ParseFile(name string, data []byte) ([]*Document, ErrorList) {
	b := NewBudget(Limits{})
	docs, errs := ParseFileBudget(name, data, b)
	if o := b.Over(); o != nil {
		errs = append(errs, o)
	}
	return docs, errs.Capped(b.Limits().MaxErrors, b.Dropped())
}

// ParseFileBudget is ParseFile charging b. It stops where a bound of b is
// reached (b.Over says which; it is not in the list returned), and keeps
// only the errors b allows (b.Dropped counts the others).
func ParseFileBudget(name string, data []byte, b *Budget) ([]*Document, ErrorList) {
	var docs []*Document
	var all ErrorList
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for index := 0; ; index++ {
		if b.TimeUp(Pos{File: name}) {
			break
		}
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if b.keep() {
				all = append(all, syntaxError(name, data, err, b))
			}
			break
		}
		if len(root.Content) == 0 {
			continue // an empty document, e.g. a trailing "---"
		}
		if !b.document(Pos{name, root.Content[0].Line, root.Content[0].Column}) {
			break
		}
		doc, errs := parseDocument(name, index, root.Content[0], b)
		all = append(all, errs...)
		if doc != nil {
			doc.Invalid = len(errs) > 0
			docs = append(docs, doc)
		}
		if b.Over() != nil {
			break
		}
	}
	return docs, all
}

// Keep returns the errors of l that b still has room for, counting the
// others as dropped.
func (b *Budget) Keep(l ErrorList) ErrorList {
	var out ErrorList
	for _, e := range l {
		if b.keep() {
			out = append(out, e)
		}
	}
	return out
}

func syntaxError(file string, data []byte, err error, b *Budget) *Error {
	msg := err.Error()
	line := 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	line = syntaxErrorLine(data, line, b)
	col := 1
	if start, ok := lineStart(data, line); ok {
		l := data[start:]
		if i := bytes.IndexByte(l, '\n'); i >= 0 {
			l = l[:i]
		}
		col = len(l) - len(bytes.TrimLeft(l, " \t")) + 1
	}
	return &Error{Pos: Pos{file, line, col}, Msg: "YAML syntax error: " + msg}
}

// lineStart is the offset where line (from 1) starts.
func lineStart(data []byte, line int) (int, bool) {
	off := 0
	for i := 1; i < line; i++ {
		j := bytes.IndexByte(data[off:], '\n')
		if j < 0 {
			return 0, false
		}
		off += j + 1
	}
	return off, true
}

// maxLocateBytes bounds what the syntax-error locator may re-parse in all:
// a few times the size of an honest file. Past it, the parser's own line
// stands.
const maxLocateBytes = 16 << 20

// syntaxErrorLine finds the line a YAML syntax error is on. The parser names
// the line where the enclosing block started, which is often several lines
// above the mistake; the first prefix of the file that no longer parses ends
// at the mistake itself. That prefix is found by bisection over the line
// ends from the parser's line on (a prefix that fails stays failing as it
// grows, near enough), so the cost is a few dozen parses at most, each
// charged against maxLocateBytes and the revision's time bound, instead of
// one parse per line.
func syntaxErrorLine(data []byte, hint int, b *Budget) int {
	if hint < 1 {
		return 1
	}
	var ends []int // ends[i]: offset just past line i+1
	for off := 0; off < len(data); {
		j := bytes.IndexByte(data[off:], '\n')
		if j < 0 {
			ends = append(ends, len(data))
			break
		}
		off += j + 1
		ends = append(ends, off)
	}
	if hint > len(ends) {
		return hint
	}
	// Invariant: the prefix up to line lo-1 parses (or lo is the hint),
	// the prefix up to line hi does not (the whole file does not).
	lo, hi := hint, len(ends)
	spent := 0
	for lo < hi {
		mid := lo + (hi-lo)/2
		prefix := data[:ends[mid-1]]
		if spent += len(prefix); spent > maxLocateBytes || (b != nil && b.TimeUp(Pos{})) {
			return hint
		}
		if parses(prefix) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

func parseDocument(file string, index int, n *yaml.Node, b *Budget) (*Document, ErrorList) {
	w := &walker{file: file, positions: map[string]Pos{}, b: b}
	start := w.pos(n)
	w.positions[""] = start
	if n.Kind != yaml.MappingNode {
		w.errAt(start, path{}, "a document must be a mapping with apiVersion, kind, metadata and spec, not %s", describe(n))
		return nil, w.errs
	}
	apiVersion, kind := scalarField(n, "apiVersion"), scalarField(n, "kind")
	if apiVersion == nil {
		w.errAt(start, path{}, "apiVersion is required (%s)", APIVersion)
	} else if apiVersion.Value != APIVersion {
		w.errAt(w.pos(apiVersion), rootPath("apiVersion"), "must be %q, not %q", APIVersion, apiVersion.Value)
	}
	var target any
	doc := &Document{File: file, Index: index, Pos: start, positions: w.positions}
	switch {
	case kind == nil:
		w.errAt(start, path{}, "kind is required (Host or Defaults)")
		return nil, w.errs
	case kind.Value == KindHost:
		doc.Host = &Host{}
		target = doc.Host
	case kind.Value == KindDefaults:
		doc.Defaults = &Defaults{}
		target = doc.Defaults
	default:
		w.errAt(w.pos(kind), rootPath("kind"), "unknown kind %q (want Host or Defaults)", kind.Value)
		return nil, w.errs
	}
	doc.Kind = kind.Value
	w.walk(n, reflect.TypeOf(target).Elem(), path{})
	// The walk checked the shape and cut out what was wrong; what is left is
	// decoded as JSON, strictly, the way sigs.k8s.io/yaml and Kubernetes
	// tools decode (decodeChecked).
	if err := decodeChecked(n, target, w.b.lim.MaxNodes); err != nil {
		w.errAt(start, path{}, "cannot decode document: %v", err)
		return nil, w.errs
	}
	return doc, w.errs
}

// scalarField returns the value node of key in a mapping, if it is a scalar.
func scalarField(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1]
		}
	}
	return nil
}

// walker checks a YAML node tree against a Go type, strictly, recording the
// position of every value. It reports every problem it finds, not the first.
type walker struct {
	file      string
	positions map[string]Pos
	errs      ErrorList
	// b is charged for every node walked (aliases each time they are
	// followed: they make a small text expand exponentially, "billion
	// laughs") and every unknown key with what it holds.
	b *Budget
}

func (w *walker) pos(n *yaml.Node) Pos { return Pos{w.file, n.Line, n.Column} }

func (w *walker) errAt(pos Pos, p path, format string, args ...any) {
	if w.b.keep() {
		w.errs = append(w.errs, &Error{Pos: pos, Path: p.disp, Msg: fmt.Sprintf(format, args...)})
	}
}

var (
	durationType    = reflect.TypeOf(Duration{})
	timeType        = reflect.TypeOf(Time{})
	maintenanceType = reflect.TypeOf(Maintenance{})
	failureType     = reflect.TypeOf(FailurePolicy{})
)

// walk checks n against t. It returns false when n cannot be used at all;
// the caller then cuts it out of the tree, so the rest of the document can
// still be decoded and checked.
func (w *walker) walk(n *yaml.Node, t reflect.Type, p path) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if !w.b.node(w.pos(n), 1) {
		return false
	}
	w.positions[p.idx] = w.pos(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return true // null means "not said", like leaving the field out
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case durationType:
		if !w.wantScalar(n, p, "a duration like 60s", "!!str") {
			return false
		}
		if _, err := ParseDuration(n.Value); err != nil {
			w.errAt(w.pos(n), p, "%v", err)
			return false
		}
		return true
	case timeType:
		if !w.wantScalar(n, p, "an RFC 3339 time like 2026-12-01T06:00:00Z", "!!str", "!!timestamp") {
			return false
		}
		if _, err := ParseTime(n.Value); err != nil {
			w.errAt(w.pos(n), p, "%v", err)
			return false
		}
		forceString(n)
		return true
	case maintenanceType:
		// The short form `maintenance: true` or the long form.
		if n.Kind == yaml.ScalarNode {
			return w.wantScalar(n, p, "true, false or {enabled, until, reason}", "!!bool")
		}
	case failureType:
		// The short form `onFailure: report` or the long form.
		if n.Kind == yaml.ScalarNode {
			if !w.wantScalar(n, p, "report or {restart, start}", "!!str") {
				return false
			}
			if n.Value != FailureReport {
				w.errAt(w.pos(n), p, "unknown value %q (want report or {restart, start})", n.Value)
				return false
			}
			return true
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		return w.walkStruct(n, t, p)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.errAt(w.pos(n), p, "expected a list, got %s", describe(n))
			return false
		}
		kept := make([]*yaml.Node, 0, len(n.Content))
		for i, item := range n.Content {
			if item.Kind == yaml.ScalarNode && item.ShortTag() == "!!null" {
				w.errAt(w.pos(item), p.item(i, ""), "empty list item")
				continue
			}
			name := ""
			if item.Kind == yaml.MappingNode {
				if nn := scalarField(item, "name"); nn != nil {
					name = nn.Value
				}
			}
			if w.walk(item, t.Elem(), p.item(i, name)) {
				kept = append(kept, item)
			}
		}
		n.Content = kept
		return true
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.errAt(w.pos(n), p, "expected a mapping, got %s", describe(n))
			return false
		}
		w.dropDuplicateKeys(n, p)
		w.keepPairs(n, func(k, v *yaml.Node) bool {
			quoteKey(k)
			ok := w.walk(v, t.Elem(), p.field(k.Value))
			w.locateAtKey(k, v, p.field(k.Value))
			return ok
		})
		return true
	case reflect.String:
		// Like Kubernetes, a scalar that YAML reads as a number or a boolean is
		// taken as its text where a string is wanted (restartOn: 42).
		if !w.wantScalar(n, p, "a string", "!!str", "!!int", "!!float", "!!bool", "!!timestamp") {
			return false
		}
		forceString(n)
		return true
	case reflect.Bool:
		return w.wantScalar(n, p, "true or false", "!!bool")
	case reflect.Int32:
		if !w.wantScalar(n, p, "an integer", "!!int") {
			return false
		}
		if _, err := strconv.ParseInt(n.Value, 0, 32); err != nil {
			w.errAt(w.pos(n), p, "integer %s is out of range", n.Value)
			return false
		}
		return true
	default:
		panic(fmt.Sprintf("v1 walker: unhandled type %s", t))
	}
}

// countNodes counts the nodes of n, aliases not followed, stopping once
// past limit.
func countNodes(n *yaml.Node, limit int) int {
	c := 1
	for _, ch := range n.Content {
		if c > limit {
			break
		}
		c += countNodes(ch, limit-c)
	}
	return c
}

// keepPairs keeps the key/value pairs of a mapping for which keep is true.
func (w *walker) keepPairs(n *yaml.Node, keep func(k, v *yaml.Node) bool) {
	kept := make([]*yaml.Node, 0, len(n.Content))
	for i := 0; i+1 < len(n.Content); i += 2 {
		if keep(n.Content[i], n.Content[i+1]) {
			kept = append(kept, n.Content[i], n.Content[i+1])
		}
	}
	n.Content = kept
}

// quoteKey marks a mapping key a string: a key is always its text (onExit's
// `on:` stays "on", never YAML 1.1's true; a label key 1 stays "1").
func quoteKey(k *yaml.Node) {
	if k.Kind == yaml.ScalarNode {
		forceString(k)
	}
}

// forceString makes a scalar a quoted string node, so that decodeChecked
// writes its text exactly as a JSON string (1.10 stays "1.10", not 1.1;
// restartOn: 42 is "42"), and a re-encoding of the tree (the oracle of
// tojson_test.go) keeps it too.
func forceString(n *yaml.Node) {
	n.Tag = "!!str"
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		n.Style = yaml.DoubleQuotedStyle
	}
}

func (w *walker) wantScalar(n *yaml.Node, p path, what string, tags ...string) bool {
	if n.Kind == yaml.ScalarNode {
		for _, t := range tags {
			if n.ShortTag() == t {
				return true
			}
		}
	}
	w.errAt(w.pos(n), p, "expected %s, got %s", what, describe(n))
	return false
}

func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, p path) bool {
	if n.Kind != yaml.MappingNode {
		w.errAt(w.pos(n), p, "expected a mapping, got %s", describe(n))
		return false
	}
	fields := jsonFields(t)
	w.dropDuplicateKeys(n, p)
	w.keepPairs(n, func(k, v *yaml.Node) bool {
		if k.Value == "<<" {
			w.errAt(w.pos(k), p, "YAML merge keys (<<) are not supported; write the fields out")
			return false
		}
		f, ok := fields[k.Value]
		if !ok {
			// What an unknown key holds costs what any value does.
			if !w.b.node(w.pos(k), 1+countNodes(v, w.b.lim.MaxNodes)) {
				return false
			}
			msg := fmt.Sprintf("unknown field %q", k.Value)
			if s := suggest(k.Value, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			w.errAt(w.pos(k), p, "%s", msg)
			return false
		}
		quoteKey(k)
		ok = w.walk(v, f.Type, p.field(k.Value))
		w.locateAtKey(k, v, p.field(k.Value))
		return ok
	})
	return true
}

// locateAtKey records a block mapping or list at its key: the first value
// inside it says nothing about where the block is ("autoscale:" is).
func (w *walker) locateAtKey(k, v *yaml.Node, p path) {
	if (v.Kind == yaml.MappingNode || v.Kind == yaml.SequenceNode) && v.Style&yaml.FlowStyle == 0 {
		w.positions[p.idx] = w.pos(k)
	}
}

// dropDuplicateKeys reports and removes every repeat of a key in a mapping.
func (w *walker) dropDuplicateKeys(n *yaml.Node, p path) {
	seen := map[string]int{}
	w.keepPairs(n, func(k, _ *yaml.Node) bool {
		if first, dup := seen[k.Value]; dup {
			w.errAt(w.pos(k), p, "key %q appears twice (first at line %d)", k.Value, first)
			return false
		}
		seen[k.Value] = k.Line
		return true
	})
}

// fieldCache holds jsonFields per type: a revision of 10,000 services
// asks for the same few types 10,000 times each.
var fieldCache sync.Map // reflect.Type -> map[string]reflect.StructField

// jsonFields maps the JSON names of a struct's fields, flattening inline
// embedded structs the way encoding/json does. The map is shared: read it
// only.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.StructField)
	}
	m := buildJSONFields(t)
	fieldCache.Store(t, m)
	return m
}

func buildJSONFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out[name] = f
	}
	return out
}

// suggest returns the known field closest to an unknown one, if it is close.
func suggest(unknown string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestD := "", 3
	for _, k := range names {
		if strings.EqualFold(k, unknown) {
			return k
		}
		if d := editDistance(strings.ToLower(unknown), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		switch n.ShortTag() {
		case "!!int":
			return "an integer (" + v + ")"
		case "!!float":
			return "a number (" + v + ")"
		case "!!bool":
			return "a boolean (" + v + ")"
		case "!!null":
			return "null"
		case "!!timestamp":
			return "a timestamp (" + v + ")"
		default:
			return fmt.Sprintf("a string (%q)", v)
		}
	}
	return "something else"
}

func parses(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
	}
}
