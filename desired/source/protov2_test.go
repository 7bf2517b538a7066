package source

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"reconciler.dev/reconciler/internal/gitserver"
)

func pkts(s string) *pktReader { return newPktReader(bufio.NewReader(strings.NewReader(s))) }

func TestPktReader(t *testing.T) {
	type pkt struct {
		kind pktKind
		data string
	}
	cases := []struct {
		name string
		in   string
		want []pkt
		err  error // after the packets
	}{
		{"data, delim, flush", "000ahello\n0001000aworld\n0000", []pkt{{pktData, "hello\n"}, {pktDelim, ""}, {pktData, "world\n"}, {pktFlush, ""}}, io.EOF},
		{"response end", "0002", []pkt{{pktResponseEnd, ""}}, io.EOF},
		{"upper-case hex", "000Ahello\n", []pkt{{pktData, "hello\n"}}, io.EOF},
		{"empty payload", "0004", []pkt{{pktData, ""}}, io.EOF},
		{"length 3 is not a packet", "0003", nil, errPktLen},
		{"not hex", "00g4", nil, errPktLen},
		{"sign", "+004", nil, errPktLen},
		{"too long", "fff1", nil, errPktLen},
		{"short header", "00", nil, io.ErrUnexpectedEOF},
		{"truncated payload", "000ahel", nil, io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pr := pkts(tc.in)
			var got []pkt
			var err error
			for {
				var k pktKind
				var b []byte
				if k, b, err = pr.next(); err != nil {
					break
				}
				got = append(got, pkt{k, string(b)})
			}
			if !reflect.DeepEqual(got, tc.want) || !errors.Is(err, tc.err) {
				t.Errorf("got %v, %v; want %v, %v", got, err, tc.want, tc.err)
			}
		})
	}
	if _, _, err := pkts("0016ERR access denied\n").line(); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("ERR packet: %v, want the server's message", err)
	}
}

func TestLsRefsRequest(t *testing.T) {
	got := string(lsRefsRequest(v2Names("production")))
	want := "0014command=ls-refs\n0001" + "0009peel\n000csymrefs\n" +
		"001fref-prefix refs/production\n0024ref-prefix refs/tags/production\n0025ref-prefix refs/heads/production\n0000"
	if got != want {
		t.Errorf("ls-refs request\n got %q\nwant %q", got, want)
	}
	if v2Names("0123456789abcdef0123456789abcdef01234567") != nil {
		t.Error("a pinned commit is looked up in v2")
	}
}

const (
	oidA = "1111111111111111111111111111111111111111"
	oidB = "2222222222222222222222222222222222222222"
	oidC = "3333333333333333333333333333333333333333"
)

func TestParseLsRefs(t *testing.T) {
	var w pktWriter
	w.line(oidA + " HEAD symref-target:refs/heads/main")
	w.line(oidA + " refs/heads/main")
	w.line(oidB + " refs/tags/v1 peeled:" + oidC)
	w.line(oidC + " refs/tags/v2 future-attribute:x")
	w.flush()
	got, err := parseLsRefs(pkts(string(w.b)), 1024)
	if err != nil {
		t.Fatal(err)
	}
	h := plumbing.NewHash
	want := []lsRef{
		{name: "HEAD", oid: h(oidA), symref: "refs/heads/main"},
		{name: "refs/heads/main", oid: h(oidA)},
		{name: "refs/tags/v1", oid: h(oidB), peeled: h(oidC)},
		{name: "refs/tags/v2", oid: h(oidC)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	pl := func(lines ...string) string {
		var w pktWriter
		for _, l := range lines {
			w.line(l)
		}
		w.flush()
		return string(w.b)
	}
	for _, bad := range []string{
		"", // no flush: a v0 server that gave up
		pl("not-an-oid refs/heads/main"),
		pl(oidA),
		pl(oidA + " "),
		pl(oidA + " refs/x peeled:zz"),
		pl(oidA + " HEAD symref-target:"),
		pl(strings.ToUpper("abcdef1111111111111111111111111111111111") + " refs/x"),
		"0001" + pl(), // a delim inside the list
		pl("ERR no such repository"),
	} {
		if refs, err := parseLsRefs(pkts(bad), 1024); err == nil {
			t.Errorf("%q parsed as %+v", bad, refs)
		}
	}
}

func TestV2RefList(t *testing.T) {
	h := plumbing.NewHash
	head := lsRef{name: "HEAD", oid: h(oidA), symref: "refs/heads/main"}
	main := lsRef{name: "refs/heads/main", oid: h(oidA)}
	mainline := lsRef{name: "refs/heads/mainline", oid: h(oidB)}
	tagMain := lsRef{name: "refs/tags/main", oid: h(oidC)}
	v1 := lsRef{name: "refs/tags/v1", oid: h(oidB), peeled: h(oidC)}
	cases := []struct {
		ref    string
		refs   []lsRef
		ok     bool
		target target
	}{
		{"", []lsRef{head}, true, target{name: "refs/heads/main", object: h(oidA), commit: h(oidA)}},
		// A detached HEAD: the full listing guesses its branch.
		{"HEAD", []lsRef{{name: "HEAD", oid: h(oidA)}}, false, target{}},
		// ref-prefix matches longer names too; only the exact one counts.
		{"main", []lsRef{main, mainline}, true, target{name: "refs/heads/main", object: h(oidA), commit: h(oidA)}},
		{"refs/heads/main", []lsRef{main, mainline}, true, target{name: "refs/heads/main", object: h(oidA), commit: h(oidA)}},
		{"v1", []lsRef{v1}, true, target{name: "refs/tags/v1", object: h(oidB), commit: h(oidC)}},
		// Not found, or ambiguous: the v0 path says so with the branch list.
		{"release", []lsRef{mainline}, false, target{}},
		{"main", []lsRef{main, tagMain}, false, target{}},
	}
	for _, tc := range cases {
		rl, ok := v2RefList(tc.refs, v2Names(tc.ref), tc.ref)
		if ok != tc.ok {
			t.Errorf("ref %q: ok=%v, want %v (%+v)", tc.ref, ok, tc.ok, rl)
			continue
		}
		if !ok {
			continue
		}
		if got, err := resolveRef(rl, tc.ref); err != nil || got != tc.target {
			t.Errorf("ref %q: resolved to %+v, %v; want %+v", tc.ref, got, err, tc.target)
		}
	}
}

// FuzzV2Answers feeds arbitrary server answers to the ls-refs and fetch
// parsers: they must never panic, and whatever ls-refs accepts must come
// out the same when written back.
func FuzzV2Answers(f *testing.F) {
	var w pktWriter
	w.line(oidA + " HEAD symref-target:refs/heads/main")
	w.line(oidB + " refs/tags/v1 peeled:" + oidC)
	w.flush()
	f.Add(w.b)
	f.Add([]byte("0011shallow-info\n0034shallow " + oidA + "\n0001000dpackfile\n"))
	f.Add([]byte("0013acknowledgments\n0008NAK\n0000"))
	f.Add([]byte("0010ERR go away\n"))
	f.Add([]byte("0000"))
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := parseLsRefs(newPktReader(bufio.NewReader(bytes.NewReader(data))), 1024)
		if err == nil {
			var w pktWriter
			for _, r := range refs {
				if r.name == "" || strings.Contains(r.name, " ") {
					t.Fatalf("accepted ref name %q", r.name)
				}
				line := r.oid.String() + " " + r.name
				if r.symref != "" {
					line += " symref-target:" + r.symref
				}
				if !r.peeled.IsZero() {
					line += " peeled:" + r.peeled.String()
				}
				w.line(line)
			}
			w.flush()
			again, err := parseLsRefs(newPktReader(bufio.NewReader(bytes.NewReader(w.b))), 1024)
			if err != nil || !reflect.DeepEqual(again, refs) {
				t.Fatalf("written back and read again: %+v, %v; want %+v", again, err, refs)
			}
			for _, ref := range []string{"", "main", "refs/heads/main", "v1"} {
				v2RefList(refs, v2Names(ref), ref)
			}
		}
		readFetchSections(newPktReader(bufio.NewReader(bytes.NewReader(data))), 4096)
	})
}

// v2Repo is a work repository with a branch, an annotated tag and many
// other refs, served over smart http by the real git http-backend.
func v2Repo(t *testing.T, extraRefs int) (*workRepo, plumbing.Hash) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed (the http server is git http-backend): hack/testbed up installs it, and make test runs that first")
	}
	r := newWorkRepo(t)
	c1 := r.commit("first", map[string]string{"hosts/fp-01.yaml": "kind: Host\n", "README": "x\n"})
	_, err := r.repo.CreateTag("v1", c1, &git.CreateTagOptions{
		Message: "release 1", Tagger: &object.Signature{Name: "Op", Email: "op@example.com", When: time.Unix(1e9, 0)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < extraRefs; i++ {
		r.setRef(fmt.Sprintf("refs/heads/feature/%04d", i), c1)
		r.setRef(fmt.Sprintf("refs/tags/build-%04d", i), c1)
	}
	return r, c1
}

// delta is what a Fetch cost at the server.
func delta(before, after gitserver.Counts) (requests, uploadPacks, bytesOut int64, services map[string]int64) {
	services = map[string]int64{}
	for k, v := range after.ByService {
		if d := v - before.ByService[k]; d != 0 {
			services[k] = d
		}
	}
	return after.Requests - before.Requests, after.UploadPacks - before.UploadPacks, after.BytesOut - before.BytesOut, services
}

func TestFetchOverHTTPSpeaksProtocolV2(t *testing.T) {
	r, c1 := v2Repo(t, 500)
	url, gs := r.httpURL(t)
	stats := func() gitserver.Counts { return gs.Stats("w.git") }
	lsRefs := map[string]int64{"git-upload-pack ls-refs": 1}
	lsRefsAndFetch := map[string]int64{"git-upload-pack ls-refs": 1, "git-upload-pack fetch": 1}

	for _, ref := range []string{"", "main", "refs/heads/main", "v1"} {
		t.Run("ref "+ref, func(t *testing.T) {
			cache := t.TempDir()
			s := mustOpen(t, Options{URL: url, Ref: ref, CacheDir: cache})
			before := stats()
			a, changed := mustFetch(t, s)
			if !changed || a.Revision.ID != c1.String() {
				t.Fatalf("first Fetch: changed=%v %+v", changed, a.Revision)
			}
			if req, up, _, svc := delta(before, stats()); req != 2 || up != 1 || !maps.Equal(svc, lsRefsAndFetch) {
				t.Errorf("first Fetch: %d requests, %d upload-packs (%v); want ls-refs and one fetch", req, up, svc)
			}
			if got := files(t, a.FS); got["hosts/fp-01.yaml"] != "kind: Host\n" {
				t.Errorf("files = %v", got)
			}

			// Nothing new, with 1,000 other refs on the server: one small
			// request.
			before = stats()
			if a, changed := mustFetch(t, s); changed || a.Revision.ID != c1.String() {
				t.Errorf("unchanged Fetch: changed=%v %+v", changed, a.Revision)
			}
			req, up, out, svc := delta(before, stats())
			if req != 1 || up != 0 || !maps.Equal(svc, lsRefs) {
				t.Errorf("unchanged Fetch: %d requests, %d upload-packs (%v); want one ls-refs", req, up, svc)
			}
			if out > 300 {
				t.Errorf("unchanged Fetch: %d bytes from the server, want a line or two", out)
			}
		})
	}

	// The ref moves: ls-refs and a shallow v2 fetch on top of the cache.
	cache := t.TempDir()
	s := mustOpen(t, Options{URL: url, CacheDir: cache})
	mustFetch(t, s)
	c2 := r.commit("second", map[string]string{"hosts/fp-01.yaml": "kind: Host\nspec: {}\n"})
	before := stats()
	a, changed := mustFetch(t, s)
	if !changed || a.Revision.ID != c2.String() || a.Revision.Ref != "refs/heads/main" || a.Revision.Message != "second" {
		t.Fatalf("after a commit: changed=%v %+v", changed, a.Revision)
	}
	if req, up, _, svc := delta(before, stats()); req != 2 || up != 1 || !maps.Equal(svc, lsRefsAndFetch) {
		t.Errorf("changed Fetch: %d requests, %d upload-packs (%v); want ls-refs and one fetch", req, up, svc)
	}
	wantFiles(t, a.FS, map[string]string{"hosts/fp-01.yaml": "kind: Host\nspec: {}\n", "README": "x\n"})
	if sh := shallowOf(t, s); len(sh) == 0 {
		t.Error("the v2 fetch recorded no shallow commit")
	}

	// A ref the server lacks: the same error as before v2, from the full
	// listing (which names the branches).
	bad := mustOpen(t, Options{URL: url, Ref: "release", CacheDir: t.TempDir()})
	_, _, err := bad.Fetch(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), `ref "release" not found on the remote (branches: feature/0000`) {
		t.Errorf("unknown ref: %v", err)
	}
}

// shallowOf reads the shallow commits of a source's cache.
func shallowOf(t *testing.T, s Source) []plumbing.Hash {
	t.Helper()
	sto, err := s.(*gitSource).cache.open()
	if err != nil {
		t.Fatal(err)
	}
	return shallowList(sto)
}

// TestHTTPServerWithoutProtocolV2: a server that ignores Git-Protocol
// answers ls-refs with nothing; the source falls back to v0/v1, and does
// not ask in v2 again on the next poll.
func TestHTTPServerWithoutProtocolV2(t *testing.T) {
	r, c1 := v2Repo(t, 10)
	_, gs := r.httpURL(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req.Header.Del("Git-Protocol")
		gs.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	s := mustOpen(t, Options{URL: srv.URL + "/w.git", CacheDir: t.TempDir()})
	before := gs.Stats("w.git")
	if a, changed := mustFetch(t, s); !changed || a.Revision.ID != c1.String() {
		t.Fatalf("first Fetch: changed=%v %+v", changed, a.Revision)
	}
	// The refused ls-refs, then the v0 advertisement and fetch.
	if req, _, _, svc := delta(before, gs.Stats("w.git")); req != 3 || svc["info/refs?git-upload-pack"] != 1 {
		t.Errorf("first Fetch: %d requests (%v), want 3: a refused ls-refs, then GET and POST", req, svc)
	}
	before = gs.Stats("w.git")
	if _, changed := mustFetch(t, s); changed {
		t.Error("unchanged Fetch: changed=true")
	}
	if req, up, _, svc := delta(before, gs.Stats("w.git")); req != 1 || up != 0 || svc["info/refs?git-upload-pack"] != 1 {
		t.Errorf("unchanged Fetch: %d requests, %d upload-packs (%v); want the v0 GET alone", req, up, svc)
	}
}
