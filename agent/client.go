package agent

import "fmt"

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
