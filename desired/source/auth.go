package source

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// readSecret reads a one-line secret file. Trailing newlines are what
// editors and `echo` leave, not part of the secret.
func readSecret(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return s, nil
}

func readBasicAuth(file string) (user, password string, err error) {
	s, err := readSecret(file)
	if err != nil {
		return "", "", err
	}
	user, password, ok := strings.Cut(s, ":")
	if !ok || user == "" {
		return "", "", fmt.Errorf("%s does not hold user:password", file)
	}
	return user, password, nil
}

// httpAuth builds basic auth from the files on every call, so a rotated
// token is picked up without a restart.
func httpAuth(loc location, o Options) (transport.AuthMethod, error) {
	switch {
	case o.TokenFile != "":
		tok, err := readSecret(o.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("TokenFile: %w", err)
		}
		return &githttp.BasicAuth{Username: "git", Password: tok}, nil
	case o.BasicAuthFile != "":
		u, p, err := readBasicAuth(o.BasicAuthFile)
		if err != nil {
			return nil, fmt.Errorf("BasicAuthFile: %w", err)
		}
		return &githttp.BasicAuth{Username: u, Password: p}, nil
	case loc.user != "" || loc.password != "":
		return &githttp.BasicAuth{Username: loc.user, Password: loc.password}, nil
	}
	return nil, nil
}

func readSigner(file string) (ssh.Signer, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("SSHKeyFile: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("SSHKeyFile %s is encrypted; the agent needs a key without a passphrase", file)
	}
	if err != nil {
		return nil, fmt.Errorf("SSHKeyFile %s: %w", file, err)
	}
	return signer, nil
}

func hostKeyCallback(file string) (ssh.HostKeyCallback, error) {
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("KnownHostsFile: %w", err)
	}
	return cb, nil
}

// sshAuth is a go-git ssh.AuthMethod that gives the whole client config, so
// the host key check is ours (known_hosts only) and the dial has a timeout.
type sshAuth struct {
	user, hostPort          string
	keyFile, knownHostsFile string
	timeout                 time.Duration
}

func (a *sshAuth) Name() string   { return "ssh-public-key-file" }
func (a *sshAuth) String() string { return "user: " + a.user + ", key: " + a.keyFile }

func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	signer, err := readSigner(a.keyFile)
	if err != nil {
		return nil, err
	}
	cb, err := hostKeyCallback(a.knownHostsFile)
	if err != nil {
		return nil, err
	}
	file := a.knownHostsFile
	return &ssh.ClientConfig{
		User: a.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			err := cb(host, remote, key)
			var ke *knownhosts.KeyError
			var re *knownhosts.RevokedError
			switch {
			case err == nil:
				return nil
			case errors.As(err, &ke) && len(ke.Want) == 0:
				return fmt.Errorf("%w: %s is not in %s (add its key there; keys are never trusted on first use)", ErrHostKey, host, file)
			case errors.As(err, &ke):
				return fmt.Errorf("%w: %s offered a host key (%s) that does not match %s:%d (possible man in the middle)",
					ErrHostKey, host, key.Type(), ke.Want[0].Filename, ke.Want[0].Line)
			case errors.As(err, &re):
				return fmt.Errorf("%w: %s offered a key revoked in %s:%d", ErrHostKey, host, re.Revoked.Filename, re.Revoked.Line)
			}
			return fmt.Errorf("%w: %s: %v", ErrHostKey, host, err)
		},
		HostKeyAlgorithms: knownAlgorithms(cb, a.hostPort),
		Timeout:           a.timeout,
	}, nil
}

// probeKey is a key no known_hosts file holds: checking it makes the
// callback list the keys it does hold for a host.
var probeKey = func() ssh.PublicKey {
	pub := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
}()

// knownAlgorithms limits the host key algorithms to the types known_hosts
// holds for hostPort. Otherwise the server may pick a key type the file
// lacks, and a correct file would fail as a "mismatch".
func knownAlgorithms(cb ssh.HostKeyCallback, hostPort string) []string {
	_, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return nil
	}
	p, _ := strconv.Atoi(port)
	var ke *knownhosts.KeyError
	if err := cb(hostPort, &net.TCPAddr{IP: net.IPv4zero, Port: p}, probeKey); !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}
