package agent

import (
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
	// gitlabTokenFile holds GitLab's X-Gitlab-Token when it differs from
	// the HMAC secret ("": the same secret).
	gitlabTokenFile string
	// followedRef is the full ref the agent applies ("refs/heads/main"),
	// "" while unknown; pushes to other refs are ignored.
	followedRef func() string
	trigger     func(reason string)
	onEvent     func(msg string)

	mu   sync.Mutex
	seen map[string]struct{} // delivery ids already acted on
	ring []string
}

const deliveryMemory = 1024

// ServeHTTP answers POST /webhook: 401 unless the delivery authenticates
// (see authenticate: GitHub's and Gitea's signatures, GitLab's token, the
// generic HMAC form). A delivery id seen before (X-GitHub-Delivery,
// X-Gitea-Delivery, X-Gogs-Delivery, X-Gitlab-Event-UUID) is a replay and is
// ignored. Only a push to the followed ref triggers a pass (202); any other
// event or ref is answered 200 and recorded as ignored, so the forge does not
// mark the hook as failing.
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
	if err := h.verify(r.Header, body); err != nil {
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
	d := classify(r.Header, body)
	followed := ""
	if h.followedRef != nil {
		followed = h.followedRef()
	}
	if why := d.ignoreReason(followed); why != "" {
		h.note("webhook delivery ignored: " + why)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ignored: "+why+"\n")
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
	for _, k := range []string{"X-GitHub-Delivery", "X-Gitea-Delivery", "X-Gogs-Delivery", "X-Gitlab-Event-UUID"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}

func (h *webhook) verify(hdr http.Header, body []byte) error {
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
	gitlabKey := key
	if h.gitlabTokenFile != "" {
		tok, err := os.ReadFile(h.gitlabTokenFile)
		if err != nil {
			return errors.New("GitLab webhook token unreadable")
		}
		if gitlabKey = []byte(strings.TrimSpace(string(tok))); len(gitlabKey) == 0 {
			return errors.New("GitLab webhook token is empty")
		}
	}
	return authenticate(hdr, body, key, gitlabKey)
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
