package callcount

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
)

var orders = []struct {
	name  string
	order binary.ByteOrder
}{{"little", binary.LittleEndian}, {"big", binary.BigEndian}}

// parseAll feeds stream to a new parser in the chunks sizes gives (cycled;
// nil means all at once) and returns the headers it reported.
func parseAll(stream []byte, sizes []int) ([]msgHeader, *streamParser) {
	var got []msgHeader
	p := newStreamParser(func(h msgHeader) { got = append(got, h) })
	if len(sizes) == 0 {
		p.feed(stream)
		return got, p
	}
	for i := 0; len(stream) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(stream))
		p.feed(stream[:n])
		stream = stream[n:]
	}
	return got, p
}

// members is the member of every method call in hs.
func members(hs []msgHeader) []string {
	var out []string
	for _, h := range hs {
		if h.Type == msgMethodCall {
			out = append(out, h.Member)
		}
	}
	return out
}

// TestParserHandBuiltMessages: messages built byte by byte from the
// specification, in both byte orders, are framed and their members found,
// whether the stream arrives whole, byte by byte, or in odd chunks.
func TestParserHandBuiltMessages(t *testing.T) {
	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			ord := o.order
			var stream []byte
			stream = append(stream, authPrefix...)
			// Hello: no body, fields in the order godbus happens to use.
			stream = append(stream, message(ord, msgMethodCall, 1, []field{
				{fieldMember, "s", "Hello"},
				{fieldDestination, "s", "org.freedesktop.DBus"},
				{fieldPath, "o", "/org/freedesktop/DBus"},
				{fieldInterface, "s", "org.freedesktop.DBus"},
			}, nil)...)
			// A call with a body whose length is not a multiple of 8.
			stream = append(stream, call(ord, 2, "StartUnit", append(strBody(ord, "abb-factory-proxy-housekeeping.timer"), strBody(ord, "replace")...))...)
			// A signal the client emits: framed, not a call.
			stream = append(stream, message(ord, msgSignal, 3, []field{
				{fieldPath, "o", "/x"}, {fieldInterface, "s", "a.b"}, {fieldMember, "s", "Changed"},
			}, []byte{1, 2, 3})...)
			// A reply the client sends (to a server's Introspect, say).
			stream = append(stream, message(ord, msgMethodReturn, 4, []field{
				{fieldReplySerial, "u", uint32(9)}, {fieldDestination, "s", ":1.5"},
			}, nil)...)
			// An unknown header field (code 200) of a container type, before
			// the member: the parser must step over it by its type.
			stream = append(stream, unknownFieldFirst(ord, 5)...)
			// A call with a 0-length body.
			stream = append(stream, call(ord, 6, "Reload", nil)...)
			want := []string{"Hello", "StartUnit", "UnknownFieldFirst", "Reload"}

			for _, sizes := range [][]int{nil, {1}, {2}, {3}, {7}, {16}, {5, 1, 13, 8}} {
				got, p := parseAll(stream, sizes)
				if p.err != nil {
					t.Fatalf("chunks %v: %v", sizes, p.err)
				}
				if m := members(got); !reflect.DeepEqual(m, want) {
					t.Fatalf("chunks %v: members %q, want %q", sizes, m, want)
				}
				if len(got) != 6 {
					t.Fatalf("chunks %v: %d messages, want 6", sizes, len(got))
				}
				start := got[1]
				if start.Interface != "org.freedesktop.systemd1.Manager" || start.Path != "/org/freedesktop/systemd1" ||
					start.Destination != "org.freedesktop.systemd1" || start.Signature != "s" || start.Serial != 2 {
					t.Fatalf("StartUnit header %+v", start)
				}
				if got[3].Type != msgMethodReturn || got[3].ReplySerial != 9 {
					t.Fatalf("reply header %+v", got[3])
				}
			}
		})
	}
}

// unknownFieldFirst is a method call "UnknownFieldFirst" whose first header
// field has the unknown code 200 and the type (yv), the variant holding an
// array of strings: every kind of alignment the walk must get right.
func unknownFieldFirst(ord binary.ByteOrder, serial uint32) []byte {
	e := &enc{order: ord}
	endian := byte('l')
	if ord == binary.BigEndian {
		endian = 'B'
	}
	e.b = append(e.b, endian, msgMethodCall, 0, 1)
	e.u32(0)
	e.u32(serial)
	e.u32(0)
	start := len(e.b)
	e.b = append(e.b, 200)
	e.sig("(yv)")
	// (yv) with v = as ["x", "yz"]
	e.pad(8)
	e.b = append(e.b, 7)
	e.sig("as")
	e.pad(4)
	lenAt := len(e.b)
	e.u32(0)
	elems := len(e.b)
	e.str("x")
	e.str("yz")
	ord.PutUint32(e.b[lenAt:], uint32(len(e.b)-elems))
	for _, f := range []field{
		{fieldPath, "o", "/org/freedesktop/systemd1"},
		{fieldMember, "s", "UnknownFieldFirst"},
	} {
		e.pad(8)
		e.b = append(e.b, f.code)
		e.sig(f.sig)
		e.str(f.val.(string))
	}
	ord.PutUint32(e.b[12:], uint32(len(e.b)-start))
	e.pad(8)
	return e.b
}

// TestParserMatchesGodbus: what godbus, a real implementation, encodes is
// what the parser reads; and what the tests' encoder writes, godbus decodes.
func TestParserMatchesGodbus(t *testing.T) {
	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			ord := o.order
			stream := []byte(authPrefix)
			wantMembers := []string{"EnableUnitFiles", "ListUnitsByPatterns", "GetAll"}
			for i, m := range []*dbus.Message{
				{Type: dbus.TypeMethodCall, Headers: map[dbus.HeaderField]dbus.Variant{
					dbus.FieldPath:        dbus.MakeVariant(dbus.ObjectPath("/org/freedesktop/systemd1")),
					dbus.FieldDestination: dbus.MakeVariant("org.freedesktop.systemd1"),
					dbus.FieldInterface:   dbus.MakeVariant("org.freedesktop.systemd1.Manager"),
					dbus.FieldMember:      dbus.MakeVariant("EnableUnitFiles"),
					dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf([]string{}, false, false)),
				}, Body: []any{[]string{"a.timer", "b.service"}, false, true}},
				{Type: dbus.TypeMethodCall, Flags: dbus.FlagNoAutoStart, Headers: map[dbus.HeaderField]dbus.Variant{
					dbus.FieldPath:      dbus.MakeVariant(dbus.ObjectPath("/org/freedesktop/systemd1")),
					dbus.FieldMember:    dbus.MakeVariant("ListUnitsByPatterns"),
					dbus.FieldSignature: dbus.MakeVariant(dbus.SignatureOf([]string{}, []string{})),
				}, Body: []any{[]string{}, []string{"usm-poller@*"}}},
				{Type: dbus.TypeSignal, Headers: map[dbus.HeaderField]dbus.Variant{
					dbus.FieldPath:      dbus.MakeVariant(dbus.ObjectPath("/a")),
					dbus.FieldInterface: dbus.MakeVariant("a.b"),
					dbus.FieldMember:    dbus.MakeVariant("NotACall"),
				}},
				{Type: dbus.TypeMethodCall, Headers: map[dbus.HeaderField]dbus.Variant{
					dbus.FieldPath:      dbus.MakeVariant(dbus.ObjectPath("/org/freedesktop/systemd1/unit/a_2etimer")),
					dbus.FieldInterface: dbus.MakeVariant("org.freedesktop.DBus.Properties"),
					dbus.FieldMember:    dbus.MakeVariant("GetAll"),
					dbus.FieldSignature: dbus.MakeVariant(dbus.SignatureOf("")),
				}, Body: []any{"org.freedesktop.systemd1.Unit"}},
			} {
				var b bytes.Buffer
				if err := m.EncodeTo(&b, ord); err != nil {
					t.Fatal(err)
				}
				raw := b.Bytes()
				ord.PutUint32(raw[8:], uint32(i+1)) // godbus leaves the serial to its Conn
				stream = append(stream, raw...)
			}
			for _, sizes := range [][]int{nil, {1}, {9, 4}} {
				got, p := parseAll(stream, sizes)
				if p.err != nil {
					t.Fatal(p.err)
				}
				if m := members(got); !reflect.DeepEqual(m, wantMembers) {
					t.Fatalf("members %q, want %q", m, wantMembers)
				}
				if len(got) != 4 || got[1].Flags != byte(dbus.FlagNoAutoStart) || got[3].Interface != "org.freedesktop.DBus.Properties" {
					t.Fatalf("headers %+v", got)
				}
			}

			// The other way round. (godbus refuses unknown header fields,
			// which the specification says to ignore, so unknownFieldFirst
			// is not checked here.)
			for _, raw := range [][]byte{
				call(ord, 7, "StopUnit", append(strBody(ord, "x.service"), strBody(ord, "replace")...)),
				message(ord, msgSignal, 8, []field{{fieldPath, "o", "/a"}, {fieldInterface, "s", "a.b"}, {fieldMember, "s", "S"}}, []byte{1}),
			} {
				m, err := dbus.DecodeMessage(bytes.NewReader(raw))
				if err != nil {
					t.Fatalf("godbus cannot decode the tests' message: %v", err)
				}
				if m.Serial() == 0 || m.Headers[dbus.FieldMember].Value() == nil {
					t.Fatalf("godbus decoded %v", m)
				}
			}
		})
	}
}

// TestParserRandomChunks: any cut of a long stream gives the same calls.
func TestParserRandomChunks(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, o := range orders {
		stream := []byte(authPrefix)
		var want []string
		for i := 1; i <= 300; i++ {
			m := []string{"StartUnit", "StopUnit", "ListUnitsByPatterns", "GetUnitFileState"}[rng.Intn(4)]
			body := make([]byte, rng.Intn(200))
			rng.Read(body)
			stream = append(stream, call(o.order, uint32(i), m, body)...)
			want = append(want, m)
		}
		for range 50 {
			sizes := make([]int, 1+rng.Intn(10))
			for i := range sizes {
				sizes[i] = 1 + rng.Intn(100)
			}
			got, p := parseAll(stream, sizes)
			if p.err != nil {
				t.Fatal(p.err)
			}
			if m := members(got); !reflect.DeepEqual(m, want) {
				t.Fatalf("%s, chunks %v: %d members, want %d", o.name, sizes, len(m), len(want))
			}
		}
	}
}

func TestParserAuthPhase(t *testing.T) {
	ord := binary.LittleEndian
	msg := call(ord, 1, "Reload", nil)
	for _, tc := range []struct {
		name, auth string
		want       []string
	}{
		{"godbus", authPrefix, []string{"Reload"}},
		{"bare LF", "\x00AUTH EXTERNAL 30\nBEGIN\n", []string{"Reload"}},
		// DATA lines and a CANCEL before BEGIN are just lines.
		{"data", "\x00AUTH DBUS_COOKIE_SHA1 30\r\nDATA 61626364\r\nCANCEL\r\nAUTH EXTERNAL\r\nDATA\r\nBEGIN\r\n", []string{"Reload"}},
		// Not BEGIN: the message bytes are read as (long, unterminated) text.
		{"no begin", "\x00AUTH EXTERNAL 30\r\nBEGINNING\r\n", nil},
		{"begin with args", "\x00BEGIN now\r\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := append([]byte(tc.auth), msg...)
			for _, sizes := range [][]int{nil, {1}, {3}} {
				got, p := parseAll(stream, sizes)
				if m := members(got); !reflect.DeepEqual(m, tc.want) {
					t.Fatalf("chunks %v: members %q, want %q (err %v)", sizes, m, tc.want, p.err)
				}
			}
		})
	}
}

// TestParserBrokenStreams: a stream the parser cannot follow stops it with an
// error; a message with a bad header but sound framing is skipped, reported,
// and the next one still counted.
func TestParserBrokenStreams(t *testing.T) {
	ord := binary.LittleEndian
	good := call(ord, 9, "StartUnit", nil)
	withByte := func(b []byte, i int, v byte) []byte {
		b = bytes.Clone(b)
		b[i] = v
		return b
	}
	withU32 := func(b []byte, i int, v uint32) []byte {
		b = bytes.Clone(b)
		ord.PutUint32(b[i:], v)
		return b
	}
	noNul := message(ord, msgMethodCall, 1, []field{{fieldPath, "o", "/"}, {fieldMember, "s", "Xy"}}, nil)
	for _, tc := range []struct {
		name     string
		msg      []byte
		want     []string // members seen, the good message included if it is
		errMatch string
	}{
		{"endianness", withByte(good, 0, 'x'), nil, "endianness"},
		{"type 0", withByte(good, 1, 0), nil, "type 0"},
		{"version", withByte(good, 3, 2), nil, "version 2"},
		{"serial 0", withU32(good, 8, 0), nil, "serial 0"},
		{"huge fields", withU32(good, 12, 1<<27), nil, "exceeds the protocol"},
		{"huge body", withU32(good, 4, 1<<27), nil, "exceeds the protocol"},
		{"fields over parser limit", withU32(good, 12, maxHeaderFields+8), nil, "this parser"},
		{"member type", message(ord, msgMethodCall, 1, []field{
			{fieldPath, "o", "/"}, {fieldMember, "u", uint32(3)},
		}, nil), []string{"StartUnit"}, "want \"s\""},
		{"no member", message(ord, msgMethodCall, 1, []field{{fieldPath, "o", "/"}}, nil), []string{"StartUnit"}, "without path or member"},
		{"bad variant signature", message(ord, msgMethodCall, 1, []field{
			{fieldPath, "o", "/"}, {fieldMember, "s", "X"}, {201, "a", []byte{}},
		}, nil), []string{"StartUnit"}, "ends inside"},
		{"string without NUL", withByte(noNul, bytes.Index(noNul, []byte("Xy\x00"))+2, '!'), []string{"StartUnit"}, "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := append([]byte(authPrefix), tc.msg...)
			stream = append(stream, good...)
			for _, sizes := range [][]int{nil, {1}} {
				got, p := parseAll(stream, sizes)
				if m := members(got); !reflect.DeepEqual(m, tc.want) {
					t.Fatalf("chunks %v: members %q, want %q (err %v)", sizes, m, tc.want, p.err)
				}
				if p.err == nil || !strings.Contains(p.err.Error(), tc.errMatch) {
					t.Fatalf("chunks %v: err %v, want one with %q", sizes, p.err, tc.errMatch)
				}
			}
		})
	}
}

func TestTypeLen(t *testing.T) {
	for sig, ok := range map[string]bool{
		"s": true, "a{sv}": true, "(yv)": true, "a(sa{sv})": true, "aay": true,
		"": false, "a": false, "()": false, "(s": false, "{sv}": false, "a{vs}": false,
		"a{sss}": false, "ss": false, "z": false,
		strings.Repeat("a", 32) + "y": true, strings.Repeat("a", 33) + "y": false,
		strings.Repeat("(", 33) + "y" + strings.Repeat(")", 33): false,
	} {
		if err := checkSingleType(sig); (err == nil) != ok {
			t.Errorf("checkSingleType(%q) = %v, want ok=%v", sig, err, ok)
		}
	}
}
