package agent

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"reconciler.dev/reconciler/api/names"
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
	// onRefused counts every refusal, "unauthorized" or "limited" (the
	// events fold them).
	onRefused func(reason string)

	mu   sync.Mutex
	seen map[string]struct{} // delivery ids already acted on
	ring []string

	// Refusals are folded (see refused): the first of a window is an
	// event, the rest of the window one more event with their count, so a
	// flood of bad deliveries cannot flush the 200-event ring.
	foldWindow  time.Duration // default refusalWindow
	windowStart time.Time     // zero: no refusal in the current window
	folded      int           // refusals since the last event
	lastReason  string
	inWindow    int // refusals in the current window, against refusalBurst
}

const (
	deliveryMemory = 1024
	// refusalWindow is the window refusals are folded and counted in.
	refusalWindow = time.Minute
	// refusalBurst is how many refused deliveries a window admits; beyond
	// it the webhook answers 429 without reading the body, until the
	// window ends. A forge's real deliveries are rarely refused, and the
	// poll picks a missed push up anyway.
	refusalBurst = 30
)

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
	if h.limited(time.Now()) {
		h.count("limited")
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many refused deliveries; try again later", http.StatusTooManyRequests)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		h.refused(time.Now(), "body too large or unreadable")
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err := h.verify(r.Header, body); err != nil {
		h.refused(time.Now(), err.Error())
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
		h.trigger(names.TriggerWebhook)
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, "pass triggered\n")
}

// limited reports whether this window's refusals are used up.
func (h *webhook) limited(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.windowStart.IsZero() && now.Sub(h.windowStart) < h.window() && h.inWindow >= refusalBurst
}

func (h *webhook) window() time.Duration {
	if h.foldWindow > 0 {
		return h.foldWindow
	}
	return refusalWindow
}

// refused counts a refused delivery. The first one of a quiet spell is an
// event at once; later ones in its window are folded into one event when
// the window ends ("refused 41 more times ..."), and a new window starts
// while they keep coming.
func (h *webhook) refused(now time.Time, reason string) {
	h.count("unauthorized")
	h.mu.Lock()
	if h.windowStart.IsZero() {
		h.windowStart, h.inWindow = now, 1
		h.mu.Unlock()
		h.note("webhook refused: " + reason)
		time.AfterFunc(h.window(), h.flushRefusals)
		return
	}
	h.folded++
	h.inWindow++
	h.lastReason = reason
	h.mu.Unlock()
}

// flushRefusals ends a window: one event for the refusals folded in it.
func (h *webhook) flushRefusals() {
	h.mu.Lock()
	n, reason, win := h.folded, h.lastReason, h.window()
	h.folded, h.inWindow = 0, 0
	if n == 0 {
		h.windowStart = time.Time{}
		h.mu.Unlock()
		return
	}
	h.windowStart = time.Now()
	h.mu.Unlock()
	h.note(fmt.Sprintf("webhook refused %d more time(s) in %s (the last: %s)", n, win, reason))
	time.AfterFunc(win, h.flushRefusals)
}

func (h *webhook) count(reason string) {
	if h.onRefused != nil {
		h.onRefused(reason)
	}
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
	key, err := readSecret(h.secretFile)
	if errors.Is(err, errShortSecret) {
		return fmt.Errorf("webhook secret shorter than %d bytes", MinSecretBytes)
	}
	if err != nil {
		return errors.New("webhook secret unreadable")
	}
	gitlabKey := key
	if h.gitlabTokenFile != "" {
		if gitlabKey, err = readSecret(h.gitlabTokenFile); err != nil {
			return errors.New("GitLab webhook token unreadable or shorter than 16 bytes")
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
