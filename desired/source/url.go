package source

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// kind is how a source is reached, which decides the transport, the
// credentials that apply and whether there is a commit at all.
type kind int

const (
	kindHTTP kind = iota + 1 // http:// and https://
	kindSSH                  // ssh:// and scp-like user@host:path
	kindFile                 // file://, a git repository on this machine
	kindDir                  // a plain folder: no git, a content hash
)

func (k kind) String() string {
	switch k {
	case kindHTTP:
		return "http"
	case kindSSH:
		return "ssh"
	case kindFile:
		return "file"
	case kindDir:
		return "dir"
	}
	return "unknown"
}

// location is a parsed Options.URL.
type location struct {
	kind kind
	// redacted is the URL without credentials: what logs, errors and the
	// cache key see.
	redacted string
	// endpoint is what go-git dials; for http it carries no credentials,
	// they travel as basic auth instead so they never reach an error text.
	endpoint *transport.Endpoint
	// user and password come from an http URL's userinfo.
	user, password string
	// path is the folder of a file:// repository or a plain folder.
	path string
}

// parseURL classifies and checks a source URL the way git does: a scheme
// URL, else scp-like "[user@]host:path" when a colon comes before any
// slash, else a local path.
func parseURL(raw string) (location, error) {
	s := raw
	if strings.TrimSpace(s) == "" {
		return location{}, errors.New("source URL is empty")
	}
	colon := strings.IndexByte(s, ':')
	slash := strings.IndexByte(s, '/')
	scpLike := colon >= 0 && (slash < 0 || colon < slash)
	if s != strings.TrimSpace(s) && (scpLike || strings.Contains(s, "://")) {
		// Not trimmed: that would be a guess. A folder is taken literally,
		// as its name may really end in a space.
		return location{}, fmt.Errorf("source URL %q has leading or trailing white space", redactLoose(strings.TrimSpace(s)))
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return location{}, fmt.Errorf("source URL %q contains a control character", redactLoose(s))
		}
	}
	if i := strings.Index(s, "://"); i >= 0 {
		scheme := strings.ToLower(s[:i])
		switch scheme {
		case "http", "https":
			return parseHTTP(s)
		case "ssh", "git+ssh", "ssh+git":
			return parseSSHURL(s)
		case "file":
			return parseFileURL(s)
		}
		return location{}, fmt.Errorf("source URL %q: scheme %q is not supported (use https://, http://, ssh://, git@host:path, file:// or a local folder)",
			redactLoose(s), scheme)
	}
	if scpLike {
		return parseSCP(s)
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return location{}, fmt.Errorf("source folder %q: %w", s, err)
	}
	return location{kind: kindDir, redacted: abs, path: abs}, nil
}

func parseHTTP(s string) (location, error) {
	u, err := url.Parse(s)
	if err != nil {
		return location{}, fmt.Errorf("source URL %q: %w", redactLoose(s), errors.Unwrap(err))
	}
	scheme := strings.ToLower(u.Scheme)
	var user, pass string
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	u.User = nil
	loc, err := remoteLocation(u, kindHTTP, scheme, transport.Endpoint{Host: endpointHost(u.Hostname()), Path: u.EscapedPath()})
	if err != nil {
		return location{}, err
	}
	loc.user, loc.password = user, pass
	return loc, nil
}

func parseSSHURL(s string) (location, error) {
	u, err := url.Parse(s)
	if err != nil {
		return location{}, fmt.Errorf("source URL %q: %w", redactLoose(s), errors.Unwrap(err))
	}
	var user string
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.User(u.User.Username())
			return location{}, fmt.Errorf("source URL %q: ssh passwords are not supported; use SSHKeyFile", u.String())
		}
		user = u.User.Username()
	}
	return remoteLocation(u, kindSSH, "ssh", transport.Endpoint{User: user, Host: u.Hostname(), Path: u.Path})
}

// remoteLocation is the location of the remote at u (credentials already
// taken out of it) as scheme: what http and ssh URLs check and redact the
// same way is done here once. ep holds what differs between them; its
// protocol and port are filled in.
func remoteLocation(u *url.URL, k kind, scheme string, ep transport.Endpoint) (location, error) {
	u.Scheme = scheme
	red := u.String()
	port, err := urlPort(u, red)
	if err != nil {
		return location{}, err
	}
	ep.Protocol, ep.Port = scheme, port
	return location{kind: k, redacted: red, endpoint: &ep}, nil
}

// checkURLParts rejects what a git remote URL cannot mean.
func checkURLParts(u *url.URL, red string) error {
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("source URL %q has no host", red)
	}
	if u.Path == "" || u.Path == "/" {
		return fmt.Errorf("source URL %q has no repository path", red)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return fmt.Errorf("source URL %q: a query or fragment is not allowed", red)
	}
	return nil
}

// urlPort checks the URL's parts (checkURLParts) and returns its port, 0
// when it names none.
func urlPort(u *url.URL, red string) (int, error) {
	if err := checkURLParts(u, red); err != nil {
		return 0, err
	}
	p := u.Port()
	if p == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("source URL %q: port %q is out of range", red, p)
	}
	return n, nil
}

// endpointHost puts an IPv6 literal back in brackets for go-git's http
// transport, which writes host and port into a URL as they are.
func endpointHost(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// parseSCP reads "[user@]host:path". The path stays as written: a relative
// path is relative to the remote user's home, as with git and scp, so it is
// not rewritten into an ssh:// URL (which would make it absolute).
func parseSCP(s string) (location, error) {
	userHost, p, _ := strings.Cut(s, ":")
	if before, after, ok := strings.Cut(p, "@"); ok && !strings.ContainsAny(before, "/:") && strings.Contains(after, ":") && !strings.HasPrefix(userHost, "[") {
		// "user:secret@host:path" would otherwise read as host "user"; it is
		// not echoed because the part after the colon may be a password.
		return location{}, errors.New("source URL looks like user:password@host:path; ssh passwords are not supported, use SSHKeyFile")
	}
	var user, host string
	if strings.HasPrefix(userHost, "[") || strings.Contains(userHost, "@[") {
		// [::1]:path or user@[::1]:path: the cut above split inside the brackets.
		end := strings.Index(s, "]:")
		if end < 0 {
			return location{}, fmt.Errorf("source URL %q: unterminated [host]", s)
		}
		userHost, p = s[:end+1], s[end+2:]
	}
	if at := strings.LastIndexByte(userHost, '@'); at >= 0 {
		user, host = userHost[:at], userHost[at+1:]
		if user == "" {
			return location{}, fmt.Errorf("source URL %q has an empty user", s)
		}
	} else {
		host = userHost
	}
	bare := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if bare == "" {
		return location{}, fmt.Errorf("source URL %q has no host", s)
	}
	if strings.ContainsAny(bare, " /@[]") || (strings.Contains(bare, ":") && net.ParseIP(bare) == nil) {
		return location{}, fmt.Errorf("source URL %q: host %q is not valid", s, host)
	}
	if p == "" || p == "/" {
		return location{}, fmt.Errorf("source URL %q has no repository path", s)
	}
	return location{
		kind:     kindSSH,
		redacted: s,
		endpoint: &transport.Endpoint{
			Protocol: "ssh",
			User:     user,
			Host:     bare, // the ssh transport brackets it when joining the port
			Path:     p,
		},
	}, nil
}

func parseFileURL(s string) (location, error) {
	u, err := url.Parse(s)
	if err != nil {
		return location{}, fmt.Errorf("source URL %q: %w", s, errors.Unwrap(err))
	}
	if u.User != nil {
		return location{}, fmt.Errorf("source URL %q: a file:// URL has no user", redactLoose(s))
	}
	if h := u.Host; h != "" && h != "localhost" {
		return location{}, fmt.Errorf("source URL %q: file:// names host %q; only this machine's files can be read", s, h)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return location{}, fmt.Errorf("source URL %q: a query or fragment is not allowed", s)
	}
	p := path.Clean(u.Path)
	if u.Path == "" || !path.IsAbs(p) {
		return location{}, fmt.Errorf("source URL %q: a file:// URL needs an absolute path", s)
	}
	return location{kind: kindFile, redacted: "file://" + p, path: filepath.FromSlash(p)}, nil
}

// redactLoose removes what looks like userinfo from a string that did not
// parse as a URL, so even a rejected URL never puts a password in an error.
func redactLoose(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
		return s[:i+3] + rest[at+1:]
	}
	return s
}

// cacheKey names the cache folder of one URL and ref. Credentials are left
// out so that rotating a token keeps the cache; Path is left out because one
// fetched commit serves every folder of the repository.
func cacheKey(redactedURL, ref string) string {
	sum := sha256.Sum256([]byte(redactedURL + "\x00" + ref))
	return hex.EncodeToString(sum[:])
}
