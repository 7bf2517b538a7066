package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func newTestWebhook(t testing.TB, secret string) (*webhook, *int) {
	t.Helper()
	file := ""
	if secret != "" {
		file = secretFile(t, secret)
	}
	n := 0
	return &webhook{secretFile: file, trigger: func(string) { n++ }, onEvent: func(string) {}}, &n
}

func post(h http.Handler, body, sig, delivery string) int {
	req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(body))
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	if delivery != "" {
		req.Header.Set("X-GitHub-Delivery", delivery)
	}
	return answer(h, req).Code
}

func TestWebhook(t *testing.T) {
	const body = `{"ref":"refs/heads/main"}`
	h, n := newTestWebhook(t, testSecret)
	cases := []struct {
		name, body, sig, delivery string
		code, passes              int
	}{
		{"good signature", body, sign(testSecret, body), "d1", http.StatusAccepted, 1},
		{"replayed delivery", body, sign(testSecret, body), "d1", http.StatusOK, 1},
		{"new delivery", body, sign(testSecret, body), "d2", http.StatusAccepted, 2},
		{"wrong secret", body, sign("guess", body), "d3", http.StatusUnauthorized, 2},
		{"body changed", body + " ", sign(testSecret, body), "d4", http.StatusUnauthorized, 2},
		{"no signature", body, "", "d5", http.StatusUnauthorized, 2},
		{"not hex", body, "sha256=zz", "d6", http.StatusUnauthorized, 2},
		{"sha1 form", body, "sha1=" + strings.Repeat("0", 40), "d7", http.StatusUnauthorized, 2},
		{"too large", strings.Repeat("x", maxWebhookBody+1), "", "", http.StatusRequestEntityTooLarge, 2},
	}
	for _, c := range cases {
		if code := post(h, c.body, c.sig, c.delivery); code != c.code || *n != c.passes {
			t.Errorf("%s: code %d passes %d, want %d and %d", c.name, code, *n, c.code, c.passes)
		}
	}
	if code := post(&webhook{}, body, sign("", body), ""); code != http.StatusUnauthorized {
		t.Errorf("without a configured secret: %d, want 401", code)
	}
	if rec := getPath(h, "/webhook"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
}

func TestTriggerCoalesces(t *testing.T) {
	a := &Agent{trigger: make(chan string, 1)}
	for i := 0; i < 10; i++ {
		a.Trigger("webhook")
	}
	if len(a.trigger) != 1 {
		t.Errorf("%d passes pending after a burst, want 1", len(a.trigger))
	}
}

// FuzzWebhook: arbitrary bodies, signatures and delivery ids never panic
// the handler; a pass is triggered exactly when the signature is the body's
// HMAC, answered 202, and the same delivery sent again triggers nothing.
// The fuzzer cannot forge an HMAC, so signed asks it to sign the body
// itself. Each input gets a new handler: inputs are run more than once.
func FuzzWebhook(f *testing.F) {
	f.Add([]byte(`{"ref":"refs/heads/main"}`), "sha256=00", false, "")
	f.Add([]byte(`{"ref":"refs/heads/main"}`), "", true, "d-1")
	f.Add([]byte{}, "", false, "")
	proto, _ := newTestWebhook(f, fuzzSecret)
	f.Fuzz(func(t *testing.T, body []byte, sig string, signed bool, delivery string) {
		n := 0
		h := &webhook{secretFile: proto.secretFile, trigger: func(string) { n++ }, onEvent: func(string) {}}
		if signed {
			sig = sign(fuzzSecret, string(body))
		}
		send := func() int { return post(h, string(body), sig, delivery) }
		code := send()
		good := sig == sign(fuzzSecret, string(body)) && len(body) <= maxWebhookBody
		switch {
		case n > 0 && !good:
			t.Fatalf("triggered by signature %q (code %d)", sig, code)
		case good && (n != 1 || code != http.StatusAccepted):
			t.Fatalf("a signed delivery: %d passes, code %d, want 1 and 202", n, code)
		}
		if code = send(); good && delivery != "" && n != 1 {
			t.Fatalf("delivery %q sent again triggered a pass (code %d)", delivery, code)
		}
	})
}

const (
	testSecret = "s3cret-of-24-bytes-long!"
	fuzzSecret = "k-is-sixteen-byt"
)

// GitHub's documented test vector ("Validating webhook deliveries"): the
// secret "It's a Secret to Everybody" and the payload "Hello, World!" give
// this X-Hub-Signature-256.
func TestGitHubDocumentedVector(t *testing.T) {
	hdr := http.Header{}
	hdr.Set("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	key := []byte("It's a Secret to Everybody")
	if err := authenticate(hdr, []byte("Hello, World!"), key, key); err != nil {
		t.Fatalf("GitHub's test vector does not verify: %v", err)
	}
	if err := authenticate(hdr, []byte("Hello, World?"), key, key); err == nil {
		t.Fatal("a changed payload verified")
	}
}

type forgeCase struct {
	name    string
	headers map[string]string
	body    string
	code    int
	passes  int // passes triggered so far
	note    string
}

func TestWebhookForges(t *testing.T) {
	const secret = "s3cret-s3cret-s3cret"
	push := func(ref string) string { return `{"ref":"` + ref + `","after":"abc"}` }
	main := push("refs/heads/main")
	hex := func(body string) string { return strings.TrimPrefix(sign(secret, body), "sha256=") }
	h, n := newTestWebhook(t, secret)
	var notes []string
	h.onEvent = func(m string) { notes = append(notes, m) }
	h.followedRef = func() string { return "refs/heads/main" }
	cases := []forgeCase{
		{name: "github push to the followed ref", body: main, code: http.StatusAccepted, passes: 1,
			headers: map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "g1", "X-Hub-Signature-256": sign(secret, main)}},
		{name: "github push to another ref is ignored", body: push("refs/heads/feature"), code: http.StatusOK, passes: 1,
			note:    "push to refs/heads/feature, not to the followed refs/heads/main",
			headers: map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "g2", "X-Hub-Signature-256": sign(secret, push("refs/heads/feature"))}},
		{name: "github ping is ignored", body: `{"zen":"x"}`, code: http.StatusOK, passes: 1,
			note:    `github event "ping" is not a push`,
			headers: map[string]string{"X-GitHub-Event": "ping", "X-GitHub-Delivery": "g3", "X-Hub-Signature-256": sign(secret, `{"zen":"x"}`)}},
		{name: "gitea push with its bare hex signature", body: main, code: http.StatusAccepted, passes: 2,
			headers: map[string]string{"X-Gitea-Event": "push", "X-GitHub-Event": "push", "X-Gitea-Delivery": "t1", "X-Gitea-Signature": hex(main)}},
		{name: "gitea pull request is ignored", body: `{"action":"opened"}`, code: http.StatusOK, passes: 2,
			note:    `gitea event "pull_request" is not a push`,
			headers: map[string]string{"X-Gitea-Event": "pull_request", "X-Gitea-Delivery": "t2", "X-Gitea-Signature": hex(`{"action":"opened"}`)}},
		{name: "gitlab token", body: main, code: http.StatusAccepted, passes: 3,
			headers: map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "l1", "X-Gitlab-Token": secret}},
		{name: "gitlab wrong token", body: main, code: http.StatusUnauthorized, passes: 3,
			headers: map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "l2", "X-Gitlab-Token": secret + "x"}},
		{name: "gitlab tag push is ignored", body: push("refs/tags/v1"), code: http.StatusOK, passes: 3,
			note:    `gitlab event "Tag Push Hook" is not a push`,
			headers: map[string]string{"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Event-UUID": "l3", "X-Gitlab-Token": secret}},
		{name: "gitlab replayed", body: main, code: http.StatusOK, passes: 3,
			headers: map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "l1", "X-Gitlab-Token": secret}},
		{name: "generic form, short ref", body: `{"ref":"main"}`, code: http.StatusAccepted, passes: 4,
			headers: map[string]string{"X-Signature-256": sign(secret, `{"ref":"main"}`)}},
		{name: "generic form, other event", body: `{}`, code: http.StatusOK, passes: 4,
			note:    `generic event "deploy" is not a push`,
			headers: map[string]string{"X-Signature-256": sign(secret, `{}`), "X-Reconciler-Event": "deploy"}},
		{name: "generic form, wrong key", body: `{}`, code: http.StatusUnauthorized, passes: 4,
			headers: map[string]string{"X-Signature-256": sign("other", `{}`)}},
	}
	for _, tc := range cases {
		notes = nil
		req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(tc.body))
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		rec := answer(h, req)
		if rec.Code != tc.code || *n != tc.passes {
			t.Errorf("%s: got %d and %d passes, want %d and %d (%s)", tc.name, rec.Code, *n, tc.code, tc.passes, rec.Body)
		}
		if tc.note != "" && (len(notes) != 1 || notes[0] != "webhook delivery ignored: "+tc.note) {
			t.Errorf("%s: recorded %q, want the delivery ignored: %s", tc.name, notes, tc.note)
		}
	}
}

func TestWebhookOwnGitLabToken(t *testing.T) {
	h, n := newTestWebhook(t, "hmac-secret-1-long-enough")
	h.gitlabTokenFile = secretFile(t, "gitlab-token-2-long-enough")
	for _, tc := range []struct {
		token string
		code  int
	}{{"hmac-secret-1-long-enough", http.StatusUnauthorized}, {"gitlab-token-2-long-enough", http.StatusAccepted}} {
		req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(`{"ref":"refs/heads/main"}`))
		req.Header.Set("X-Gitlab-Event", "Push Hook")
		req.Header.Set("X-Gitlab-Token", tc.token)
		if rec := answer(h, req); rec.Code != tc.code {
			t.Errorf("token %q: got %d, want %d", tc.token, rec.Code, tc.code)
		}
	}
	if *n != 1 {
		t.Errorf("%d passes, want 1", *n)
	}
}

func FuzzClassify(f *testing.F) {
	f.Add("push", `{"ref":"refs/heads/main"}`)
	f.Add("Push Hook", `{"ref":1}`)
	f.Add("", `not json`)
	f.Fuzz(func(t *testing.T, event, body string) {
		for _, h := range []string{"X-GitHub-Event", "X-Gitea-Event", "X-Gitlab-Event", headerGenericEvent} {
			hdr := http.Header{}
			hdr.Set(h, event)
			d := classify(hdr, []byte(body))
			if !d.Push && d.ignoreReason("refs/heads/main") == "" {
				t.Fatalf("a non-push (%+v) would trigger a pass", d)
			}
		}
	})
}

func TestIgnoreReasonWhenTheRefCannotBeCompared(t *testing.T) {
	push := delivery{Forge: ForgeGitHub, Event: "push", Push: true, Ref: "refs/heads/feature"}
	for _, followed := range []string{"", "HEAD", "0123456789abcdef0123456789abcdef01234567"} {
		if why := push.ignoreReason(followed); why != "" {
			t.Errorf("following %q: a push was ignored (%s)", followed, why)
		}
	}
	if push.ignoreReason("refs/tags/v1") == "" {
		t.Error("following a tag: a push to a branch triggered a pass")
	}
}
