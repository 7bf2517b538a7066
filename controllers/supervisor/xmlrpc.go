package supervisor

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The XML-RPC client: only what talking to supervisord needs (see doc.go for
// why it is our own). Calls carry string, bool and int parameters; answers
// are decoded into plain Go values:
//
//	<string> and an untyped <value>   string
//	<int>, <i4>, <i8>                 int64
//	<boolean>                         bool
//	<array>                           []any
//	<struct>                          map[string]any
//
// and a <fault> becomes a *Fault error. Any other type is an error.

// DefaultMaxResponse bounds the size of one answer. getAllProcessInfo costs
// about 1.4 KiB per process, so this is room for thousands of processes.
const DefaultMaxResponse = 8 << 20

// DefaultCallTimeout bounds a call whose context has no deadline.
const DefaultCallTimeout = 30 * time.Second

// maxNesting bounds how deep arrays and structs may nest in an answer;
// supervisord's answers nest two deep.
const maxNesting = 32

// Fault is an XML-RPC fault: supervisord's way of saying a call failed.
type Fault struct {
	Code   int
	String string
}

func (f *Fault) Error() string { return fmt.Sprintf("fault %d: %s", f.Code, f.String) }

// supervisord's fault codes (supervisor/xmlrpc.py, class Faults) that the
// driver tells apart.
const (
	FaultUnknownMethod  = 1
	FaultBadName        = 10
	FaultSpawnError     = 50
	FaultAlreadyStarted = 60
	FaultNotRunning     = 70
)

// IsFault reports whether err is (or wraps) a fault with the given code.
func IsFault(err error, code int) bool {
	var f *Fault
	return errors.As(err, &f) && f.Code == code
}

// Client calls supervisord's XML-RPC interface over its unix socket. It is
// safe for concurrent use; connections are kept alive between calls.
type Client struct {
	maxResponse int64
	http        *http.Client
}

// NewClient returns a client for the supervisord listening on the unix
// socket path socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression:  true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	// No client-wide timeout: stopProcess with wait may rightly take as
	// long as the process's stop timeout. Every call is bounded by its
	// context instead.
	return &Client{maxResponse: DefaultMaxResponse, http: &http.Client{Transport: tr}}
}

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Call calls method with params (string, bool, int, int32 or int64) and
// returns the decoded answer. A fault comes back as a *Fault error. A
// context without deadline gets DefaultCallTimeout.
func (c *Client) Call(ctx context.Context, method string, params ...any) (any, error) {
	body, err := encodeCall(method, params)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	// The host is never dialled (the transport dials the socket); it is what
	// supervisorctl sends too.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://localhost/RPC2", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", method, err)
	}
	if int64(len(data)) > c.maxResponse {
		return nil, fmt.Errorf("%s: answer larger than %d bytes", method, c.maxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %s: %s", method, resp.Status, snippet(data))
	}
	v, err := DecodeResponse(data)
	if err != nil {
		var f *Fault
		if errors.As(err, &f) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return v, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// encodeCall writes a methodCall document.
func encodeCall(method string, params []any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?>` + "\n<methodCall><methodName>")
	if err := xml.EscapeText(&b, []byte(method)); err != nil {
		return nil, err
	}
	b.WriteString("</methodName><params>")
	for i, p := range params {
		b.WriteString("<param><value>")
		switch v := p.(type) {
		case string:
			b.WriteString("<string>")
			if err := xml.EscapeText(&b, []byte(v)); err != nil {
				return nil, err
			}
			b.WriteString("</string>")
		case bool:
			if v {
				b.WriteString("<boolean>1</boolean>")
			} else {
				b.WriteString("<boolean>0</boolean>")
			}
		case int, int32, int64:
			n := toInt64(v)
			if n < math.MinInt32 || n > math.MaxInt32 {
				return nil, fmt.Errorf("%s: parameter %d: %d does not fit an XML-RPC int", method, i+1, n)
			}
			b.WriteString("<int>" + strconv.FormatInt(n, 10) + "</int>")
		default:
			return nil, fmt.Errorf("%s: parameter %d: type %T is not supported", method, i+1, p)
		}
		b.WriteString("</value></param>")
	}
	b.WriteString("</params></methodCall>\n")
	return b.Bytes(), nil
}

func toInt64(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	}
	return 0
}

// DecodeResponse decodes a methodResponse document: the one value it
// carries, or a *Fault. It never panics, whatever the input.
func DecodeResponse(data []byte) (any, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = func(charset string, r io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "us-ascii", "ascii":
			return r, nil // a subset of UTF-8
		}
		return nil, fmt.Errorf("charset %q is not supported", charset)
	}
	p := &parser{d: d}
	v, err := p.response()
	if err != nil {
		var f *Fault
		if errors.As(err, &f) {
			return nil, err
		}
		return nil, fmt.Errorf("malformed XML-RPC answer: %w", err)
	}
	return v, nil
}

// parser reads a methodResponse token by token.
type parser struct {
	d *xml.Decoder
}

// token returns the next token that matters: comments, processing
// instructions and directives are skipped.
func (p *parser) token() (xml.Token, error) {
	for {
		tok, err := p.d.Token()
		if err != nil {
			return nil, err
		}
		switch tok.(type) {
		case xml.Comment, xml.ProcInst, xml.Directive:
			continue
		}
		return tok, nil
	}
}

// tag returns the next start or end tag, handing each piece of text before
// it to text, which may refuse it. It is the one loop over tokens that
// element, value and text share: they differ only in what text before a
// tag means to them.
func (p *parser) tag(text func(xml.CharData) error) (xml.Token, error) {
	for {
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		t, ok := tok.(xml.CharData)
		if !ok {
			// token leaves only start tags, end tags and text.
			return tok, nil
		}
		if err := text(t); err != nil {
			return nil, err
		}
	}
}

// element returns the next start or end tag, skipping whitespace; any other
// text between elements is an error.
func (p *parser) element() (xml.Token, error) { return p.tag(spaceOnly) }

// spaceOnly refuses text that is more than whitespace, for element.
func spaceOnly(t xml.CharData) error {
	if len(bytes.TrimSpace(t)) > 0 {
		return fmt.Errorf("unexpected text %q", snippet(t))
	}
	return nil
}

// open expects the start tag name next.
func (p *parser) open(name string) error { return p.expectTag(name, false) }

// close expects the end tag name next.
func (p *parser) close(name string) error { return p.expectTag(name, true) }

// expectTag expects the start (or, with end, the end) tag name next.
func (p *parser) expectTag(name string, end bool) error {
	tok, err := p.element()
	if err != nil {
		return err
	}
	var ok bool
	switch t := tok.(type) {
	case xml.StartElement:
		ok = !end && t.Name.Local == name
	case xml.EndElement:
		ok = end && t.Name.Local == name
	}
	if !ok {
		want := "<" + name + ">"
		if end {
			want = "</" + name + ">"
		}
		return fmt.Errorf("want %s, got %s", want, describe(tok))
	}
	return nil
}

func describe(tok xml.Token) string {
	switch t := tok.(type) {
	case xml.StartElement:
		return "<" + t.Name.Local + ">"
	case xml.EndElement:
		return "</" + t.Name.Local + ">"
	}
	return fmt.Sprintf("%T", tok)
}

func (p *parser) response() (any, error) {
	if err := p.open("methodResponse"); err != nil {
		return nil, err
	}
	tok, err := p.element()
	if err != nil {
		return nil, err
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return nil, fmt.Errorf("want <params> or <fault>, got %s", describe(tok))
	}
	var v any
	switch start.Name.Local {
	case "params":
		if err := p.open("param"); err != nil {
			return nil, err
		}
		if err := p.open("value"); err != nil {
			return nil, err
		}
		if v, err = p.value(0); err != nil {
			return nil, err
		}
		if err := p.close("param"); err != nil {
			return nil, err
		}
		if err := p.close("params"); err != nil {
			return nil, err
		}
	case "fault":
		if err := p.open("value"); err != nil {
			return nil, err
		}
		fv, err := p.value(0)
		if err != nil {
			return nil, err
		}
		if err := p.close("fault"); err != nil {
			return nil, err
		}
		f, err := faultOf(fv)
		if err != nil {
			return nil, err
		}
		// The rest of the document must still be well formed.
		if err := p.end(); err != nil {
			return nil, err
		}
		return nil, f
	default:
		return nil, fmt.Errorf("want <params> or <fault>, got <%s>", start.Name.Local)
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	return v, nil
}

// end reads </methodResponse> and makes sure nothing but whitespace,
// comments and processing instructions follows.
func (p *parser) end() error {
	if err := p.close("methodResponse"); err != nil {
		return err
	}
	tok, err := p.element()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("unexpected %s after </methodResponse>", describe(tok))
}

func faultOf(v any) (*Fault, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("fault is a %T, not a struct", v)
	}
	code, ok1 := m["faultCode"].(int64)
	str, ok2 := m["faultString"].(string)
	if !ok1 || !ok2 || code < math.MinInt32 || code > math.MaxInt32 {
		return nil, errors.New("fault without an int faultCode and a string faultString")
	}
	return &Fault{Code: int(code), String: str}, nil
}

// value decodes what follows a <value> start tag, up to and including its
// end tag. depth counts the arrays and structs around it.
func (p *parser) value(depth int) (any, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("values nested deeper than %d", maxNesting)
	}
	var text []byte
	tok, err := p.tag(func(t xml.CharData) error { text = append(text, t...); return nil })
	if err != nil {
		return nil, err
	}
	t, ok := tok.(xml.StartElement)
	if !ok {
		// <value>text</value>: a string without a type.
		return string(text), nil
	}
	if len(bytes.TrimSpace(text)) > 0 {
		return nil, fmt.Errorf("text %q before <%s>", snippet(text), t.Name.Local)
	}
	v, err := p.typed(t.Name.Local, depth)
	if err != nil {
		return nil, err
	}
	if err := p.close("value"); err != nil {
		return nil, err
	}
	return v, nil
}

// typed decodes one typed value whose start tag was just read, up to and
// including its end tag.
func (p *parser) typed(name string, depth int) (any, error) {
	switch name {
	case "string":
		return p.text(name)
	case "int", "i4", "i8":
		// The specification's ints are 32 bits; 64 are accepted, as some
		// servers send (<i8>).
		s, err := p.text(name)
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("<%s>: %w", name, err)
		}
		return n, nil
	case "boolean":
		s, err := p.text(name)
		if err != nil {
			return nil, err
		}
		switch strings.TrimSpace(s) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, fmt.Errorf("<boolean> %q is neither 0 nor 1", snippet([]byte(s)))
	case "array":
		if err := p.open("data"); err != nil {
			return nil, err
		}
		out := []any{}
		for {
			tok, err := p.element()
			if err != nil {
				return nil, err
			}
			if e, ok := tok.(xml.EndElement); ok && e.Name.Local == "data" {
				break
			}
			if s, ok := tok.(xml.StartElement); !ok || s.Name.Local != "value" {
				return nil, fmt.Errorf("in <data>: want <value>, got %s", describe(tok))
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		if err := p.close("array"); err != nil {
			return nil, err
		}
		return out, nil
	case "struct":
		out := map[string]any{}
		for {
			tok, err := p.element()
			if err != nil {
				return nil, err
			}
			if e, ok := tok.(xml.EndElement); ok && e.Name.Local == "struct" {
				return out, nil
			}
			if s, ok := tok.(xml.StartElement); !ok || s.Name.Local != "member" {
				return nil, fmt.Errorf("in <struct>: want <member>, got %s", describe(tok))
			}
			if err := p.open("name"); err != nil {
				return nil, err
			}
			key, err := p.text("name")
			if err != nil {
				return nil, err
			}
			if err := p.open("value"); err != nil {
				return nil, err
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := p.close("member"); err != nil {
				return nil, err
			}
			out[key] = v
		}
	}
	return nil, fmt.Errorf("XML-RPC type <%s> is not supported", name)
}

// text reads character data up to the end tag name; elements inside are an
// error.
func (p *parser) text(name string) (string, error) {
	var b []byte
	tok, err := p.tag(func(t xml.CharData) error { b = append(b, t...); return nil })
	if err != nil {
		return "", err
	}
	t, ok := tok.(xml.EndElement)
	if !ok {
		return "", fmt.Errorf("in <%s>: unexpected %s", name, describe(tok))
	}
	if t.Name.Local != name {
		return "", fmt.Errorf("want </%s>, got </%s>", name, t.Name.Local)
	}
	return string(b), nil
}
