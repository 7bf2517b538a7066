package source

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const fuzzSecret = "tok_FUZZSECRET_4b1d"

// FuzzDirSource builds a folder from the input, one entry per line
// ("f NAME CONTENT", "l NAME TARGET", "d NAME", "p NAME" for a FIFO), next
// to a secret file outside it, and takes a snapshot. It must never block,
// never hand out or quote the secret, and only hand out regular files of
// the folder, as they are.
func FuzzDirSource(f *testing.F) {
	f.Add([]byte("f a.yaml kind: Host\nl t.yaml ../outside/token\n"))
	f.Add([]byte("d sub\nf sub/x.yaml x\nl sub/y.yaml x.yaml\nl up.yaml sub/../../outside/token\n"))
	f.Add([]byte("p p.yaml\nf q.yaml q\n"))
	f.Add([]byte("l loop.yaml loop.yaml\nl abs.yaml /etc/hostname\nl dir out\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		out := filepath.Join(base, "outside")
		root := filepath.Join(base, "root")
		os.MkdirAll(out, 0o755)
		os.MkdirAll(root, 0o755)
		os.WriteFile(filepath.Join(out, "token"), []byte(fuzzSecret), 0o600)
		for _, line := range strings.Split(string(data), "\n") {
			kind, rest, _ := strings.Cut(line, " ")
			name, arg, _ := strings.Cut(rest, " ")
			if name == "" || strings.Contains(name, "\x00") || strings.Contains(name, "..") || filepath.IsAbs(name) {
				continue
			}
			p := filepath.Join(root, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			switch kind {
			case "f":
				os.WriteFile(p, []byte(strings.ReplaceAll(arg, "\\n", "\n")), 0o644)
			case "l":
				os.Symlink(arg, p)
			case "d":
				os.MkdirAll(p, 0o755)
			case "p":
				syscall.Mkfifo(p, 0o644)
			}
		}
		s, err := Open(Options{URL: root, Limits: Limits{MaxFileBytes: 1 << 16, MaxRevisionBytes: 1 << 18}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done := make(chan struct{})
		var a Artifact
		go func() { a, _, err = s.Fetch(ctx); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Fetch blocked")
		}
		if err != nil {
			if strings.Contains(err.Error(), fuzzSecret) {
				t.Fatalf("the error quotes the secret: %v", err)
			}
			return
		}
		for name, content := range files(t, a.FS) {
			if strings.Contains(content, fuzzSecret) {
				t.Fatalf("%s hands out the secret", name)
			}
			want, rerr := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
			if rerr != nil || !bytes.Equal(want, []byte(content)) {
				t.Fatalf("%s: %q, on disk %q (%v)", name, content, want, rerr)
			}
		}
	})
}

// FuzzV2Client points the protocol-v2 client at a hostile server: the
// input is the server's answer to ls-refs and to fetch. Whatever it says,
// a Fetch ends (well before its timeout), without a panic, with tight
// bounds holding; a LimitError names one of the protocol bounds.
func FuzzV2Client(f *testing.F) {
	oid := strings.Repeat("a", 40)
	var ls pktWriter
	ls.line(oid + " HEAD symref-target:refs/heads/main")
	ls.line(oid + " refs/heads/main")
	ls.flush()
	var fe pktWriter
	fe.line("shallow-info")
	fe.line("shallow " + oid)
	fe.delim()
	fe.line("packfile")
	f.Add(ls.b, append(fe.b, "0000"...))
	f.Add(ls.b, []byte("0013acknowledgments\n0008NAK\n0000"))
	f.Add([]byte("0010ERR go away\n"), []byte{})
	f.Add(bytes.Repeat([]byte("0031"+oid+" refs/heads/x\n"), 50), []byte{})
	f.Add(ls.b, append(fe.b, "000a\x01PACK"...))

	var mu sync.Mutex
	var answers [2][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		a := answers
		mu.Unlock()
		if req.Method != http.MethodPost {
			http.NotFound(w, req) // no v0 fallback to speak of
			return
		}
		var body bytes.Buffer
		body.ReadFrom(req.Body)
		w.Header().Set("Content-Type", uploadPackResult)
		if bytes.Contains(body.Bytes(), []byte("command=ls-refs")) {
			w.Write(a[0])
		} else {
			w.Write(a[1])
		}
	}))
	defer srv.Close()
	lim := Limits{MaxRefLines: 16, MaxRefBytes: 4096, MaxShallowLines: 8, MaxPackBytes: 1 << 16, MaxFileBytes: 1 << 14, MaxRevisionBytes: 1 << 16}
	f.Fuzz(func(t *testing.T, lsRefs, fetch []byte) {
		mu.Lock()
		answers = [2][]byte{lsRefs, fetch}
		mu.Unlock()
		s, err := Open(Options{URL: srv.URL + "/r.git", CacheDir: t.TempDir(), Timeout: 5 * time.Second, Limits: lim})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, _, err = s.Fetch(context.Background())
		if d := time.Since(start); d > 4*time.Second {
			t.Fatalf("Fetch took %s (%v)", d, err)
		}
		var le *LimitError
		if errors.As(err, &le) {
			switch le.Bound {
			case BoundRefLines, BoundRefBytes, BoundShallowLines, BoundPackBytes, BoundFileBytes, BoundRevisionBytes:
			default:
				t.Fatalf("unknown bound %q", le.Bound)
			}
		}
	})
}
