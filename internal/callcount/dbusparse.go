package callcount

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// D-Bus wire format, as far as counting needs it
// (https://dbus.freedesktop.org/doc/dbus-specification.html, "Message
// Protocol" and "Authentication Protocol").

const (
	msgMethodCall   = 1
	msgMethodReturn = 2
	msgError        = 3
	msgSignal       = 4

	fieldPath        = 1
	fieldInterface   = 2
	fieldMember      = 3
	fieldErrorName   = 4
	fieldReplySerial = 5
	fieldDestination = 6
	fieldSender      = 7
	fieldSignature   = 8
	fieldUnixFDs     = 9

	fixedHeaderLen = 16
	maxMessageLen  = 1 << 27 // the specification's limit, 128 MiB
	maxArrayLen    = 1 << 26 // 64 MiB
	maxSigLen      = 255
	maxDepth       = 32 // nested arrays, and separately nested structs
	maxValueDepth  = 64 // variants inside variants and containers, all told

	// Limits of this parser, far above anything a client sends; a stream
	// beyond them is reported, not followed.
	maxAuthLine     = 16 << 10
	maxHeaderFields = 1 << 20
)

// msgHeader is what the parser learns of one message.
type msgHeader struct {
	Type        byte
	Flags       byte
	Serial      uint32
	BodyLen     uint32
	Path        string
	Interface   string
	Member      string
	ErrorName   string
	ReplySerial uint32
	Destination string
	Sender      string
	Signature   string
	UnixFDs     uint32
}

type parsePhase int

const (
	phaseNul    parsePhase = iota // waiting for the NUL byte that opens the stream
	phaseAuth                     // SASL lines, until BEGIN
	phaseMsg                      // framed messages
	phaseBroken                   // gave up; err says why
)

// streamParser follows the client-to-server half of one D-Bus connection.
// Feed it the bytes in order, cut anywhere; it calls onMessage once per
// message, as soon as the message's header is complete. It never panics: a
// stream it cannot follow stops it, and err says why.
type streamParser struct {
	phase     parsePhase
	line      []byte // phaseAuth: the line so far
	buf       []byte // phaseMsg: fixed header and header fields so far
	want      int    // phaseMsg: length buf must reach for the next step
	fixedDone bool   // phaseMsg: buf holds a parsed fixed header
	order     binary.ByteOrder
	hdr       msgHeader // the fixed part of the message being read
	fieldsLen int
	skip      uint64 // phaseMsg: padding and body bytes still to pass over
	err       error
	onMessage func(msgHeader)
}

func newStreamParser(onMessage func(msgHeader)) *streamParser {
	return &streamParser{onMessage: onMessage, want: fixedHeaderLen}
}

func (p *streamParser) fail(err error) {
	p.phase = phaseBroken
	p.err = err
	p.line, p.buf = nil, nil
}

func (p *streamParser) feed(b []byte) {
	for len(b) > 0 {
		switch p.phase {
		case phaseNul:
			// The specification wants a NUL here; the server judges that.
			b = b[1:]
			p.phase = phaseAuth

		case phaseAuth:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				if len(p.line)+len(b) > maxAuthLine {
					p.fail(fmt.Errorf("authentication line longer than %d bytes", maxAuthLine))
					return
				}
				p.line = append(p.line, b...)
				return
			}
			if len(p.line)+i > maxAuthLine {
				p.fail(fmt.Errorf("authentication line longer than %d bytes", maxAuthLine))
				return
			}
			p.line = append(p.line, b[:i]...)
			b = b[i+1:]
			line := bytes.TrimSuffix(p.line, []byte("\r"))
			if bytes.Equal(line, []byte("BEGIN")) {
				p.phase = phaseMsg
				p.line = nil
				p.want = fixedHeaderLen
			} else {
				p.line = p.line[:0]
			}

		case phaseMsg:
			if p.skip > 0 {
				n := uint64(len(b))
				if n > p.skip {
					n = p.skip
				}
				b = b[n:]
				p.skip -= n
				continue
			}
			if need := p.want - len(p.buf); need > 0 {
				n := min(need, len(b))
				p.buf = append(p.buf, b[:n]...)
				b = b[n:]
				if len(p.buf) < p.want {
					return
				}
			}
			if !p.fixedDone {
				if err := p.parseFixed(); err != nil {
					p.fail(err)
					return
				}
				p.fixedDone = true
				p.want = fixedHeaderLen + p.fieldsLen
				if len(p.buf) < p.want {
					continue
				}
			}
			h := p.hdr
			err := parseHeaderFields(p.buf, p.order, &h)
			// Padding to 8 bytes after the fields, then the body.
			p.skip = uint64(align8(len(p.buf))-len(p.buf)) + uint64(h.BodyLen)
			p.buf = p.buf[:0]
			p.want = fixedHeaderLen
			p.fixedDone = false
			if err != nil {
				// The framing is still sound, so the next message can be
				// read; but this one is lost to the counts.
				if p.err == nil {
					p.err = fmt.Errorf("message serial %d: %w", h.Serial, err)
				}
				continue
			}
			if p.onMessage != nil {
				p.onMessage(h)
			}

		default:
			return
		}
	}
}

// parseFixed reads the 16-byte fixed header in p.buf.
func (p *streamParser) parseFixed() error {
	b := p.buf
	switch b[0] {
	case 'l':
		p.order = binary.LittleEndian
	case 'B':
		p.order = binary.BigEndian
	default:
		return fmt.Errorf("message endianness byte %#x is neither 'l' nor 'B'", b[0])
	}
	h := msgHeader{Type: b[1], Flags: b[2]}
	if h.Type == 0 {
		return errors.New("message type 0 (invalid)")
	}
	if b[3] != 1 {
		return fmt.Errorf("message protocol version %d, want 1", b[3])
	}
	h.BodyLen = p.order.Uint32(b[4:])
	h.Serial = p.order.Uint32(b[8:])
	fields := p.order.Uint32(b[12:])
	if h.Serial == 0 {
		return errors.New("message serial 0 (invalid)")
	}
	if fields > maxArrayLen {
		return fmt.Errorf("header fields array of %d bytes exceeds the protocol's %d", fields, maxArrayLen)
	}
	if total := uint64(align8(fixedHeaderLen+int(fields))) + uint64(h.BodyLen); total > maxMessageLen {
		return fmt.Errorf("message of %d bytes exceeds the protocol's %d", total, maxMessageLen)
	}
	if fields > maxHeaderFields {
		return fmt.Errorf("header fields array of %d bytes exceeds this parser's %d", fields, maxHeaderFields)
	}
	p.hdr = h
	p.fieldsLen = int(fields)
	return nil
}

// fieldTypes is the type each known header field must have.
var fieldTypes = [...]string{
	fieldPath: "o", fieldInterface: "s", fieldMember: "s", fieldErrorName: "s",
	fieldReplySerial: "u", fieldDestination: "s", fieldSender: "s",
	fieldSignature: "g", fieldUnixFDs: "u",
}

func align8(n int) int { return (n + 7) &^ 7 }

// parseHeaderFields walks the header fields array of msg (the fixed header
// and the array, nothing more) and fills h. Every field is a struct (byte
// code, variant) starting at an 8-byte boundary of the message.
func parseHeaderFields(msg []byte, order binary.ByteOrder, h *msgHeader) error {
	d := decoder{b: msg, off: fixedHeaderLen, order: order}
	for d.off < len(msg) {
		if err := d.align(8); err != nil {
			return err
		}
		code, err := d.byte()
		if err != nil {
			return err
		}
		sig, err := d.signature()
		if err != nil {
			return err
		}
		if err := checkSingleType(sig); err != nil {
			return fmt.Errorf("header field %d: %w", code, err)
		}
		if int(code) < len(fieldTypes) && fieldTypes[code] != "" && sig != fieldTypes[code] {
			want := fieldTypes[code]
			return fmt.Errorf("header field %d has type %q, want %q", code, sig, want)
		}
		switch code {
		case fieldPath:
			h.Path, err = d.string()
		case fieldInterface:
			h.Interface, err = d.string()
		case fieldMember:
			h.Member, err = d.string()
		case fieldErrorName:
			h.ErrorName, err = d.string()
		case fieldDestination:
			h.Destination, err = d.string()
		case fieldSender:
			h.Sender, err = d.string()
		case fieldReplySerial:
			h.ReplySerial, err = d.uint32()
		case fieldUnixFDs:
			h.UnixFDs, err = d.uint32()
		case fieldSignature:
			h.Signature, err = d.signature()
		default:
			// Unknown fields must be ignored, whatever their type.
			err = d.skipValue(sig, 0)
		}
		if err != nil {
			return fmt.Errorf("header field %d: %w", code, err)
		}
	}
	switch h.Type {
	case msgMethodCall:
		if h.Path == "" || h.Member == "" {
			return errors.New("method call without path or member")
		}
	case msgSignal:
		if h.Path == "" || h.Interface == "" || h.Member == "" {
			return errors.New("signal without path, interface or member")
		}
	case msgError:
		if h.ErrorName == "" || h.ReplySerial == 0 {
			return errors.New("error without name or reply serial")
		}
	case msgMethodReturn:
		if h.ReplySerial == 0 {
			return errors.New("method return without reply serial")
		}
	}
	return nil
}

// decoder reads D-Bus marshalled values from b, with offsets (and so
// alignment) counted from the start of the message.
type decoder struct {
	b     []byte
	off   int
	order binary.ByteOrder
}

var errShort = errors.New("value runs past the end of the header fields")

func (d *decoder) align(n int) error {
	a := (d.off + n - 1) &^ (n - 1)
	if a > len(d.b) {
		return errShort
	}
	d.off = a
	return nil
}

func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.off {
		return nil, errShort
	}
	v := d.b[d.off : d.off+n]
	d.off += n
	return v, nil
}

func (d *decoder) byte() (byte, error) {
	v, err := d.take(1)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

func (d *decoder) uint32() (uint32, error) {
	if err := d.align(4); err != nil {
		return 0, err
	}
	v, err := d.take(4)
	if err != nil {
		return 0, err
	}
	return d.order.Uint32(v), nil
}

// string reads a STRING or OBJECT_PATH: uint32 length, bytes, NUL.
func (d *decoder) string() (string, error) {
	n, err := d.uint32()
	if err != nil {
		return "", err
	}
	if uint64(n) >= uint64(len(d.b)) {
		return "", errShort
	}
	return d.terminated(n, "string")
}

// signature reads a SIGNATURE: byte length, bytes, NUL.
func (d *decoder) signature() (string, error) {
	n, err := d.byte()
	if err != nil {
		return "", err
	}
	return d.terminated(uint32(n), "signature")
}

// terminated reads the n bytes of a STRING or SIGNATURE (what) and the NUL
// that must follow them.
func (d *decoder) terminated(n uint32, what string) (string, error) {
	v, err := d.take(int(n) + 1)
	if err != nil {
		return "", err
	}
	if v[n] != 0 {
		return "", fmt.Errorf("%s not terminated by NUL", what)
	}
	return string(v[:n]), nil
}

// skipValue passes over one value of the single complete type sig.
func (d *decoder) skipValue(sig string, depth int) error {
	if depth > maxValueDepth {
		return errors.New("values nested too deeply")
	}
	if sig == "" {
		return errors.New("empty type")
	}
	switch c := sig[0]; c {
	case 'y':
		_, err := d.take(1)
		return err
	case 'n', 'q':
		return d.fixed(2)
	case 'b', 'i', 'u', 'h':
		return d.fixed(4)
	case 'x', 't', 'd':
		return d.fixed(8)
	case 's', 'o':
		_, err := d.string()
		return err
	case 'g':
		_, err := d.signature()
		return err
	case 'v':
		inner, err := d.signature()
		if err != nil {
			return err
		}
		if err := checkSingleType(inner); err != nil {
			return fmt.Errorf("variant: %w", err)
		}
		return d.skipValue(inner, depth+1)
	case 'a':
		n, err := d.uint32()
		if err != nil {
			return err
		}
		if n > maxArrayLen {
			return errors.New("array too long")
		}
		if len(sig) < 2 {
			return errors.New("array without element type")
		}
		// The length counts the elements, not the padding before the first.
		if err := d.align(alignOf(sig[1])); err != nil {
			return err
		}
		_, err = d.take(int(n))
		return err
	case '(':
		if err := d.align(8); err != nil {
			return err
		}
		rest := sig[1:]
		for len(rest) > 0 && rest[0] != ')' {
			n, err := typeLen(rest, 0, 0, false)
			if err != nil {
				return err
			}
			if err := d.skipValue(rest[:n], depth+1); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	default:
		return fmt.Errorf("cannot read a value of type %q", c)
	}
}

func (d *decoder) fixed(n int) error {
	if err := d.align(n); err != nil {
		return err
	}
	_, err := d.take(n)
	return err
}

// alignOf is the alignment of values whose type starts with c.
func alignOf(c byte) int {
	switch c {
	case 'n', 'q':
		return 2
	case 'b', 'i', 'u', 'h', 's', 'o', 'a':
		return 4
	case 'x', 't', 'd', '(', '{':
		return 8
	}
	return 1 // y, g, v
}

// checkSingleType reports whether sig is exactly one complete type.
func checkSingleType(sig string) error {
	if len(sig) > maxSigLen {
		return errors.New("signature longer than 255")
	}
	n, err := typeLen(sig, 0, 0, false)
	if err != nil {
		return err
	}
	if n != len(sig) {
		return fmt.Errorf("signature %q is not a single complete type", sig)
	}
	return nil
}

// typeLen is the length of the single complete type that sig starts with.
// arrays and structs count the enclosing nesting; inArray allows a dict
// entry.
func typeLen(sig string, arrays, structs int, inArray bool) (int, error) {
	if sig == "" {
		return 0, errors.New("signature ends inside a type")
	}
	switch c := sig[0]; c {
	case 'y', 'b', 'n', 'q', 'i', 'u', 'x', 't', 'd', 'h', 's', 'o', 'g', 'v':
		return 1, nil
	case 'a':
		if arrays+1 > maxDepth {
			return 0, errors.New("arrays nested too deeply")
		}
		n, err := typeLen(sig[1:], arrays+1, structs, true)
		return 1 + n, err
	case '(':
		if structs+1 > maxDepth {
			return 0, errors.New("structs nested too deeply")
		}
		i, members := 1, 0
		for {
			if i >= len(sig) {
				return 0, errors.New("struct not closed")
			}
			if sig[i] == ')' {
				if members == 0 {
					return 0, errors.New("empty struct")
				}
				return i + 1, nil
			}
			n, err := typeLen(sig[i:], arrays, structs+1, false)
			if err != nil {
				return 0, err
			}
			i += n
			members++
		}
	case '{':
		if !inArray {
			return 0, errors.New("dict entry outside an array")
		}
		if structs+1 > maxDepth {
			return 0, errors.New("structs nested too deeply")
		}
		if len(sig) < 2 || !isBasic(sig[1]) {
			return 0, errors.New("dict entry key is not a basic type")
		}
		n, err := typeLen(sig[2:], arrays, structs+1, false)
		if err != nil {
			return 0, err
		}
		i := 2 + n
		if i >= len(sig) || sig[i] != '}' {
			return 0, errors.New("dict entry not closed after two types")
		}
		return i + 1, nil
	default:
		return 0, fmt.Errorf("invalid type code %q", c)
	}
}

func isBasic(c byte) bool {
	return bytes.IndexByte([]byte("ybnqiuxtdhsog"), c) >= 0
}
