package supervisor

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/internal/socktest"
)

// Answers captured from the testbed's supervisord 4.2.5 with curl over its
// socket (testdata/*.xml), decoded.
func TestDecodeCaptured(t *testing.T) {
	fault := func(code int, s string) *Fault { return &Fault{Code: code, String: s} }
	cases := []struct {
		file  string
		want  any    // for scalar answers
		fault *Fault // for faults
		check func(t *testing.T, v any)
	}{
		{file: "startProcess-ok.xml", want: true},
		{file: "startProcess-nowait.xml", want: true},
		// Without wait, a process that will fail is started all the same.
		{file: "startProcess-nowait-fail.xml", want: true},
		{file: "stopProcess-ok.xml", want: true},
		{file: "startProcess-already-started.xml", fault: fault(FaultAlreadyStarted, "ALREADY_STARTED: usm-poller:usm-poller_01")},
		{file: "stopProcess-not-running.xml", fault: fault(FaultNotRunning, "NOT_RUNNING: usm-poller:usm-poller_02")},
		{file: "startProcess-bad-name.xml", fault: fault(FaultBadName, "BAD_NAME: usm-poller:usm-poller_99")},
		{file: "startProcess-spawn-error.xml", fault: fault(FaultSpawnError, "SPAWN_ERROR: capture-fail:capture-fail_1")},
		{file: "unknown-method.xml", fault: fault(FaultUnknownMethod, "UNKNOWN_METHOD")},
		{file: "getProcessInfo-running.xml", check: func(t *testing.T, v any) {
			p, err := parseProcess(v)
			if err != nil || p.Name != "usm-poller_02" || p.Group != "usm-poller" || p.State != "RUNNING" || p.PID <= 0 || p.Start <= 0 {
				t.Errorf("process = %+v, %v", p, err)
			}
			m := v.(map[string]any)
			if m["spawnerr"] != "" || m["state"] != int64(20) || !strings.HasPrefix(m["description"].(string), "pid ") {
				t.Errorf("raw = %v", m)
			}
		}},
		{file: "getProcessInfo-stopped.xml", check: func(t *testing.T, v any) {
			p, err := parseProcess(v)
			if err != nil || p.State != "STOPPED" || p.PID != 0 || p.Stop < p.Start || p.Stop == 0 {
				t.Errorf("process = %+v, %v", p, err)
			}
		}},
		{file: "getAllProcessInfo-stopped.xml", check: func(t *testing.T, v any) {
			ps, err := ParseProcesses(v)
			if err != nil || len(ps) != 15 {
				t.Fatalf("%d processes, %v", len(ps), err)
			}
			for i, p := range ps {
				if p.Name != fmt.Sprintf("usm-poller_%02d", i+1) || p.Num != i+1 || p.State != "STOPPED" || p.Description != "Not started" {
					t.Errorf("process %d = %+v", i, p)
				}
			}
		}},
		{file: "getAllProcessInfo-mixed.xml", check: func(t *testing.T, v any) {
			ps, err := ParseProcesses(v)
			if err != nil || len(ps) != 15 || ps[0].State != "RUNNING" || ps[1].State != "STARTING" || ps[2].State != "STOPPED" {
				t.Fatalf("%+v, %v", ps, err)
			}
		}},
		{file: "getAllProcessInfo-fatal-backoff.xml", check: func(t *testing.T, v any) {
			ps, err := ParseProcesses(v)
			if err != nil || len(ps) != 18 {
				t.Fatalf("%d processes, %v", len(ps), err)
			}
			got := map[string]string{}
			for _, p := range ps {
				got[p.Name] = p.State
			}
			if got["capture-fail_1"] != "FATAL" || got["capture-fail_2"] != "BACKOFF" || got["capture-fail_0"] != "STOPPED" {
				t.Errorf("states = %v", got)
			}
		}},
	}
	files, _ := filepath.Glob("testdata/*.xml")
	if len(files) != len(cases) {
		t.Errorf("%d captured answers, %d cases: every capture is checked", len(files), len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			v, err := DecodeResponse(data)
			switch {
			case tc.fault != nil:
				var f *Fault
				if !errors.As(err, &f) || !reflect.DeepEqual(f, tc.fault) || !IsFault(err, tc.fault.Code) {
					t.Errorf("DecodeResponse = %v, %v; want fault %v", v, err, tc.fault)
				}
			case err != nil:
				t.Fatalf("DecodeResponse: %v", err)
			case tc.check != nil:
				tc.check(t, v)
			case !reflect.DeepEqual(v, tc.want):
				t.Errorf("DecodeResponse = %#v, want %#v", v, tc.want)
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	wrap := func(value string) string {
		return "<?xml version='1.0'?>\n<methodResponse><params><param>" + value + "</param></params></methodResponse>\n"
	}
	cases := []struct {
		name string
		doc  string
		want any
	}{
		{"untyped string keeps its spaces", wrap("<value>  a b </value>"), "  a b "},
		{"empty untyped string", wrap("<value></value>"), ""},
		{"empty string", wrap("<value><string/></value>"), ""},
		{"string with entities, CDATA and a character reference",
			wrap("<value><string>a&lt;b&amp;c&#x41;<![CDATA[<x>]]>&quot;</string></value>"), "a<b&cA<x>\""},
		{"string keeps newlines", wrap("<value><string>\n l1\n l2\n</string></value>"), "\n l1\n l2\n"},
		{"int with spaces", wrap("<value><int> -42 </int></value>"), int64(-42)},
		{"i4", wrap("<value><i4>2147483647</i4></value>"), int64(2147483647)},
		{"i8 beyond 32 bits", wrap("<value><i8>4294967296</i8></value>"), int64(4294967296)},
		{"booleans", wrap("<value><array><data><value><boolean>0</boolean></value><value><boolean> 1 </boolean></value></data></array></value>"),
			[]any{false, true}},
		{"empty array", wrap("<value><array><data/></array></value>"), []any{}},
		{"empty struct", wrap("<value><struct></struct></value>"), map[string]any{}},
		{"nested, with comments and whitespace everywhere",
			"<?xml version=\"1.0\" encoding=\"us-ascii\"?>\n<!-- c --><methodResponse>\n <params> <param>\n<value> <struct>\n" +
				"<member><name>a</name><value><array><data><value><int>1</int></value><value>x</value></data></array></value></member>" +
				"<!-- between --><member> <name>b</name> <value><struct><member><name>c</name><value><boolean>1</boolean></value></member></struct></value> </member>" +
				"</struct> </value>\n</param></params>\n</methodResponse>\n<!-- after -->\n",
			map[string]any{"a": []any{int64(1), "x"}, "b": map[string]any{"c": true}}},
		{"a repeated member: the last wins",
			wrap("<value><struct><member><name>k</name><value>1</value></member><member><name>k</name><value>2</value></member></struct></value>"),
			map[string]any{"k": "2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := DecodeResponse([]byte(tc.doc))
			if err != nil || !reflect.DeepEqual(v, tc.want) {
				t.Errorf("DecodeResponse = %#v, %v; want %#v", v, err, tc.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	wrap := func(value string) string {
		return "<methodResponse><params><param>" + value + "</param></params></methodResponse>"
	}
	deep := strings.Repeat("<value><array><data>", maxNesting+2) + "<value>x</value>" + strings.Repeat("</data></array></value>", maxNesting+2)
	cases := map[string]string{
		"empty":                      "",
		"not XML":                    "HTTP/1.1 500",
		"another root":               "<methodCall><params/></methodCall>",
		"no value":                   "<methodResponse><params><param></param></params></methodResponse>",
		"two values in one param":    wrap("<value>1</value><value>2</value>"),
		"two params":                 "<methodResponse><params><param><value>1</value></param><param><value>2</value></param></params></methodResponse>",
		"truncated":                  wrap("<value><array><data><value>1</value>"),
		"mismatched tags":            wrap("<value><string>x</int></value>"),
		"text beside a typed value":  wrap("<value>x<int>1</int></value>"),
		"text beside elements":       "<methodResponse>x<params><param><value>1</value></param></params></methodResponse>",
		"a second root":              wrap("<value>1</value>") + "<methodResponse/>",
		"text after the root":        wrap("<value>1</value>") + "junk",
		"double (not supported)":     wrap("<value><double>1.5</double></value>"),
		"nil (not supported)":        wrap("<value><nil/></value>"),
		"base64 (not supported)":     wrap("<value><base64>eA==</base64></value>"),
		"dateTime (not supported)":   wrap("<value><dateTime.iso8601>20260101T00:00:00</dateTime.iso8601></value>"),
		"int too large":              wrap("<value><int>9223372036854775808</int></value>"),
		"int not a number":           wrap("<value><int>12a</int></value>"),
		"boolean 2":                  wrap("<value><boolean>2</boolean></value>"),
		"element inside a string":    wrap("<value><string>a<b/>c</string></value>"),
		"array without data":         wrap("<value><array><value>1</value></array></value>"),
		"struct member without name": wrap("<value><struct><member><value>1</value></member></struct></value>"),
		"struct with a stray value":  wrap("<value><struct><value>1</value></struct></value>"),
		"nested too deep":            wrap(deep),
		"fault without a struct":     "<methodResponse><fault><value><int>1</int></value></fault></methodResponse>",
		"fault without a code":       "<methodResponse><fault><value><struct><member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse>",
		"fault code too large":       "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>4294967296</int></value></member><member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse>",
		"fault then junk":            "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member><member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse><x/>",
		"unknown charset":            "<?xml version=\"1.0\" encoding=\"latin1\"?>" + wrap("<value>1</value>"),
		"invalid UTF-8":              wrap("<value><string>\xff</string></value>"),
		"undefined entity":           wrap("<value><string>&nbsp;</string></value>"),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			v, err := DecodeResponse([]byte(doc))
			var f *Fault
			if err == nil || errors.As(err, &f) {
				t.Errorf("DecodeResponse = %#v, %v; want a decoding error", v, err)
			}
		})
	}
}

// methodCall is how a server sees a call; encoding/xml's own unmarshalling
// checks our encoder independently.
type methodCall struct {
	XMLName    xml.Name `xml:"methodCall"`
	MethodName string   `xml:"methodName"`
	Params     []struct {
		String  *string `xml:"value>string"`
		Boolean *string `xml:"value>boolean"`
		Int     *string `xml:"value>int"`
	} `xml:"params>param"`
}

// args returns a call's parameters as Go values.
func (c methodCall) args() []any {
	var out []any
	for _, p := range c.Params {
		switch {
		case p.String != nil:
			out = append(out, *p.String)
		case p.Boolean != nil:
			out = append(out, *p.Boolean == "1")
		case p.Int != nil:
			n, _ := strconv.ParseInt(*p.Int, 10, 64)
			out = append(out, n)
		default:
			out = append(out, nil)
		}
	}
	return out
}

func TestEncodeCall(t *testing.T) {
	body, err := encodeCall("supervisor.stopProcess", []any{"g:a<&>'\"_01", true, false, 7, int32(-8), int64(9)})
	if err != nil {
		t.Fatal(err)
	}
	var c methodCall
	if err := xml.Unmarshal(body, &c); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	want := []any{"g:a<&>'\"_01", true, false, int64(7), int64(-8), int64(9)}
	if c.MethodName != "supervisor.stopProcess" || !reflect.DeepEqual(c.args(), want) {
		t.Errorf("decoded call %q %#v, want %#v\n%s", c.MethodName, c.args(), want, body)
	}
	if !bytes.HasPrefix(body, []byte(`<?xml version="1.0"?>`)) {
		t.Errorf("no XML declaration:\n%s", body)
	}
	for _, bad := range []any{1.5, int64(1) << 40, []string{"x"}, nil} {
		if _, err := encodeCall("m", []any{bad}); err == nil {
			t.Errorf("encodeCall(%#v) did not fail", bad)
		}
	}
}

// fakeServer serves XML-RPC over a unix socket with handler, which gets the
// decoded call and writes the answer.
type fakeServer struct {
	socket string
	srv    *http.Server
}

func serveUnix(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, c methodCall)) *fakeServer {
	t.Helper()
	s := &fakeServer{socket: filepath.Join(socktest.Dir(t), "s.sock")}
	ln, err := net.Listen("unix", s.socket)
	if err != nil {
		t.Fatal(err)
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c methodCall
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/RPC2" || r.Header.Get("Content-Type") != "text/xml" {
			http.Error(w, "want POST /RPC2 text/xml", http.StatusBadRequest)
			return
		}
		if err := xml.Unmarshal(body, &c); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		handler(w, r, c)
	})}
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// encodeValue writes v (as DecodeResponse returns values) as an XML-RPC
// <value>. Struct members are written in sorted order.
func encodeValue(b *bytes.Buffer, v any) {
	b.WriteString("<value>")
	switch x := v.(type) {
	case string:
		b.WriteString("<string>")
		xml.EscapeText(b, []byte(x))
		b.WriteString("</string>")
	case int64:
		fmt.Fprintf(b, "<int>%d</int>", x)
	case bool:
		if x {
			b.WriteString("<boolean>1</boolean>")
		} else {
			b.WriteString("<boolean>0</boolean>")
		}
	case []any:
		b.WriteString("<array><data>")
		for _, e := range x {
			encodeValue(b, e)
		}
		b.WriteString("</data></array>")
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("<struct>")
		for _, k := range keys {
			b.WriteString("<member><name>")
			xml.EscapeText(b, []byte(k))
			b.WriteString("</name>")
			encodeValue(b, x[k])
			b.WriteString("</member>")
		}
		b.WriteString("</struct>")
	default:
		panic(fmt.Sprintf("encodeValue: %T", v))
	}
	b.WriteString("</value>")
}

// responseXML is a methodResponse carrying v.
func responseXML(v any) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n")
	encodeValue(&b, v)
	b.WriteString("\n</param>\n</params>\n</methodResponse>\n")
	return b.Bytes()
}

// faultXML is a methodResponse carrying a fault.
func faultXML(code int, s string) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<methodResponse>\n<fault>\n")
	encodeValue(&b, map[string]any{"faultCode": int64(code), "faultString": s})
	b.WriteString("\n</fault>\n</methodResponse>\n")
	return b.Bytes()
}

func TestClient(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := serveUnix(t, func(w http.ResponseWriter, r *http.Request, c methodCall) {
		switch c.MethodName {
		case "echo":
			w.Write(responseXML(map[string]any{"args": c.args()}))
		case "captured":
			data, _ := os.ReadFile("testdata/getAllProcessInfo-mixed.xml")
			w.Write(data)
		case "fault":
			w.Write(faultXML(FaultNotRunning, "NOT_RUNNING: g:p"))
		case "big":
			w.Write(responseXML(strings.Repeat("x", 2000)))
		case "http500":
			http.Error(w, "internal trouble", http.StatusInternalServerError)
		case "hang":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	})
	c := NewClient(s.socket)
	defer c.Close()
	ctx := context.Background()

	v, err := c.Call(ctx, "echo", "g:p_01", true, 3)
	if want := map[string]any{"args": []any{"g:p_01", true, int64(3)}}; err != nil || !reflect.DeepEqual(v, want) {
		t.Errorf("echo = %#v, %v; want %#v", v, err, want)
	}
	if v, err := c.Call(ctx, "captured"); err != nil || len(v.([]any)) != 15 {
		t.Errorf("captured = %v", err)
	}
	if _, err := c.Call(ctx, "fault"); !IsFault(err, FaultNotRunning) {
		t.Errorf("fault = %v", err)
	}
	if _, err := c.Call(ctx, "http500"); err == nil || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "internal trouble") {
		t.Errorf("http500 = %v", err)
	}
	small := NewClient(s.socket)
	small.maxResponse = 1000
	if _, err := small.Call(ctx, "big"); err == nil || !strings.Contains(err.Error(), "larger than 1000 bytes") {
		t.Errorf("big = %v", err)
	}
	if _, err := c.Call(ctx, "big"); err != nil {
		t.Errorf("big within the default bound = %v", err)
	}
	if _, err := c.Call(ctx, "m", 1.5); err == nil {
		t.Error("a float parameter was sent")
	}

	// A deadline and a cancellation both end a call the server never
	// answers.
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = c.Call(dctx, "hang")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("hang with a deadline = %v after %s", err, time.Since(start))
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err = c.Call(cctx, "hang"); !errors.Is(err, context.Canceled) {
		t.Errorf("hang, cancelled = %v", err)
	}

	// Nobody listening.
	gone := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	if _, err := gone.Call(ctx, "echo"); err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Errorf("no server = %v", err)
	}
}

// FuzzDecodeResponse: whatever the bytes, the decoder returns a value or an
// error and never panics; a value it returns, written out again, decodes to
// the same value.
func FuzzDecodeResponse(f *testing.F) {
	// The captured answers seed the corpus; the getAllProcessInfo ones
	// (about 20 KiB) are cut down to their first two processes, as big
	// seeds make the fuzzer spend its time minimizing them.
	files, _ := filepath.Glob("testdata/*.xml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) > 4096 {
			v, err := DecodeResponse(data)
			if err != nil {
				f.Fatal(err)
			}
			data = responseXML(v.([]any)[:2])
		}
		f.Add(data)
	}
	for _, s := range []string{
		"<methodResponse><params><param><value>x</value></param></params></methodResponse>",
		"<methodResponse><params><param><value><array><data><value><i4>1</i4></value><value><struct><member><name>a</name><value><boolean>1</boolean></value></member></struct></value></data></array></value></param></params></methodResponse>",
		"<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>70</int></value></member><member><name>faultString</name><value><string>NOT_RUNNING</string></value></member></struct></value></fault></methodResponse>",
		"<?xml version=\"1.0\" encoding=\"us-ascii\"?><methodResponse><params><param><value><string>&amp;&#13;<![CDATA[]]></string></value></param></params></methodResponse>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeResponse(data)
		if err != nil {
			if v != nil {
				t.Fatalf("value %#v with error %v", v, err)
			}
			return
		}
		again, err := DecodeResponse(responseXML(v))
		if err != nil {
			t.Fatalf("re-encoded value does not decode: %v\nvalue %#v", err, v)
		}
		if !reflect.DeepEqual(again, v) {
			t.Fatalf("round trip differs:\n got %#v\nwant %#v", again, v)
		}
		// The one reader of getAllProcessInfo never panics on what
		// decodes, and what it accepts has a name, a group and a state.
		ps, err := ParseProcesses(v)
		for _, p := range ps {
			if err == nil && (p.Name == "" || p.Group == "" || p.State == "") {
				t.Fatalf("process %+v accepted", p)
			}
		}
	})
}
