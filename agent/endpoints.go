package agent

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

// The endpoint rules (README "Trust model"):
//
//   - /healthz and /readyz are open on every listener: they answer "ok" or
//     "ready" and nothing else, for load balancers and supervisors.
//   - The read endpoints (/status, /events, /passes/{id}, /metrics, / and
//     its /static/ files) say what runs on the host, who committed it and
//     where its files are. They need "Authorization: Bearer <token>" with
//     the token of --token-file whenever one is given, and a listener that
//     is not loopback refuses to start without one.
//   - On a loopback listener, a request whose Host is not localhost, a
//     loopback address, the listen address or an --allowed-host is refused
//     (403): a web page elsewhere whose DNS name is rebound to 127.0.0.1
//     cannot read the endpoints through a browser on the host.
//   - POST /webhook needs the HMAC of --webhook-secret-file, a secret of at
//     least MinSecretBytes; it can have a listener of its own
//     (--webhook-listen), and is then served there only.
//   - Every server has read, write and idle timeouts; /events (SSE) extends
//     its write deadline before each write, and at most MaxSubscribers
//     streams are open at once.

// MinSecretBytes is the shortest webhook secret or endpoint token accepted:
// anything shorter can be guessed by a patient client.
const MinSecretBytes = 16

// checkEndpoints refuses a configuration that would expose the endpoints:
// a read listener off loopback without a token, a token or webhook secret
// that is missing or short, a webhook listener off loopback without a
// secret.
func (a *Agent) checkEndpoints() error {
	if a.cfg.Listen != "" {
		host, _, err := net.SplitHostPort(a.cfg.Listen)
		if err != nil {
			return fmt.Errorf("--listen %q: %w", a.cfg.Listen, err)
		}
		if !isLoopback(host) && a.cfg.TokenFile == "" {
			return fmt.Errorf("--listen %q is not a loopback address: the read endpoints (/status, /events, /passes, /metrics, /) need --token-file there", a.cfg.Listen)
		}
	}
	if a.cfg.WebhookListen != "" {
		if _, _, err := net.SplitHostPort(a.cfg.WebhookListen); err != nil {
			return fmt.Errorf("--webhook-listen %q: %w", a.cfg.WebhookListen, err)
		}
		if a.cfg.WebhookSecretFile == "" {
			return fmt.Errorf("--webhook-listen %q needs --webhook-secret-file", a.cfg.WebhookListen)
		}
	}
	if f := a.cfg.TokenFile; f != "" {
		if _, err := readSecret(f); err != nil {
			return fmt.Errorf("--token-file %w", err)
		}
	}
	if f := a.cfg.WebhookSecretFile; f != "" {
		if _, err := readSecret(f); err != nil {
			return fmt.Errorf("--webhook-secret-file %w", err)
		}
	}
	return nil
}

// errShortSecret says a secret file holds fewer than MinSecretBytes.
var errShortSecret = errors.New("secret too short")

// readSecret reads a token or secret file (at most 4 KiB), trimmed of
// surrounding white space, and refuses one shorter than MinSecretBytes. The
// error names the file, never its content.
func readSecret(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4<<10))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	key := []byte(strings.TrimSpace(string(b)))
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("%s holds %d bytes; at least %d are needed (for example: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'): %w",
			name, len(key), MinSecretBytes, errShortSecret)
	}
	return key, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a *Agent) loopbackListen() bool {
	host, _, err := net.SplitHostPort(a.cfg.Listen)
	return err == nil && isLoopback(host)
}

// requireToken lets a request through when no --token-file is given, or
// when it carries the file's token as a bearer token. The file is read at
// every request, so a rotated token counts without a restart.
func (a *Agent) requireToken(next http.Handler) http.Handler {
	if a.cfg.TokenFile == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		want, err := readSecret(a.cfg.TokenFile)
		if err != nil {
			a.log.Error("token file unusable: read endpoints refuse every request", "pass", "-", "revision", a.goodID(), "err", err)
		}
		if !ok || err != nil || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="reconciler"`)
			http.Error(w, "unauthorized: this endpoint needs Authorization: Bearer <the token of the agent's --token-file>", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkHost refuses a request on a loopback listener whose Host header
// names anything but this host (DNS rebinding).
func (a *Agent) checkHost(next http.Handler) http.Handler {
	listenHost, _, _ := net.SplitHostPort(a.cfg.Listen)
	allowed := map[string]bool{"localhost": true, strings.ToLower(listenHost): true}
	for _, h := range a.cfg.AllowedHosts {
		allowed[strings.ToLower(strings.TrimSpace(h))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || allowed[host] {
			next.ServeHTTP(w, r)
			return
		}
		http.Error(w, "forbidden: Host is not this agent's (add it with --allowed-host if a proxy forwards it)", http.StatusForbidden)
	})
}

// ReadToken reads a --token-file for a client: the token the agent's read
// endpoints want. "" reads nothing.
func ReadToken(file string) (string, error) {
	if file == "" {
		return "", nil
	}
	b, err := readSecret(file)
	if err != nil {
		return "", fmt.Errorf("--token-file %w", err)
	}
	return string(b), nil
}
