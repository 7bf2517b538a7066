package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// State is a commit status state, as GitHub and Gitea name them.
type State string

// The states the agent posts.
const (
	StatePending State = "pending"
	StateSuccess State = "success"
	StateFailure State = "failure"
	StateError   State = "error"
)

// maxDescription is GitHub's limit on a status description.
const maxDescription = 140

// Status is one commit status.
type Status struct {
	SHA         string `json:"-"`
	State       State  `json:"state"`
	Context     string `json:"context"`
	Description string `json:"description,omitempty"`
	TargetURL   string `json:"target_url,omitempty"`
}

// Client posts commit statuses to one repository of a GitHub-shaped API:
// GitHub (https://api.github.com) or Gitea (https://gitea.example/api/v1).
type Client struct {
	// API is the API root: https://api.github.com, or a Gitea's /api/v1.
	API string
	// Repo is "owner/name".
	Repo string
	// TokenFile holds the API token; read on every post, so it can rotate.
	TokenFile string
	HTTP      *http.Client
}

// ErrRejected is a status the forge answered with a 4xx other than 429:
// retrying the same request will not help.
var ErrRejected = errors.New("forge rejected the status")

// Post sends one status.
func (c *Client) Post(ctx context.Context, s Status) error {
	owner, name, ok := strings.Cut(c.Repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("forge repo %q: want owner/name", c.Repo)
	}
	tok, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return fmt.Errorf("forge token %s: %w", c.TokenFile, err)
	}
	s.Description = truncate(s.Description, maxDescription)
	body, err := json.Marshal(s)
	if err != nil {
		return err
	}
	u := strings.TrimRight(c.API, "/") + "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/statuses/" + url.PathEscape(s.SHA)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("status for %s: %w", s.Context, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "token "+strings.TrimSpace(string(tok)))
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("status %s for %s: %w", s.State, s.Context, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests:
		return fmt.Errorf("status %s for %s: %w: %s: %s", s.State, s.Context, ErrRejected, resp.Status, bytes.TrimSpace(msg))
	default:
		return fmt.Errorf("status %s for %s: forge answered %s: %s", s.State, s.Context, resp.Status, bytes.TrimSpace(msg))
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
