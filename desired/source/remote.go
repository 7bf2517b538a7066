package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/filesystem"
	xssh "golang.org/x/crypto/ssh"
)

// remote is where commits come from. A lookup is the one request an
// unchanged poll costs; the session it opens can then fetch what it listed
// without listing again.
type remote interface {
	lookup(ctx context.Context) (session, error)
}

type session interface {
	refs() refList
	// fetch stores the wanted objects, and whatever they need, in dst.
	fetch(ctx context.Context, dst *filesystem.Storage, req fetchReq) error
	close()
}

type fetchReq struct {
	wants []plumbing.Hash
	// shallow asks for depth 1: the wanted commits and their trees only.
	shallow bool
	// depth, with shallow, asks for that many commits of history instead
	// of 1 (history.go deepens this way); 0 means 1.
	depth int
	// haves are commits dst holds with their whole trees, so the server
	// can leave out blobs that did not change. Only sent with shallow.
	haves []plumbing.Hash
	// unadvertised: the want is a bare commit hash no ref points to.
	unadvertised bool
	// check, when set, judges the wanted commit before its tree is read,
	// where the transport lets us (file://); network fetches leave it to
	// the artifact, built after the pack is stored.
	check func(Commit) error
}

// errBareHashRefused: the server will not (or may not) hand out a commit
// by hash alone; the caller falls back to fetching every branch and tag.
var errBareHashRefused = errors.New("the server does not serve a commit by hash alone")

func newRemote(loc location, o Options) (remote, error) {
	switch loc.kind {
	case kindHTTP:
		return &netRemote{loc: loc, opts: o, client: githttp.NewClient(&http.Client{Transport: &capTransport{lim: o.Limits}})}, nil
	case kindSSH:
		return &netRemote{loc: loc, opts: o, client: gitssh.DefaultClient}, nil
	case kindFile:
		return &localRemote{path: loc.path, sub: o.Path, lim: o.Limits}, nil
	}
	return nil, fmt.Errorf("no git transport for a %s source", loc.kind)
}

// netRemote speaks the git protocol (v0/v1, all go-git has) over http or
// ssh through go-git's transports, one level below git.Remote so that the
// ref lookup and the fetch share one advertisement. Over http it asks in
// protocol v2 first (protov2.go), for a lookup that lists only the ref
// wanted.
type netRemote struct {
	loc    location
	opts   Options
	client transport.Transport
	v2     v2State // http: whether the server answered in v2
}

func (r *netRemote) auth() (transport.AuthMethod, error) {
	if r.loc.kind == kindSSH {
		ep := r.loc.endpoint
		user := ep.User
		if user == "" {
			user = "git"
		}
		port := ep.Port
		if port == 0 {
			port = 22
		}
		host := strings.TrimSuffix(strings.TrimPrefix(ep.Host, "["), "]")
		return &sshAuth{
			user:           user,
			hostPort:       net.JoinHostPort(host, strconv.Itoa(port)),
			keyFile:        r.opts.SSHKeyFile,
			knownHostsFile: r.opts.KnownHostsFile,
			timeout:        r.opts.Timeout,
		}, nil
	}
	return httpAuth(r.loc, r.opts)
}

func (r *netRemote) lookup(ctx context.Context) (session, error) {
	if r.loc.kind == kindHTTP && r.v2.usable(time.Now()) {
		if names := v2Names(r.opts.Ref); names != nil {
			s, err := r.lookupV2(ctx, names)
			if !errors.Is(err, errUseV0) {
				return s, err
			}
		}
	}
	return r.lookupV0(ctx)
}

// lookupV0 is the v0/v1 ref lookup: the server's whole advertisement.
func (r *netRemote) lookupV0(ctx context.Context) (session, error) {
	auth, err := r.auth()
	if err != nil {
		return nil, err
	}
	ep := *r.loc.endpoint
	s, err := openSession(ctx, r.client, &ep, auth)
	if err != nil {
		return nil, hostKeyHint(err)
	}
	ar, err := s.AdvertisedReferencesContext(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &netSession{s: s, ar: ar, rl: advertised(ar), stateless: r.loc.kind == kindHTTP, lim: r.opts.Limits}, nil
}

// openSession bounds what go-git does without a context: for ssh, creating
// the session dials and handshakes.
func openSession(ctx context.Context, c transport.Transport, ep *transport.Endpoint, auth transport.AuthMethod) (transport.UploadPackSession, error) {
	type result struct {
		s   transport.UploadPackSession
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := c.NewUploadPackSession(ep, auth)
		done <- result{s, err}
	}()
	select {
	case res := <-done:
		return res.s, res.err
	case <-ctx.Done():
		go func() {
			if res := <-done; res.s != nil {
				res.s.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// hostKeyHint names a host key failure that x/crypto reports only as an
// algorithm mismatch (its typed *ssh.AlgorithmNegotiationError, for the
// host key): the server has no key of a type known_hosts lists.
func hostKeyHint(err error) error {
	var neg *xssh.AlgorithmNegotiationError
	if err != nil && !errors.Is(err, ErrHostKey) && errors.As(err, &neg) && neg.What == "host key" {
		return fmt.Errorf("%w: the server offers no host key of a type the known_hosts file holds for it: %w", ErrHostKey, err)
	}
	return err
}

func advertised(ar *packp.AdvRefs) refList {
	rl := refList{refs: map[string]plumbing.Hash{}, peeled: map[string]plumbing.Hash{}}
	for name, h := range ar.References {
		if name != "HEAD" {
			rl.refs[name] = h
		}
	}
	for name, h := range ar.Peeled {
		rl.peeled[name] = h
	}
	if ar.Head != nil {
		rl.headID = *ar.Head
	}
	for _, v := range ar.Capabilities.Get(capability.SymRef) {
		if from, to, ok := strings.Cut(v, ":"); ok && from == "HEAD" {
			rl.head = to
		}
	}
	return rl
}

type netSession struct {
	s         transport.UploadPackSession
	ar        *packp.AdvRefs
	rl        refList
	stateless bool
	lim       Limits
}

func (s *netSession) refs() refList { return s.rl }
func (s *netSession) close()        { s.s.Close() }

func (s *netSession) fetch(ctx context.Context, dst *filesystem.Storage, req fetchReq) error {
	if len(req.wants) == 0 {
		return nil
	}
	caps := s.ar.Capabilities
	if req.unadvertised && !s.stateless &&
		!caps.Supports(capability.AllowReachableSHA1InWant) && !caps.Supports(capability.AllowTipSHA1InWant) {
		// Over ssh, upload-pack refuses unadvertised wants unless told to
		// allow them; asking anyway would only waste the connection.
		return errBareHashRefused
	}
	up := packp.NewUploadPackRequestFromCapabilities(caps)
	up.Wants = req.wants
	if caps.Supports(capability.NoProgress) {
		_ = up.Capabilities.Set(capability.NoProgress)
	}
	// A server without the shallow capability (rare: dumb or very old
	// servers) gets a plain fetch of the one ref, history included.
	if req.shallow && caps.Supports(capability.Shallow) {
		_ = up.Capabilities.Set(capability.Shallow)
		up.Depth = packp.DepthCommits(max(req.depth, 1))
		// Our shallow commits go along with the haves, or the server would
		// assume we hold their history and leave out objects we lack.
		up.Shallows = existing(dst, shallowList(dst))
		up.Haves = existing(dst, req.haves)
	}
	resp, err := s.s.UploadPack(ctx, up)
	if err != nil {
		if req.unadvertised && ctx.Err() == nil {
			return fmt.Errorf("%w: %w", errBareHashRefused, err)
		}
		return err
	}
	defer resp.Close()
	if !up.Depth.IsZero() {
		// Recorded before the pack: a shallow mark for a commit we end up
		// not having is harmless, a commit without its mark is not.
		if err := updateShallow(dst, resp.Shallows, resp.Unshallows); err != nil {
			return fmt.Errorf("record shallow commits: %w", err)
		}
	}
	var r io.Reader = &capReader{r: resp, limit: s.lim.MaxPackBytes, bound: BoundPackBytes, what: "the pack"}
	switch {
	case up.Capabilities.Supports(capability.Sideband64k):
		r = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case up.Capabilities.Supports(capability.Sideband):
		r = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	if err := storePack(dst, r, s.lim); err != nil {
		if req.unadvertised && ctx.Err() == nil {
			return fmt.Errorf("%w: %w", errBareHashRefused, err)
		}
		if errors.Is(err, ErrLimit) {
			return err
		}
		return fmt.Errorf("store pack: %w", err)
	}
	return nil
}

// capTransport bounds every HTTP answer go-git reads: the v0/v1 ref
// advertisement (GET info/refs) by MaxRefBytes, an upload-pack answer by
// MaxPackBytes, so a server that never stops sending is cut off at the
// bound rather than at the timeout.
type capTransport struct{ lim Limits }

func (t *capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	limit, bound, what := t.lim.MaxPackBytes, BoundPackBytes, "the upload-pack answer"
	if strings.HasSuffix(req.URL.Path, "/info/refs") {
		limit, bound, what = t.lim.MaxRefBytes, BoundRefBytes, "the ref advertisement"
	}
	resp.Body = &capReadCloser{capReader{r: resp.Body, limit: limit, bound: bound, what: what}, resp.Body}
	return resp, nil
}

type capReadCloser struct {
	capReader
	c io.Closer
}

func (c *capReadCloser) Close() error { return c.c.Close() }

func shallowList(dst *filesystem.Storage) []plumbing.Hash {
	l, err := dst.Shallow()
	if err != nil {
		return nil
	}
	return l
}

// existing keeps the hashes dst really holds: a damaged shallow file must
// not turn into lines the server chokes on.
func existing(dst *filesystem.Storage, hs []plumbing.Hash) []plumbing.Hash {
	var out []plumbing.Hash
	for _, h := range hs {
		if !h.IsZero() && dst.HasEncodedObject(h) == nil {
			out = append(out, h)
		}
	}
	return out
}

func updateShallow(dst *filesystem.Storage, add, remove []plumbing.Hash) error {
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	cur := shallowList(dst)
	set := map[plumbing.Hash]bool{}
	var out []plumbing.Hash
	drop := map[plumbing.Hash]bool{}
	for _, h := range remove {
		drop[h] = true
	}
	for _, h := range append(cur, add...) {
		if !h.IsZero() && !set[h] && !drop[h] {
			set[h] = true
			out = append(out, h)
		}
	}
	return dst.SetShallow(out)
}

// localRemote reads a repository on this machine with go-git itself, so a
// file:// source needs no git binary. go-git's in-process server cannot
// serve a depth, so the "shallow fetch" is done here by copying exactly one
// commit, its tree and blobs into the cache as one pack.
type localRemote struct {
	path string
	sub  string
	lim  Limits
}

func (r *localRemote) lookup(ctx context.Context) (session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	repo, err := git.PlainOpenWithOptions(r.path, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		if errors.Is(err, git.ErrRepositoryNotExists) {
			return nil, fmt.Errorf("%s is not a git repository", r.path)
		}
		return nil, err
	}
	sto := repo.Storer
	rl := refList{refs: map[string]plumbing.Hash{}, peeled: map[string]plumbing.Hash{}}
	if head, err := sto.Reference(plumbing.HEAD); err == nil {
		if head.Type() == plumbing.SymbolicReference {
			rl.head = head.Target().String()
		} else {
			rl.headID = head.Hash()
		}
	}
	iter, err := sto.IterReferences()
	if err != nil {
		return nil, err
	}
	err = iter.ForEach(func(ref *plumbing.Reference) error {
		name := ref.Name().String()
		if name == "HEAD" {
			return nil
		}
		if ref.Type() == plumbing.SymbolicReference {
			res, err := storer.ResolveReference(sto, ref.Name())
			if err != nil {
				return nil // a dangling symref is not our business
			}
			ref = res
		}
		rl.refs[name] = ref.Hash()
		if c, ok := peelLocal(sto, ref.Hash()); ok {
			rl.peeled[name] = c
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &localSession{src: sto, rl: rl, sub: r.sub, lim: r.lim}, nil
}

// peelLocal follows annotated tags to the commit they name.
func peelLocal(sto storer.EncodedObjectStorer, h plumbing.Hash) (plumbing.Hash, bool) {
	peeled := false
	for i := 0; i < 10; i++ {
		tag, err := object.GetTag(sto, h)
		if err != nil {
			return h, peeled
		}
		h, peeled = tag.Target, true
	}
	return h, peeled
}

type localSession struct {
	src storer.Storer
	rl  refList
	sub string
	lim Limits
}

func (s *localSession) refs() refList { return s.rl }
func (s *localSession) close()        {}

func (s *localSession) fetch(ctx context.Context, dst *filesystem.Storage, req fetchReq) error {
	depth := req.depth
	if !req.shallow || depth < 1 {
		depth = 1 // the commit itself: a file:// source never needs more
	}
	return copyHistory(ctx, s.src, dst, req.wants, depth, copyOpts{sub: s.sub, lim: s.lim, check: req.check})
}
