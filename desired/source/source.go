package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Revision identifies what was fetched.
type Revision struct {
	ID      string    // full commit hash; for a plain local folder "local:" + first 12 hex of a sha256 over the files' paths and contents
	Ref     string    // the ref it was resolved from, e.g. "refs/heads/main" (empty for a folder)
	Author  string    // "Name <email>" (empty for a folder)
	Message string    // first line of the commit message
	Time    time.Time // commit time (for a folder: the newest file modification)
}

// Short is a revision id as logs, messages and pages print it: its first
// 12 characters (a commit's abbreviation, or "local:" and 6 hex digits).
func Short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Artifact is one fetched revision: an immutable read-only tree.
type Artifact struct {
	Revision Revision
	// FS is the tree at that revision, already narrowed to Options.Path;
	// reading it does no network I/O. It implements fs.ReadDirFS,
	// fs.StatFS and fs.ReadFileFS and is safe for concurrent use.
	FS fs.FS
}

// Options says where the desired state lives and how to reach it.
type Options struct {
	URL  string // https://, http://, ssh://, git@host:path, file://, or a local directory
	Ref  string // branch, tag or full commit hash; default: the remote's HEAD branch
	Path string // folder inside the repo; default: root

	// CacheDir survives restarts; default under os.UserCacheDir or
	// /var/cache/reconciler. One agent process per CacheDir.
	CacheDir string

	// https: a token file (sent as basic auth password, user "git"); or a
	// "user:password" file. Read on every network call, so they can rotate.
	TokenFile, BasicAuthFile string

	// ssh: private key file (unencrypted); known_hosts file (required for
	// ssh; never trust on first use).
	SSHKeyFile, KnownHostsFile string

	Timeout time.Duration // per network operation, default 30s

	// Limits bound what a revision and a server's answers may cost; zero
	// fields take DefaultLimits.
	Limits Limits

	// CommitCheck, when set, judges a commit from its object alone (the
	// signature check) before any of its tree is walked or any blob read.
	// An error refuses the commit: Fetch returns it wrapped, having read
	// nothing of the tree (a *trust.Refusal stays one through errors.As).
	CommitCheck func(Commit) error
}

// DefaultTimeout bounds each network operation when Options.Timeout is 0.
const DefaultTimeout = 30 * time.Second

// Source hands out the desired-state files of one URL, ref and path.
type Source interface {
	// Fetch resolves the ref with ONE ref lookup (ls-remote style). If the
	// commit equals the last one fetched (kept in CacheDir across restarts),
	// it returns that artifact with changed=false and does nothing else;
	// otherwise it fetches shallow (depth 1, only that ref) and returns
	// changed=true.
	Fetch(ctx context.Context) (a Artifact, changed bool, err error)
	// Last returns the last successfully fetched artifact from the cache
	// with no network I/O, so an agent whose git server is unreachable (or
	// restarted without network) still has it.
	Last(ctx context.Context) (Artifact, error)
	// String is the URL with any credentials removed, for logs.
	String() string
}

var (
	// ErrNoRevision: Last found nothing fetched (or nothing usable) in the cache.
	ErrNoRevision = errors.New("no fetched revision in the cache")
	// ErrHostKey: an ssh server's host key is unknown to, or differs from,
	// the known_hosts file.
	ErrHostKey = errors.New("ssh host key not trusted")
)

// Open checks opts and returns the Source they describe. It does no network
// I/O; a bad URL, a missing credential file or ssh without known_hosts is
// an error here rather than at the first Fetch.
func Open(opts Options) (Source, error) {
	loc, err := parseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("source %s: negative timeout %s", loc.redacted, opts.Timeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Limits, err = opts.Limits.withDefaults(); err != nil {
		return nil, fmt.Errorf("source %s: %w", loc.redacted, err)
	}
	sub, err := cleanPath(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", loc.redacted, err)
	}
	opts.Path = sub
	if err := checkRef(opts.Ref); err != nil {
		return nil, fmt.Errorf("source %s: %w", loc.redacted, err)
	}
	if err := checkCredentials(loc, opts); err != nil {
		return nil, fmt.Errorf("source %s: %w", loc.redacted, err)
	}

	if loc.kind == kindDir {
		if opts.Ref != "" {
			return nil, fmt.Errorf("source %s: a plain folder has no refs (Ref %q); use file:// for a git repository", loc.redacted, opts.Ref)
		}
		st, err := os.Stat(loc.path)
		if err != nil {
			return nil, fmt.Errorf("source folder %s: %w", loc.redacted, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("source folder %s is not a folder", loc.redacted)
		}
		return &dirSource{root: loc.path, sub: sub, lim: opts.Limits}, nil
	}

	if opts.CacheDir == "" {
		opts.CacheDir = defaultCacheDir()
	}
	dir := filepath.Join(opts.CacheDir, "git", cacheKey(loc.redacted, opts.Ref))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("source %s: cache: %w", loc.redacted, err)
	}
	rem, err := newRemote(loc, opts)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", loc.redacted, err)
	}
	return &gitSource{opts: opts, loc: loc, cache: cacheDir{dir: dir}, remote: rem}, nil
}

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "reconciler")
	}
	return "/var/cache/reconciler"
}

// cleanPath turns Options.Path into an fs.FS path ("." for the root) and
// refuses anything that could point outside the repository.
func cleanPath(p string) (string, error) {
	p = strings.TrimSpace(p)
	if p == "" {
		return ".", nil
	}
	if strings.Contains(p, "\\") {
		return "", fmt.Errorf("path %q: use / to separate folders", p)
	}
	if path.IsAbs(p) {
		return "", fmt.Errorf("path %q must be relative to the repository root", p)
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") || !fs.ValidPath(c) {
		return "", fmt.Errorf("path %q leaves the repository", p)
	}
	return c, nil
}

// checkRef applies the parts of git check-ref-format that matter for a name
// we only ever look up, so a typo fails at Open and not as "not found".
func checkRef(ref string) error {
	if ref == "" {
		return nil
	}
	bad := strings.ContainsAny(ref, " ~^:?*[\\") ||
		strings.Contains(ref, "..") || strings.Contains(ref, "@{") || strings.Contains(ref, "//") ||
		strings.HasPrefix(ref, "-") || strings.HasPrefix(ref, "/") ||
		strings.HasSuffix(ref, "/") || strings.HasSuffix(ref, ".") || strings.HasSuffix(ref, ".lock")
	for _, r := range ref {
		if r < 0x20 || r == 0x7f {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("ref %q is not a valid git ref name", ref)
	}
	return nil
}

func checkCredentials(loc location, o Options) error {
	if o.TokenFile != "" && o.BasicAuthFile != "" {
		return errors.New("set TokenFile or BasicAuthFile, not both")
	}
	if (o.TokenFile != "" || o.BasicAuthFile != "") && loc.kind != kindHTTP {
		return errors.New("TokenFile and BasicAuthFile apply to https:// and http:// sources only")
	}
	if (o.SSHKeyFile != "" || o.KnownHostsFile != "") && loc.kind != kindSSH {
		return errors.New("SSHKeyFile and KnownHostsFile apply to ssh sources only")
	}
	if loc.kind == kindHTTP {
		if o.TokenFile != "" {
			if _, err := readSecret(o.TokenFile); err != nil {
				return fmt.Errorf("TokenFile: %w", err)
			}
		}
		if o.BasicAuthFile != "" {
			if _, _, err := readBasicAuth(o.BasicAuthFile); err != nil {
				return fmt.Errorf("BasicAuthFile: %w", err)
			}
		}
	}
	if loc.kind == kindSSH {
		if o.KnownHostsFile == "" {
			return errors.New("ssh needs KnownHostsFile: host keys are never trusted on first use")
		}
		if o.SSHKeyFile == "" {
			return errors.New("ssh needs SSHKeyFile")
		}
		if _, err := hostKeyCallback(o.KnownHostsFile); err != nil {
			return err
		}
		if _, err := readSigner(o.SSHKeyFile); err != nil {
			return err
		}
	}
	return nil
}
