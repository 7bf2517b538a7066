package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
)

// maxWebhookBody bounds what a webhook may send; pushes are far smaller.
const maxWebhookBody = 1 << 20

// webhook verifies a push notification and triggers a pass.
type webhook struct {
	secretFile string
	trigger    func(reason string)
	onEvent    func(msg string)

	mu   sync.Mutex
	seen map[string]struct{} // delivery ids already acted on
	ring []string
}

const deliveryMemory = 1024

// ServeHTTP answers POST /webhook: 202 when the body's HMAC-SHA256 (GitHub's
// and Gitea's X-Hub-Signature-256: "sha256=<hex>") matches the secret, 401
// for anything else. A delivery id seen before (X-GitHub-Delivery,
// X-Gitea-Delivery, X-Gogs-Delivery) is a replay and is ignored.
func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err := h.verify(r.Header.Get("X-Hub-Signature-256"), body); err != nil {
		h.note("webhook refused: " + err.Error())
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if id := deliveryID(r.Header); id != "" && h.replayed(id) {
		h.note("webhook delivery " + id + " replayed: ignored")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "replayed delivery ignored\n")
		return
	}
	if h.trigger != nil {
		h.trigger("webhook")
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, "pass triggered\n")
}

func (h *webhook) note(msg string) {
	if h.onEvent != nil {
		h.onEvent(msg)
	}
}

func deliveryID(h http.Header) string {
	for _, k := range []string{"X-GitHub-Delivery", "X-Gitea-Delivery", "X-Gogs-Delivery"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}

func (h *webhook) verify(sig string, body []byte) error {
	if h.secretFile == "" {
		return errors.New("no --webhook-secret-file configured")
	}
	secret, err := os.ReadFile(h.secretFile)
	if err != nil {
		return errors.New("webhook secret unreadable")
	}
	key := []byte(strings.TrimSpace(string(secret)))
	if len(key) == 0 {
		return errors.New("webhook secret is empty")
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return errors.New("missing or malformed X-Hub-Signature-256")
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return errors.New("malformed X-Hub-Signature-256")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) { // constant time
		return errors.New("signature mismatch")
	}
	return nil
}

// replayed remembers delivery ids and reports one seen before.
func (h *webhook) replayed(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen == nil {
		h.seen = map[string]struct{}{}
	}
	if _, ok := h.seen[id]; ok {
		return true
	}
	h.seen[id] = struct{}{}
	h.ring = append(h.ring, id)
	if len(h.ring) > deliveryMemory {
		delete(h.seen, h.ring[0])
		h.ring = h.ring[1:]
	}
	return false
}
