package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// SignatureHeader carries a webhook body's HMAC-SHA256 as sha256=<hex>.
const SignatureHeader = "X-Reconciler-Signature-256"

// ErrRejected wraps a 4xx answer: the target will not take this payload,
// so it is not retried.
var ErrRejected = errors.New("notification rejected")

// alertTTL is how long Alertmanager keeps a firing alert that is not sent
// again; the Notifier re-sends firing conditions well within it.
const alertTTL = time.Hour

// Sign is the value of SignatureHeader for body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// webhookBody is the generic webhook's JSON: the event and its state.
func webhookBody(e Event) ([]byte, error) {
	return json.Marshal(struct {
		Event
		State string `json:"state"`
	}{e, e.state()})
}

// text is the one-line human form (Slack).
func text(e Event) string {
	var b strings.Builder
	if e.Firing {
		b.WriteString("[FIRING] ")
	} else {
		b.WriteString("[RESOLVED] ")
	}
	fmt.Fprintf(&b, "%s: %s", e.Host, e.Type)
	if e.Subject != "" {
		fmt.Fprintf(&b, " %s", e.Subject)
	}
	if e.Revision != "" {
		fmt.Fprintf(&b, " (revision %s", e.Revision)
		if e.Pass != "" {
			fmt.Fprintf(&b, ", pass %s", e.Pass)
		}
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

func slackBody(e Event) ([]byte, error) {
	return json.Marshal(map[string]string{"text": text(e)})
}

// AlertName is the alertname label of an event type: Reconciler +
// the type in CamelCase (ReconcilerPassFailed).
func AlertName(typ string) string {
	var b strings.Builder
	b.WriteString("Reconciler")
	for _, w := range strings.Split(typ, "-") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// alertmanagerBody is a v2 postableAlerts array of one alert. A firing
// alert ends alertTTL from now; a resolved one ends now.
func alertmanagerBody(e Event) ([]byte, error) {
	labels := map[string]string{"alertname": AlertName(e.Type), "host": e.Host}
	if e.Subject != "" {
		labels["subject"] = e.Subject
	}
	start := e.StartsAt
	if start.IsZero() {
		start = e.Time
	}
	end := e.Time.Add(alertTTL)
	if !e.Firing {
		end = e.Time
	}
	return json.Marshal([]map[string]any{{
		"labels": labels,
		"annotations": map[string]string{
			"summary": text(e), "revision": e.Revision, "pass": e.Pass, "message": e.Message,
		},
		"startsAt": start.UTC().Format(time.RFC3339Nano),
		"endsAt":   end.UTC().Format(time.RFC3339Nano),
	}})
}

// sender posts one event to one target.
type sender struct {
	cfg    TargetConfig
	client *http.Client
}

func (s *sender) send(ctx context.Context, e Event) error {
	var body []byte
	var err error
	url := s.cfg.URL
	hdr := http.Header{"Content-Type": {"application/json"}}
	switch s.cfg.Kind {
	case KindWebhook:
		body, err = webhookBody(e)
		if err != nil {
			return err
		}
		secret, rerr := os.ReadFile(s.cfg.SecretFile)
		if rerr != nil {
			return fmt.Errorf("notify target %s: secret: %w", s.cfg.Name, rerr)
		}
		hdr.Set(SignatureHeader, Sign(bytes.TrimRight(secret, "\r\n"), body))
	case KindSlack:
		body, err = slackBody(e)
	case KindAlertmanager:
		body, err = alertmanagerBody(e)
		url = strings.TrimRight(url, "/") + "/api/v2/alerts"
	}
	if err != nil {
		return fmt.Errorf("notify target %s: %w", s.cfg.Name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify target %s: %w", s.cfg.Name, err)
	}
	req.Header = hdr
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("notify target %s: %w", s.cfg.Name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout:
		return fmt.Errorf("notify target %s: %s: %s: %w", s.cfg.Name, resp.Status, bytes.TrimSpace(msg), ErrRejected)
	}
	return fmt.Errorf("notify target %s: %s: %s", s.cfg.Name, resp.Status, bytes.TrimSpace(msg))
}
