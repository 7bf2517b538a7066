package source

import (
	"errors"
	"fmt"
	"testing"

	xssh "golang.org/x/crypto/ssh"
)

// x/crypto says "no common algorithm for host key" only as a typed
// negotiation error, wrapped by its handshake; that is what the hint tests.
func TestHostKeyHintFromTypedNegotiationError(t *testing.T) {
	neg := fmt.Errorf("ssh: handshake failed: %w", &xssh.AlgorithmNegotiationError{What: "host key",
		SupportedAlgorithms: []string{"ssh-rsa"}, RequestedAlgorithms: []string{"ssh-ed25519"}})
	if err := hostKeyHint(neg); !errors.Is(err, ErrHostKey) {
		t.Errorf("%v is not a host key error", err)
	}
	cipher := fmt.Errorf("ssh: handshake failed: %w", &xssh.AlgorithmNegotiationError{What: "client to server cipher"})
	if err := hostKeyHint(cipher); errors.Is(err, ErrHostKey) {
		t.Errorf("a cipher mismatch became a host key error: %v", err)
	}
	if hostKeyHint(nil) != nil {
		t.Error("nil became an error")
	}
}
