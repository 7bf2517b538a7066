package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxAnswer bounds what a client reads of one endpoint's answer.
const maxAnswer = 32 << 20

// Get asks the agent at addr (host:port or a URL) for one endpoint, with
// "Authorization: Bearer <token>" when token is not empty, and returns the
// body (at most 32 MiB) and the status code. The context carries the
// timeout.
func Get(ctx context.Context, addr, path, token string) ([]byte, int, error) {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path, nil)
	if err != nil {
		return nil, 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("agent at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("agent at %s: %s: %w", addr, path, err)
	}
	return b, resp.StatusCode, nil
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
