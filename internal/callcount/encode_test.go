package callcount

import (
	"encoding/binary"
	"fmt"
)

// A small, deliberately plain D-Bus message encoder for the tests: it writes
// the bytes the specification describes, one by one, so that the parser is
// checked against the text of the specification and not against itself.

type field struct {
	code byte
	sig  string // the variant's signature
	val  any    // string for s, o, g; uint32 for u; []byte: raw value bytes (already aligned for offset 0 mod 8)
}

type enc struct {
	b     []byte
	order binary.ByteOrder
}

func (e *enc) pad(n int) {
	for len(e.b)%n != 0 {
		e.b = append(e.b, 0)
	}
}

func (e *enc) u32(v uint32) {
	e.pad(4)
	e.b = e.order.(binary.AppendByteOrder).AppendUint32(e.b, v)
}

func (e *enc) str(s string) {
	e.u32(uint32(len(s)))
	e.b = append(e.b, s...)
	e.b = append(e.b, 0)
}

func (e *enc) sig(s string) {
	e.b = append(e.b, byte(len(s)))
	e.b = append(e.b, s...)
	e.b = append(e.b, 0)
}

// message encodes a whole message: fixed header, fields, padding, body.
func message(order binary.ByteOrder, typ byte, serial uint32, fields []field, body []byte) []byte {
	e := &enc{order: order}
	endian := byte('l')
	if order == binary.BigEndian {
		endian = 'B'
	}
	e.b = append(e.b, endian, typ, 0, 1)
	e.u32(uint32(len(body)))
	e.u32(serial)
	e.u32(0) // fields length, patched below
	start := len(e.b)
	for _, f := range fields {
		e.pad(8)
		e.b = append(e.b, f.code)
		e.sig(f.sig)
		switch v := f.val.(type) {
		case string:
			if f.sig == "g" {
				e.sig(v)
			} else {
				e.str(v)
			}
		case uint32:
			e.u32(v)
		case []byte:
			e.b = append(e.b, v...)
		default:
			panic(fmt.Sprintf("field value %T", v))
		}
	}
	order.PutUint32(e.b[12:], uint32(len(e.b)-start))
	e.pad(8)
	return append(e.b, body...)
}

// call is a METHOD_CALL to systemd's manager.
func call(order binary.ByteOrder, serial uint32, member string, body []byte) []byte {
	return message(order, msgMethodCall, serial, []field{
		{fieldPath, "o", "/org/freedesktop/systemd1"},
		{fieldDestination, "s", "org.freedesktop.systemd1"},
		{fieldInterface, "s", "org.freedesktop.systemd1.Manager"},
		{fieldMember, "s", member},
		{fieldSignature, "g", "s"},
	}, body)
}

// strBody is the body of a call with one string argument.
func strBody(order binary.ByteOrder, s string) []byte {
	e := &enc{order: order}
	e.str(s)
	return e.b
}

const authPrefix = "\x00AUTH\r\nAUTH EXTERNAL 30\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n"
