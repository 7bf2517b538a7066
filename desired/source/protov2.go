package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Git protocol v2 over smart HTTP, for the one request an unchanged poll
// costs. go-git speaks only v0/v1, where the ref lookup is the server's
// whole advertisement: every branch and tag, on every poll, however many
// the repository has (2,000 refs are about 120 kB). In v2 the client asks
// `ls-refs` with `ref-prefix` for just the names Options.Ref can mean, and
// the answer is a line or two.
//
// The request is a single POST to git-upload-pack with the header
// `Git-Protocol: version=2` (gitprotocol-v2(5), gitprotocol-http(5)); the
// capability advertisement (a GET of info/refs) is skipped, since the
// commands and arguments used here are in every v2 server (git 2.18 and
// later). When the ref moved, the shallow fetch is a second POST, `fetch`
// with `deepen 1`, so a changed poll is still two requests.
//
// Anything short of a clean v2 answer falls back to the v0/v1 path through
// go-git, which then gives the same results and the same error messages as
// before: a server that does not speak v2 (its answer is not v2; it is then
// not asked again for an hour), an HTTP error, a redirect, a ref that is not
// found (the v0 listing names the branches there are), a HEAD that is not a
// symbolic ref (v0 guesses its branch from the full listing), and a pinned
// commit (its first fetch needs the full listing; once cached it costs no
// request at all).

// errUseV0: the v2 answer cannot be used; take the v0/v1 path.
var errUseV0 = errors.New("git protocol v2 not usable")

// v2Retry is how long a server whose answer was not v2 is left alone.
const v2Retry = time.Hour

const uploadPackResult = "application/x-git-upload-pack-result"

// v2State remembers whether an http remote speaks v2.
type v2State struct {
	mu      sync.Mutex
	noUntil time.Time
}

func (s *v2State) usable(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !now.Before(s.noUntil)
}

func (s *v2State) refused(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noUntil = now.Add(v2Retry)
}

// v2HTTPClient does not follow redirects: a POST must not turn into a GET,
// and go-git's v0 path knows how to follow them.
var v2HTTPClient = &http.Client{
	Transport:     http.DefaultTransport,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// v2Names returns the full ref names that can answer ref, or nil when a v2
// lookup cannot (a pinned commit hash). "HEAD" asks for HEAD and its
// symbolic target.
func v2Names(ref string) []string {
	switch {
	case ref == "" || ref == "HEAD":
		return []string{"HEAD"}
	case IsCommitID(strings.ToLower(ref)):
		return nil
	case strings.HasPrefix(ref, "refs/"):
		return []string{ref}
	}
	// The candidates resolveRef considers, in its order.
	return []string{"refs/" + ref, "refs/tags/" + ref, "refs/heads/" + ref}
}

// lsRef is one line of an ls-refs answer.
type lsRef struct {
	name   string
	oid    plumbing.Hash
	symref string        // symref-target, for a symbolic ref
	peeled plumbing.Hash // peeled, for an annotated tag
}

// lsRefsRequest is the body of an ls-refs command for the given names.
func lsRefsRequest(names []string) []byte {
	var w pktWriter
	w.line("command=ls-refs")
	w.delim()
	w.line("peel")
	w.line("symrefs")
	for _, n := range names {
		w.line("ref-prefix " + n)
	}
	w.flush()
	return w.b
}

// parseLsRefs reads an ls-refs answer up to its flush packet:
// "<oid> <name>[ symref-target:<ref>][ peeled:<oid>]" per ref, and no more
// than maxLines of them (we ask for at most three names; a server that
// keeps sending is refused at the bound, not buffered until a flush).
func parseLsRefs(pr *pktReader, maxLines int) ([]lsRef, error) {
	var out []lsRef
	for {
		if len(out) >= maxLines {
			return nil, &LimitError{Bound: BoundRefLines, What: "the ls-refs answer", Size: int64(len(out)) + 1, Limit: int64(maxLines), Unit: "lines", AtLeast: true}
		}
		k, line, err := pr.lineInAnswer()
		if err != nil {
			return nil, err
		}
		switch k {
		case pktFlush:
			return out, nil
		case pktData:
		default:
			return nil, fmt.Errorf("ls-refs: unexpected special packet %d", k)
		}
		fields := strings.Split(line, " ")
		if len(fields) < 2 || fields[1] == "" {
			return nil, fmt.Errorf("ls-refs: malformed line %q", line)
		}
		r := lsRef{name: fields[1]}
		var ok bool
		if r.oid, ok = parseOID(fields[0]); !ok {
			return nil, fmt.Errorf("ls-refs: bad object id in %q", line)
		}
		for _, attr := range fields[2:] {
			switch {
			case strings.HasPrefix(attr, "symref-target:"):
				r.symref = strings.TrimPrefix(attr, "symref-target:")
				if r.symref == "" {
					return nil, fmt.Errorf("ls-refs: empty symref-target in %q", line)
				}
			case strings.HasPrefix(attr, "peeled:"):
				if r.peeled, ok = parseOID(strings.TrimPrefix(attr, "peeled:")); !ok {
					return nil, fmt.Errorf("ls-refs: bad peeled object id in %q", line)
				}
			}
			// Attributes we did not ask for are ignored, as the spec says.
		}
		out = append(out, r)
	}
}

// parseOID accepts a SHA-1 object id in lower-case hex, as git writes it.
func parseOID(s string) (plumbing.Hash, bool) {
	if !IsCommitID(s) {
		return plumbing.ZeroHash, false
	}
	return plumbing.NewHash(s), true
}

// v2RefList turns an ls-refs answer for names into the refList resolveRef
// reads. ok is false when the answer does not settle ref the way the full
// v0 listing would (not found, or a HEAD that is not symbolic): the caller
// then asks the v0 way.
func v2RefList(refs []lsRef, names []string, ref string) (rl refList, ok bool) {
	rl = refList{refs: map[string]plumbing.Hash{}, peeled: map[string]plumbing.Hash{}}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, r := range refs {
		if !want[r.name] {
			continue // a longer name that merely starts with a prefix
		}
		if r.name == "HEAD" {
			if r.symref == "" || !strings.HasPrefix(r.symref, "refs/") {
				return rl, false
			}
			rl.head, rl.headID = r.symref, r.oid
			rl.refs[r.symref] = r.oid
			continue
		}
		rl.refs[r.name] = r.oid
		if !r.peeled.IsZero() {
			rl.peeled[r.name] = r.peeled
		}
	}
	if _, err := resolveRef(rl, ref); err != nil {
		return rl, false
	}
	return rl, true
}

// postV2 sends one v2 command to git-upload-pack. An answer that is not a
// v2 result is errUseV0 (and, when the server answered but not in v2, the
// remote is marked as not speaking it); network errors are returned as
// they are.
func (r *netRemote) postV2(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := v2Request(ctx, r.loc.endpoint.String(), body)
	if err != nil {
		return nil, err
	}
	auth, err := httpAuth(r.loc, r.opts)
	if err != nil {
		return nil, err
	}
	if a, ok := auth.(githttp.AuthMethod); ok && a != nil {
		a.SetAuth(req)
	}
	resp, err := v2HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: HTTP %s", errUseV0, resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != uploadPackResult {
		resp.Body.Close()
		r.v2.refused(time.Now())
		return nil, fmt.Errorf("%w: answer of type %q", errUseV0, mt)
	}
	return resp, nil
}

// v2Request is a v2 command's POST to the repository at endpoint.
func v2Request(ctx context.Context, endpoint string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(endpoint, "/")+"/git-upload-pack", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", capability.DefaultAgent())
	req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
	req.Header.Set("Accept", uploadPackResult)
	req.Header.Set("Git-Protocol", "version=2")
	return req, nil
}

// PollRequest is the one request an agent's poll of an http(s) source makes
// when the ref did not move: ls-refs for the names ref can mean (without
// credentials, which Fetch adds). hack/bench's fleet simulation sends
// exactly this, so the git server's load it measures is the agents'.
func PollRequest(ctx context.Context, repoURL, ref string) (*http.Request, error) {
	return v2Request(ctx, repoURL, lsRefsRequest(v2Names(ref)))
}

// lookupV2 asks ls-refs for the names Options.Ref can mean.
func (r *netRemote) lookupV2(ctx context.Context, names []string) (session, error) {
	resp, err := r.postV2(ctx, lsRefsRequest(names))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body := &capReader{r: resp.Body, limit: r.opts.Limits.MaxRefBytes, bound: BoundRefBytes, what: "the ls-refs answer"}
	refs, err := parseLsRefs(newPktReader(bufio.NewReader(body)), r.opts.Limits.MaxRefLines)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, ErrLimit) {
			// A v2 server that does not stop: no fallback to v0, whose
			// full listing it would not stop either.
			return nil, err
		}
		var se *serverError
		if !errors.As(err, &se) {
			// Not a v2 answer: a v0 server's upload-pack chokes on
			// "command=ls-refs" and sends nothing.
			r.v2.refused(time.Now())
		}
		return nil, fmt.Errorf("%w: %w", errUseV0, err)
	}
	rl, ok := v2RefList(refs, names, r.opts.Ref)
	if !ok {
		return nil, fmt.Errorf("%w: the answer does not settle ref %q", errUseV0, r.opts.Ref)
	}
	return &v2Session{r: r, rl: rl}, nil
}

// v2Session is a ref lookup made with ls-refs. Its fetch is a v2 fetch
// command, or the v0 path for what v2 is not used for here.
type v2Session struct {
	r  *netRemote
	rl refList
}

func (s *v2Session) refs() refList { return s.rl }
func (s *v2Session) close()        {}

func (s *v2Session) fetch(ctx context.Context, dst *filesystem.Storage, req fetchReq) error {
	if len(req.wants) == 0 {
		return nil
	}
	if req.shallow && !req.unadvertised {
		err := s.r.fetchV2(ctx, dst, req)
		if !errors.Is(err, errUseV0) {
			return err
		}
	}
	v0, err := s.r.lookupV0(ctx)
	if err != nil {
		return err
	}
	defer v0.close()
	return v0.fetch(ctx, dst, req)
}

// fetchRequest is the body of a shallow v2 fetch: depth 1 (or req.depth), our shallow
// commits and the haves that let the server leave out unchanged blobs, and
// "done", so the answer is the pack without a negotiation round.
func fetchRequest(dst *filesystem.Storage, req fetchReq) []byte {
	var w pktWriter
	w.line("command=fetch")
	w.delim()
	w.line("no-progress")
	w.line("ofs-delta")
	for _, h := range req.wants {
		w.line("want " + h.String())
	}
	w.line(fmt.Sprintf("deepen %d", max(req.depth, 1)))
	for _, h := range existing(dst, shallowList(dst)) {
		w.line("shallow " + h.String())
	}
	for _, h := range existing(dst, req.haves) {
		w.line("have " + h.String())
	}
	w.line("done")
	w.flush()
	return w.b
}

// fetchV2 sends a v2 fetch and stores the pack. Until the pack starts, any
// surprise is errUseV0: nothing has been written yet, and the v0 path can
// try.
func (r *netRemote) fetchV2(ctx context.Context, dst *filesystem.Storage, req fetchReq) error {
	resp, err := r.postV2(ctx, fetchRequest(dst, req))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	br := bufio.NewReader(&capReader{r: resp.Body, limit: r.opts.Limits.MaxPackBytes, bound: BoundPackBytes, what: "the fetch answer (pack included)"})
	pr := newPktReader(br)
	shallow, unshallow, err := readFetchSections(pr, r.opts.Limits.MaxShallowLines)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrLimit) {
			return err
		}
		return fmt.Errorf("%w: fetch: %w", errUseV0, err)
	}
	// Recorded before the pack: a shallow mark for a commit we end up not
	// having is harmless, a commit without its mark is not.
	if err := updateShallow(dst, shallow, unshallow); err != nil {
		return fmt.Errorf("record shallow commits: %w", err)
	}
	if err := storePack(dst, sideband.NewDemuxer(sideband.Sideband64k, br), r.opts.Limits); err != nil {
		if errors.Is(err, ErrLimit) {
			return err
		}
		return fmt.Errorf("store pack: %w", err)
	}
	return nil
}

// readFetchSections reads a v2 fetch answer up to the start of its
// packfile section: the shallow-info section's lines, and other sections
// skipped. The pack's sideband stream follows in the reader.
func readFetchSections(pr *pktReader, maxShallow int) (shallow, unshallow []plumbing.Hash, err error) {
	for {
		k, name, err := pr.lineInAnswer()
		if err != nil {
			return nil, nil, err
		}
		if k != pktData {
			return nil, nil, fmt.Errorf("expected a section header, got special packet %d", k)
		}
		if name == "packfile" {
			return shallow, unshallow, nil
		}
		switch name {
		case "shallow-info", "acknowledgments", "wanted-refs", "packfile-uris":
		default:
			return nil, nil, fmt.Errorf("unknown section %q", name)
		}
		for {
			k, line, err := pr.lineInAnswer()
			if err != nil {
				return nil, nil, err
			}
			if k == pktDelim {
				break
			}
			if k != pktData {
				// A section that ends the answer (acknowledgments without
				// "ready") leaves no pack: not what we asked for.
				return nil, nil, fmt.Errorf("section %s: answer ended without a pack", name)
			}
			if name != "shallow-info" {
				continue
			}
			if len(shallow)+len(unshallow) >= maxShallow {
				return nil, nil, &LimitError{Bound: BoundShallowLines, What: "the shallow-info section", Size: int64(maxShallow) + 1, Limit: int64(maxShallow), Unit: "lines", AtLeast: true}
			}
			verb, id, _ := strings.Cut(line, " ")
			h, ok := parseOID(id)
			switch {
			case !ok:
				return nil, nil, fmt.Errorf("shallow-info: malformed line %q", line)
			case verb == "shallow":
				shallow = append(shallow, h)
			case verb == "unshallow":
				unshallow = append(unshallow, h)
			default:
				return nil, nil, fmt.Errorf("shallow-info: malformed line %q", line)
			}
		}
	}
}
