package status

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxAnswer bounds what a client reads of one endpoint's answer: more
// than any /status of a host at the documented limits.
const maxAnswer = 32 << 20

// Get asks the agent at addr (host:port or a URL) for one endpoint, with
// "Authorization: Bearer <token>" when token is not empty, and returns the
// body (at most 32 MiB) and the status code. The context carries the
// timeout.
func Get(ctx context.Context, addr, path, token string) ([]byte, int, error) {
	return call(ctx, http.MethodGet, addr, path, token, nil)
}

// PostJSON sends body (JSON) to one endpoint of the agent at addr, as Get
// asks one.
func PostJSON(ctx context.Context, addr, path, token string, body []byte) ([]byte, int, error) {
	return call(ctx, http.MethodPost, addr, path, token, body)
}

func call(ctx context.Context, method, addr, path, token string, body []byte) ([]byte, int, error) {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base, "/")+path, rd)
	if err != nil {
		return nil, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
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
