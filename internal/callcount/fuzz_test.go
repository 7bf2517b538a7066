package callcount

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// FuzzDBusMessages feeds arbitrary client streams to the D-Bus stream parser.
// It must never panic, and what it reports must not depend on where the
// stream is cut into reads: whole, byte by byte, or in the chunk sizes the
// fuzzer picks give the same messages and the same error.
func FuzzDBusMessages(f *testing.F) {
	for _, ord := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		seed := []byte(authPrefix)
		seed = append(seed, busCall(ord, 1, "Hello")...)
		seed = append(seed, call(ord, 2, "StartUnit", strBody(ord, "a.timer"))...)
		seed = append(seed, unknownFieldFirst(ord, 3)...)
		seed = append(seed, message(ord, msgSignal, 4, []field{
			{fieldPath, "o", "/a"}, {fieldInterface, "s", "a.b"}, {fieldMember, "s", "S"},
		}, []byte{1, 2, 3})...)
		f.Add(seed, []byte{1})
		f.Add(seed, []byte{3, 17, 5})
		f.Add(seed[len(authPrefix)-len("BEGIN\r\n")-1:], []byte{})
	}
	f.Add([]byte("\x00AUTH\r\nBEGIN\r\nl\x01\x00\x01\xff\xff\xff\xff\x01\x00\x00\x00\xff\xff\xff\x03"), []byte{2})
	f.Add([]byte("\x00BEGIN\r\nB\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x08\x03\x01v\x00"), []byte{})

	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		whole, pw := parseAll(stream, nil)
		var sizes []int
		for _, c := range cuts {
			sizes = append(sizes, 1+int(c)%64)
		}
		if len(sizes) == 0 {
			sizes = []int{1}
		}
		chunked, pc := parseAll(stream, sizes)
		if !reflect.DeepEqual(whole, chunked) {
			t.Fatalf("whole stream gave %+v, chunks %v gave %+v", whole, sizes, chunked)
		}
		if (pw.err == nil) != (pc.err == nil) || (pw.err != nil && pw.err.Error() != pc.err.Error()) {
			t.Fatalf("whole stream: err %v; chunks %v: err %v", pw.err, sizes, pc.err)
		}
		for _, h := range whole {
			if h.Type == msgMethodCall && (h.Member == "" || h.Path == "") {
				t.Fatalf("a method call without member or path was reported: %+v", h)
			}
		}
	})
}
