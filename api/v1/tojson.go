package v1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// decodeChecked decodes a node tree the walker has checked (and cut down to
// what fits the type) into target, strictly. It is the second half of
// sigs.k8s.io/yaml's UnmarshalStrict, encoding/json with unknown fields
// disallowed, fed with JSON built straight from the tree: re-encoding the
// tree as YAML for sigs.k8s.io/yaml to parse again cost 44% of loading a
// 1,000-service revision (yaml v3's emitter, then yaml v2's parser; see
// docs/BENCHMARKS.md), and meant two YAML readers (1.2 and 1.1) had to be
// kept agreeing. limit bounds the values written, aliases expanded.
func decodeChecked(n *yaml.Node, target any, limit int) error {
	var buf bytes.Buffer
	left := limit
	if err := appendJSON(&buf, n, &left); err != nil {
		return err
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	return dec.Decode(target)
}

// errTooManyValues: the tree expands (through aliases) past the limit.
var errTooManyValues = errors.New("too many values once aliases are expanded")

// appendJSON writes n as JSON. The walker left only what the types take:
// mappings with scalar keys, lists, nulls, strings (forced to !!str), and
// !!bool and !!int scalars (Go's integer syntax, which the walker checked).
// Anything else is an error, never a guess.
func appendJSON(buf *bytes.Buffer, n *yaml.Node, left *int) error {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return errors.New("alias to nothing")
		}
		n = n.Alias
	}
	if *left--; *left < 0 {
		return errTooManyValues
	}
	switch n.Kind {
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a mapping key must be a string, not %s", k.Line, describe(k))
			}
			if i > 0 {
				buf.WriteByte(',')
			}
			appendJSONString(buf, k.Value)
			buf.WriteByte(':')
			if err := appendJSON(buf, n.Content[i+1], left); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := appendJSON(buf, item, left); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		return appendScalar(buf, n)
	default:
		return fmt.Errorf("line %d: unexpected %s", n.Line, describe(n))
	}
	return nil
}

func appendScalar(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!str":
		appendJSONString(buf, n.Value)
	case "!!null":
		buf.WriteString("null")
	case "!!bool":
		// yaml v3 reads YAML 1.2's booleans (true, True, TRUE and the
		// same for false), and only those.
		switch strings.ToLower(n.Value) {
		case "true":
			buf.WriteString("true")
		case "false":
			buf.WriteString("false")
		default:
			return fmt.Errorf("line %d: %q is not a boolean", n.Line, n.Value)
		}
	case "!!int":
		v, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil {
			return fmt.Errorf("line %d: %q is not an integer", n.Line, n.Value)
		}
		buf.WriteString(strconv.FormatInt(v, 10))
	default:
		return fmt.Errorf("line %d: unexpected %s", n.Line, describe(n))
	}
	return nil
}

// appendJSONString writes s as a JSON string, as encoding/json would
// without HTML escaping: invalid UTF-8 becomes U+FFFD.
func appendJSONString(buf *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	buf.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			buf.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				buf.WriteByte('\\')
				buf.WriteByte(c)
			case '\n':
				buf.WriteString(`\n`)
			case '\r':
				buf.WriteString(`\r`)
			case '\t':
				buf.WriteString(`\t`)
			default:
				buf.WriteString(`\u00`)
				buf.WriteByte(hex[c>>4])
				buf.WriteByte(hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf.WriteString(s[start:i])
			buf.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON; encoding/json escapes them
		// for JavaScript's sake only, which a decoder does not need.
		i += size
	}
	buf.WriteString(s[start:])
	buf.WriteByte('"')
}
