package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Scenario 6: commit to first action, measured the way the agent e2e test
// does (TestAgentCommitToFirstAction): from the moment `git push` returns to
// the first mutating Docker call the agent makes, as the Docker proxy sees
// it. Two agents run at once on two sets of five services, each from its
// own repository: one with a webhook (interval 1h, so only the webhook can
// start the pass), one polling every 2 s; their trials alternate, each
// flipping one service's replicas.

func init() { register(6, func(config) int { return 10 }, (*bench).scenario6) }

func (b *bench) scenario6(ctx context.Context) error {
	e := b.e
	secret := fmt.Sprintf("bench-%d-%d", os.Getpid(), time.Now().UnixNano())
	secretFile := filepath.Join(e.work, "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		return err
	}
	names := benchServices(10)
	mk := func(label string, names []string, args ...string) (*latencySetup, error) {
		s := &latencySetup{names: names, flip: names[0]}
		var err error
		if s.repo, err = e.newRepo("latency-" + label); err != nil {
			return nil, err
		}
		if err := s.commit(); err != nil {
			return nil, err
		}
		if s.agent, err = e.startAgent(ctx, s.repo.httpURL, "bench-01", args...); err != nil {
			return nil, err
		}
		rev, err := s.repo.head()
		if err != nil {
			return nil, err
		}
		return s, s.agent.awaitConverged(ctx, rev, time.Minute)
	}
	hook, err := mk("webhook", names[:5], "--interval", "1h", "--webhook-secret-file", secretFile)
	if err != nil {
		return err
	}
	defer hook.agent.stop()
	poll, err := mk("poll", names[5:], "--interval", "2s")
	if err != nil {
		return err
	}
	defer poll.agent.stop()

	trial := func(s *latencySetup, webhook bool) (float64, error) {
		s.state = 1 - s.state
		if err := s.commit(); err != nil { // returns when `git push` has
			return 0, err
		}
		pushed := time.Now()
		rev, err := s.repo.head()
		if err != nil {
			return 0, err
		}
		if webhook {
			if err := postWebhook(s.agent.addr, secret, rev); err != nil {
				return 0, err
			}
		}
		id := e.services[s.flip]
		var first time.Time
		err = e.waitFor(ctx, 60*time.Second, "first write after the push", func() error {
			for _, c := range e.dockerP.Log() {
				if c.Key == "POST /services/{id}/update" && c.Time.After(pushed) && strings.Contains(c.Path, "/"+id+"/") {
					first = c.Time
					return nil
				}
			}
			return fmt.Errorf("none yet")
		})
		if err != nil {
			return 0, err
		}
		if err := s.agent.awaitConverged(ctx, rev, time.Minute); err != nil {
			return 0, err
		}
		return seconds(first.Sub(pushed)), nil
	}
	p, err := alternate(b.cfg.pairs,
		func(int) (float64, error) { return trial(hook, true) },
		func(int) (float64, error) { return trial(poll, false) })
	if err != nil {
		return err
	}
	b.add(row{
		scenario:   "6. commit to first action: webhook (reconciler) vs polling every 2 s (baseline)",
		reconciler: fmtMillis(p.a), baseline: fmtMillis(p.b), ratio: fmtRatio(p),
		calls: "push → first ServiceUpdate, on the Docker proxy",
		target: verdict(p.a.median() < 1 && p.b.median() <= 3, "webhook < 1 s; polling ≤ interval + 1 s",
			fmt.Sprintf("%.2f s / %.2f s", p.a.median(), p.b.median())),
	})
	return nil
}

// latencySetup is one agent, its repository and its services.
type latencySetup struct {
	repo  *gitRepo
	agent *agentProc
	names []string
	flip  string // the service each trial flips
	state int    // its replicas
}

// commit pushes the desired state: every service at 0 but the flipped one,
// at state.
func (s *latencySetup) commit() error {
	doc := hostDoc("bench-01", s.names, func(i int) int {
		if i == 0 {
			return s.state
		}
		return 0
	}, "")
	return s.repo.commit("main", fmt.Sprintf("%s to %d", s.flip, s.state), map[string]string{"hosts/bench-01.yaml": doc})
}

func postWebhook(addr, secret, rev string) error {
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":%q}`, rev))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/webhook", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST /webhook: %s", resp.Status)
	}
	return nil
}
