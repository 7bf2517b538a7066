package trust

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// AllowedSigner is one line of an allowed signers file, the format of git's
// gpg.ssh.allowedSignersFile (ssh-keygen(1), "ALLOWED SIGNERS"):
//
//	principals [options] keytype base64-key [comment]
//
// principals is a comma-separated list of patterns (quoted if it holds
// spaces); options are namespaces="git,...", valid-after="YYYYMMDD[HHMM[SS]][Z]"
// and valid-before="..."; cert-authority is refused (certificates are not
// supported). Lines starting with # and empty lines are skipped.
type AllowedSigner struct {
	Line        int
	Principals  string
	Namespaces  string    // pattern list; "" allows any namespace
	ValidAfter  time.Time // zero: no bound
	ValidBefore time.Time // zero: no bound
	Key         ssh.PublicKey
}

// maxAllowedSignersLine bounds one line (keys are a few hundred bytes; an
// RSA 16384-bit key about 3 KiB).
const maxAllowedSignersLine = 64 << 10

// ParseAllowedSigners reads an allowed signers file. Any line it cannot
// read is an error naming the line: a file that means something else than
// the operator thinks must not silently trust less, or more.
func ParseAllowedSigners(data []byte) ([]AllowedSigner, error) {
	var out []AllowedSigner
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxAllowedSignersLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseAllowedSignerLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		s.Line = n
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("line %d: %w", n+1, err))
	}
	return out, errors.Join(errs...)
}

func parseAllowedSignerLine(line string) (AllowedSigner, error) {
	var s AllowedSigner
	principals, rest, err := firstField(line)
	if err != nil {
		return s, err
	}
	if principals == "" || rest == "" {
		return s, errors.New("want principals, options (optional) and a public key")
	}
	s.Principals = principals
	key, _, opts, tail, err := ssh.ParseAuthorizedKey([]byte(rest))
	if err != nil {
		return s, fmt.Errorf("no valid public key: %w", err)
	}
	if len(bytes.TrimSpace(tail)) > 0 {
		return s, errors.New("more than one key on the line")
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return s, errors.New("a certificate is not a signer key")
	}
	s.Key = key
	seen := map[string]bool{}
	for _, o := range opts {
		name, value, hasValue := strings.Cut(o, "=")
		name = strings.ToLower(name)
		if seen[name] {
			return s, fmt.Errorf("option %s given twice", name)
		}
		seen[name] = true
		if name == "cert-authority" {
			return s, errors.New("cert-authority: SSH certificates are not supported; list the signers' keys")
		}
		if !hasValue {
			return s, fmt.Errorf("unsupported option %q", o)
		}
		v, err := dequote(value)
		if err != nil {
			return s, fmt.Errorf("option %s: %w", name, err)
		}
		switch name {
		case "namespaces":
			if v == "" {
				return s, errors.New("option namespaces is empty")
			}
			s.Namespaces = v
		case "valid-after":
			if s.ValidAfter, err = parseSSHTime(v); err != nil {
				return s, fmt.Errorf("option valid-after: %w", err)
			}
		case "valid-before":
			if s.ValidBefore, err = parseSSHTime(v); err != nil {
				return s, fmt.Errorf("option valid-before: %w", err)
			}
		default:
			return s, fmt.Errorf("unsupported option %q", name)
		}
	}
	return s, nil
}

// firstField splits off the principals field: a run of non-blanks, or a
// double-quoted string.
func firstField(line string) (field, rest string, err error) {
	if strings.HasPrefix(line, `"`) {
		end := strings.IndexByte(line[1:], '"')
		if end < 0 {
			return "", "", errors.New("unterminated quote in principals")
		}
		field, rest = line[1:1+end], line[2+end:]
		if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			return "", "", errors.New("text right after the quoted principals")
		}
		return field, strings.TrimLeft(rest, " \t"), nil
	}
	i := strings.IndexAny(line, " \t")
	if i < 0 {
		return line, "", nil
	}
	return line[:i], strings.TrimLeft(line[i:], " \t"), nil
}

// dequote takes an option value in double quotes, as ssh-keygen wants it.
func dequote(v string) (string, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", errors.New("the value must be in double quotes")
	}
	v = v[1 : len(v)-1]
	if strings.ContainsRune(v, '"') {
		return "", errors.New("a quote inside the value")
	}
	return v, nil
}

// parseSSHTime reads YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, in UTC when
// it ends in Z and in local time otherwise (as ssh-keygen does).
func parseSSHTime(v string) (time.Time, error) {
	loc := time.Local
	if s, ok := strings.CutSuffix(v, "Z"); ok {
		v, loc = s, time.UTC
	}
	var layout string
	switch len(v) {
	case 8:
		layout = "20060102"
	case 12:
		layout = "200601021504"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, fmt.Errorf("%q: want YYYYMMDD[HHMM[SS]][Z]", v)
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return time.Time{}, fmt.Errorf("%q: want YYYYMMDD[HHMM[SS]][Z]", v)
		}
	}
	t, err := time.ParseInLocation(layout, v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: %w", v, err)
	}
	return t, nil
}

// allows says whether the line lets its key sign in namespace at time now,
// and if not, why.
func (s AllowedSigner) allows(namespace string, now time.Time) (bool, string) {
	if s.Namespaces != "" && !matchPatternList(namespace, s.Namespaces) {
		return false, fmt.Sprintf("its namespaces=%q do not include %q", s.Namespaces, namespace)
	}
	if !s.ValidAfter.IsZero() && now.Before(s.ValidAfter) {
		return false, "it is valid only after " + s.ValidAfter.Format(time.RFC3339)
	}
	if !s.ValidBefore.IsZero() && !now.Before(s.ValidBefore) {
		return false, "it was valid only before " + s.ValidBefore.Format(time.RFC3339)
	}
	return true, ""
}

// matchPatternList is OpenSSH's match_pattern_list: comma-separated
// patterns with * and ?, a leading ! negates; a negated match wins.
func matchPatternList(s, list string) bool {
	got := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if matchPattern(s, p) {
			if neg {
				return false
			}
			got = true
		}
	}
	return got
}

// matchPattern matches s against a pattern of * (any run) and ? (any one
// byte), iteratively (no exponential backtracking).
func matchPattern(s, p string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
