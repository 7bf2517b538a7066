package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Forge names who sent a webhook delivery, as told by its headers.
type Forge string

// The senders /webhook understands.
const (
	ForgeGitHub  Forge = "github"
	ForgeGitea   Forge = "gitea"
	ForgeGitLab  Forge = "gitlab"
	ForgeGeneric Forge = "generic"
)

// The headers each sender authenticates with.
const (
	headerHubSignature   = "X-Hub-Signature-256" // GitHub and Gitea: "sha256=<hex>"
	headerGiteaSignature = "X-Gitea-Signature"   // Gitea: bare hex
	headerGitLabToken    = "X-Gitlab-Token"      // GitLab: the secret itself
	headerSignature      = "X-Signature-256"     // generic form: "sha256=<hex>"
	headerGenericEvent   = "X-Reconciler-Event"  // generic form: the event, default push
)

var errNoCredential = errors.New("no X-Hub-Signature-256, X-Gitea-Signature, X-Signature-256 or X-Gitlab-Token")

// authenticate checks a delivery against the secret: an HMAC-SHA256 of the
// body in whichever header the sender uses, or GitLab's token, which GitLab
// sends as it is (it signs nothing). gitlabKey is GitLab's own token when
// one is configured, else the same secret. Every comparison is in constant
// time; the token's is of digests, so not even its length leaks.
func authenticate(hdr http.Header, body, key, gitlabKey []byte) error {
	if tok := hdr.Get(headerGitLabToken); tok != "" {
		got, want := sha256.Sum256([]byte(tok)), sha256.Sum256(gitlabKey)
		if !hmac.Equal(got[:], want[:]) {
			return errors.New("X-Gitlab-Token mismatch")
		}
		return nil
	}
	var name, hexSig string
	for _, h := range []string{headerHubSignature, headerSignature} {
		if v := hdr.Get(h); v != "" {
			s, ok := strings.CutPrefix(v, "sha256=")
			if !ok {
				return fmt.Errorf("malformed %s", h)
			}
			name, hexSig = h, s
			break
		}
	}
	if name == "" {
		if v := hdr.Get(headerGiteaSignature); v != "" {
			name, hexSig = headerGiteaSignature, v
		}
	}
	if name == "" {
		return errNoCredential
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("malformed %s", name)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return fmt.Errorf("%s: signature mismatch", name)
	}
	return nil
}

// delivery is what a verified webhook says: who sent it, which event, and
// for a push the ref it moved.
type delivery struct {
	Forge Forge
	Event string // as the sender names it: push, Push Hook, ping, ...
	Push  bool
	Ref   string // "refs/heads/main"; empty when the body does not say
}

// classify reads the event from the sender's header and the pushed ref from
// the body. Gitea also sends GitHub's and Gogs' headers, so it is asked
// first. A delivery with none of the forges' event headers is the generic
// form: its event is X-Reconciler-Event (default push) and its body may
// carry {"ref": "refs/heads/..."}.
func classify(hdr http.Header, body []byte) delivery {
	var d delivery
	switch {
	case hdr.Get("X-Gitea-Event") != "":
		d = delivery{Forge: ForgeGitea, Event: hdr.Get("X-Gitea-Event")}
		d.Push = d.Event == "push"
	case hdr.Get("X-GitHub-Event") != "":
		d = delivery{Forge: ForgeGitHub, Event: hdr.Get("X-GitHub-Event")}
		d.Push = d.Event == "push"
	case hdr.Get("X-Gitlab-Event") != "":
		d = delivery{Forge: ForgeGitLab, Event: hdr.Get("X-Gitlab-Event")}
		d.Push = d.Event == "Push Hook"
	default:
		d = delivery{Forge: ForgeGeneric, Event: hdr.Get(headerGenericEvent)}
		if d.Event == "" {
			d.Event = "push"
		}
		d.Push = d.Event == "push"
	}
	if d.Push {
		var p struct {
			Ref string `json:"ref"`
		}
		if json.Unmarshal(body, &p) == nil {
			d.Ref = p.Ref
		}
	}
	return d
}

// ignoreReason says why a verified delivery triggers no pass, or "" when
// it should trigger one. followed is the full ref the agent applies
// ("refs/heads/main"). Any push is accepted while it cannot be compared:
// nothing fetched yet (""), a remote HEAD or a pinned commit (not under
// refs/), or a body naming no ref; an extra pass is harmless, a missed one
// waits for the poll. A short ref in a generic body ("main") is read as a
// branch.
func (d delivery) ignoreReason(followed string) string {
	if !d.Push {
		return fmt.Sprintf("%s event %q is not a push", d.Forge, d.Event)
	}
	if !strings.HasPrefix(followed, "refs/") || d.Ref == "" {
		return ""
	}
	ref := d.Ref
	if !strings.HasPrefix(ref, "refs/") {
		ref = "refs/heads/" + ref
	}
	if ref != followed {
		return fmt.Sprintf("push to %s, not to the followed %s", d.Ref, followed)
	}
	return ""
}
