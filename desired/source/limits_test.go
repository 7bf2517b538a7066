package source

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

const hostDoc = "apiVersion: reconciler.dev/v1\nkind: Host\nmetadata: {name: fp-01}\n"

func wantLimit(t *testing.T, err error, bound, what string) *LimitError {
	t.Helper()
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrLimit) {
		t.Fatalf("want a LimitError of %s, got %v", bound, err)
	}
	if le.Bound != bound || !strings.Contains(le.What, what) || !strings.Contains(err.Error(), "--"+bound) {
		t.Fatalf("LimitError = %+v (%v), want bound %s naming %q", le, err, bound, what)
	}
	return le
}

func TestGitFileOverBoundRefusedFromItsHeader(t *testing.T) {
	r := newWorkRepo(t)
	c := r.commit("big", map[string]string{"cfg/fp-01.yaml": hostDoc, "cfg/big.yaml": strings.Repeat("x", 4096), "other/huge.bin": strings.Repeat("y", 8192)})
	lim := Limits{MaxFileBytes: 2048}
	s := mustOpen(t, Options{URL: r.url(), Path: "cfg", CacheDir: t.TempDir(), Limits: lim})
	before := blobReads.Load()
	_, _, err := s.Fetch(ctxT(t))
	le := wantLimit(t, err, BoundFileBytes, "cfg/big.yaml")
	if le.Size != 4096 || le.Commit != c.String() {
		t.Errorf("size %d commit %s, want 4096 and %s", le.Size, le.Commit, c)
	}
	if n := blobReads.Load() - before; n != 0 {
		t.Errorf("%d blobs read before the refusal, want 0 (sizes come from headers)", n)
	}
	// A second poll: the ref has not moved, the refusal is remembered.
	before = blobReads.Load()
	if _, _, err2 := s.Fetch(ctxT(t)); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second poll: %v, want the same refusal", err2)
	}
	if n := blobReads.Load() - before; n != 0 {
		t.Errorf("second poll read %d blobs", n)
	}

	// Beside --path, a file over the bound is not ours: not even copied.
	s2 := mustOpen(t, Options{URL: r.url(), Path: "cfg", CacheDir: t.TempDir(), Limits: Limits{MaxFileBytes: 5000}})
	if _, _, err := s2.Fetch(ctxT(t)); err != nil {
		t.Errorf("other/huge.bin is outside --path, yet: %v", err)
	}
}

func TestGitRevisionBytesBound(t *testing.T) {
	r := newWorkRepo(t)
	files := map[string]string{}
	for i := range 5 {
		files[fmt.Sprintf("h%d.yaml", i)] = strings.Repeat("z", 1000)
	}
	r.commit("many", files)
	s := mustOpen(t, Options{URL: r.url(), CacheDir: t.TempDir(), Limits: Limits{MaxRevisionBytes: 3000}})
	_, _, err := s.Fetch(ctxT(t))
	wantLimit(t, err, BoundRevisionBytes, "the files under")
}

func TestCommitCheckBeforeAnyTree(t *testing.T) {
	r := newWorkRepo(t)
	c := r.commit("c", map[string]string{"a.yaml": hostDoc, "big.yaml": strings.Repeat("x", 100000)})
	no := errors.New("not signed")
	var seen []string
	check := func(sc Commit) error { seen = append(seen, sc.ID); return no }
	s := mustOpen(t, Options{URL: r.url(), CacheDir: t.TempDir(), CommitCheck: check, Limits: Limits{MaxFileBytes: 1000}})
	before := blobReads.Load()
	_, _, err := s.Fetch(ctxT(t))
	if !errors.Is(err, no) {
		t.Fatalf("Fetch: %v, want the check's error (before the file bound: the tree is not walked)", err)
	}
	if len(seen) == 0 || seen[0] != c.String() || blobReads.Load() != before {
		t.Errorf("checked %v, %d blobs read", seen, blobReads.Load()-before)
	}
}

func TestUnchangedPollDoesNoBlobWork(t *testing.T) {
	r := newWorkRepo(t)
	r.commit("c", map[string]string{"a.yaml": hostDoc, "b.yaml": hostDoc + "#\n"})
	s := mustOpen(t, Options{URL: r.url(), CacheDir: t.TempDir()})
	mustFetch(t, s)
	before := blobReads.Load()
	if _, changed := mustFetch(t, s); changed {
		t.Fatal("changed on a second poll")
	}
	if n := blobReads.Load() - before; n != 0 {
		t.Errorf("an unchanged poll read %d blobs, want 0 (its tree was verified before)", n)
	}
}

func TestFolderConfined(t *testing.T) {
	outside := t.TempDir()
	secret := "tok_SECRET_0123456789abcdefghijklmnopqrstuvwxyz"
	os.WriteFile(filepath.Join(outside, "token"), []byte(secret), 0o600)
	sparse := filepath.Join(outside, "sparse")
	f, _ := os.Create(sparse)
	f.Truncate(64 << 30)
	f.Close()

	cases := []struct {
		name  string
		setup func(dir string)
		is    error
		bound string
	}{
		{"link out of the folder", func(d string) { os.Symlink(filepath.Join(outside, "token"), filepath.Join(d, "t.yaml")) }, ErrConfined, ""},
		{"relative link out", func(d string) {
			rel, _ := filepath.Rel(d, filepath.Join(outside, "token"))
			os.Symlink(rel, filepath.Join(d, "t.yaml"))
		}, ErrConfined, ""},
		{"link to a sparse 64 GB file outside", func(d string) { os.Symlink(sparse, filepath.Join(d, "s.yaml")) }, ErrConfined, ""},
		{"sparse 64 GB file inside", func(d string) {
			f, _ := os.Create(filepath.Join(d, "s.yaml"))
			f.Truncate(64 << 30)
			f.Close()
		}, ErrLimit, BoundFileBytes},
		{"fifo", func(d string) { syscall.Mkfifo(filepath.Join(d, "p.yaml"), 0o644) }, ErrConfined, ""},
		{"revision bytes", func(d string) {
			for i := range 3 {
				os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d.yaml", i)), []byte(strings.Repeat("a", 6<<10)), 0o644)
			}
		}, ErrLimit, BoundRevisionBytes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "fp-01.yaml"), []byte(hostDoc), 0o644)
			c.setup(dir)
			s := mustOpen(t, Options{URL: dir, Limits: Limits{MaxRevisionBytes: 16 << 10}})
			done := make(chan error, 1)
			go func() { _, _, err := s.Fetch(ctxT(t)); done <- err }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Fetch blocked (a FIFO opened for reading?)")
			}
			if !errors.Is(err, c.is) {
				t.Fatalf("Fetch: %v, want %v", err, c.is)
			}
			if c.bound != "" {
				wantLimit(t, err, c.bound, "")
			}
			if strings.Contains(err.Error(), "tok_") || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("the error quotes the file: %v", err)
			}
		})
	}
	// Inside the folder a link is followed; a link to a folder is left out.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(hostDoc), 0o644)
	os.Symlink("a.yaml", filepath.Join(dir, "b.yaml"))
	os.Symlink(outside, filepath.Join(dir, "out"))
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not desired state"), 0o644)
	a, _ := mustFetch(t, mustOpen(t, Options{URL: dir}))
	got := files(t, a.FS)
	if len(got) != 2 || got["b.yaml"] != hostDoc {
		t.Errorf("files = %v", got)
	}
}

func TestReadFileConfined(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "token"), []byte("tok_SECRET"), 0o600)
	dir := t.TempDir()
	os.Symlink(filepath.Join(outside, "token"), filepath.Join(dir, "t.yaml"))
	syscall.Mkfifo(filepath.Join(dir, "p.yaml"), 0o644)
	for _, n := range []string{"t.yaml", "p.yaml"} {
		_, err := ReadFile(filepath.Join(dir, n), Limits{})
		if !errors.Is(err, ErrConfined) || strings.Contains(err.Error(), "tok_") || !strings.Contains(err.Error(), n) {
			t.Errorf("ReadFile %s: %v", n, err)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "nope.yaml"), Limits{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// hostileServer answers every POST to git-upload-pack as a v2 server
// that never stops: lines of ls-refs (or the bytes of one long line) until
// the client hangs up. It counts what it wrote.
func hostileServer(t *testing.T, line func(i int) string) (*httptest.Server, *atomic.Int64) {
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", uploadPackResult)
		bw := bufio.NewWriter(w)
		for i := 0; ; i++ {
			n, err := bw.WriteString(line(i))
			written.Add(int64(n))
			if err != nil || req.Context().Err() != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &written
}

// peakHeap samples the heap in use until stop is closed.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return out
}

func TestEndlessLsRefsRefusedAtTheBound(t *testing.T) {
	oid := strings.Repeat("a", 40)
	for _, c := range []struct {
		name  string
		line  func(int) string
		bound string
	}{
		{"endless lines", func(i int) string {
			s := fmt.Sprintf("%s refs/heads/b%d\n", oid, i)
			return fmt.Sprintf("%04x%s", len(s)+4, s)
		}, BoundRefLines},
		{"endless long lines", func(i int) string {
			s := oid + " refs/heads/" + strings.Repeat("x", 65000) + "\n"
			return fmt.Sprintf("%04x%s", len(s)+4, s)
		}, BoundRefBytes},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, written := hostileServer(t, c.line)
			s := mustOpen(t, Options{URL: srv.URL + "/repo.git", CacheDir: t.TempDir(), Timeout: 20 * time.Second})
			stop := make(chan struct{})
			peak := peakHeap(stop)
			start := time.Now()
			_, _, err := s.Fetch(ctxT(t))
			took := time.Since(start)
			close(stop)
			p := <-peak
			wantLimit(t, err, c.bound, "ls-refs")
			t.Logf("refused after %s: %v; the server wrote %d bytes before the client hung up; peak heap in use %.1f MiB", took.Round(time.Millisecond), err, written.Load(), float64(p)/(1<<20))
			if p > 64<<20 {
				t.Errorf("peak heap %.1f MiB, want under 64 MiB", float64(p)/(1<<20))
			}
			if took > 10*time.Second {
				t.Errorf("took %s: refused at the timeout, not at the bound", took)
			}
		})
	}
}

func TestEndlessV0AdvertisementRefused(t *testing.T) {
	// A server that is not v2 (a 404 to the POST) and whose v0 listing
	// never ends.
	oid := strings.Repeat("b", 40)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		bw := bufio.NewWriter(w)
		bw.WriteString("001e# service=git-upload-pack\n0000")
		first := oid + " HEAD\x00symref=HEAD:refs/heads/main\n"
		fmt.Fprintf(bw, "%04x%s", len(first)+4, first)
		for i := 0; req.Context().Err() == nil; i++ {
			s := fmt.Sprintf("%s refs/heads/b%d\n", oid, i)
			if _, err := fmt.Fprintf(bw, "%04x%s", len(s)+4, s); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	s := mustOpen(t, Options{URL: srv.URL + "/repo.git", CacheDir: t.TempDir(), Timeout: 20 * time.Second})
	start := time.Now()
	_, _, err := s.Fetch(ctxT(t))
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("Fetch: %v after %s", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "--"+BoundRefBytes) {
		t.Errorf("Fetch: %v, want the ref bytes bound named", err)
	}
	t.Logf("refused after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

func TestShallowLinesBound(t *testing.T) {
	oid := strings.Repeat("c", 40)
	var w pktWriter
	w.line("shallow-info")
	for range 10 {
		w.line("shallow " + oid)
	}
	w.delim()
	w.line("packfile")
	_, _, err := readFetchSections(newPktReader(bufio.NewReader(strings.NewReader(string(w.b)))), 5)
	wantLimit(t, err, BoundShallowLines, "shallow-info")
}

func TestCapReader(t *testing.T) {
	c := &capReader{r: strings.NewReader(strings.Repeat("x", 100)), limit: 10, bound: BoundPackBytes, what: "the pack"}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n > 11 || !errors.Is(err, ErrLimit) {
		t.Errorf("read %d, %v", n, err)
	}
	_ = plumbing.ZeroHash
}
