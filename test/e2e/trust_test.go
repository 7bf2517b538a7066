//go:build e2e

package e2e

// Trust: only signed commits move a host, and its history cannot be rolled
// back. The host declares one systemd unit of the test's own in the
// testbed's real systemd; every bad commit would stop it (or start it), so
// "not applied" is read from systemd itself, not only from /status.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/status"
)

const trustHost = "trust-01"

// trustUnit installs a unit of the test's own (a sleep) in the testbed's
// systemd and removes it when the test ends.
func trustUnit(t *testing.T) string {
	t.Helper()
	unit := uniqueName("trust") + ".service"
	inSystemd(t, "sh", "-c", fmt.Sprintf("printf '[Unit]\\nDescription=reconciler e2e trust test\\n[Service]\\nExecStart=/bin/sleep infinity\\n' >/etc/systemd/system/%s && systemctl daemon-reload", unit))
	t.Cleanup(func() {
		inSystemd(t, "sh", "-c", fmt.Sprintf("systemctl stop %s; rm -f /etc/systemd/system/%s; systemctl daemon-reload", unit, unit))
	})
	return unit
}

// trustUnitState is the unit's ActiveState as systemd reports it.
func trustUnitState(t *testing.T, unit string) string {
	t.Helper()
	return inSystemd(t, "systemctl", "show", "-p", "ActiveState", "--value", unit)
}

func trustDoc(unit string, active bool) string {
	return fmt.Sprintf("apiVersion: reconciler.dev/v1\nkind: Host\nmetadata: {name: %s}\nspec:\n  units:\n    - name: %s\n      active: %v\n", trustHost, unit, active)
}

// trustRepo commits to a GitRepo the way an operator with a signing key
// does: git itself signs (ssh-keygen or gpg underneath).
type trustRepo struct {
	*GitRepo
	env []string // GNUPGHOME for gpg
}

func (r *trustRepo) git(args ...string) string {
	r.t.Helper()
	return runEnv(r.t, r.WorkTree, r.env, "git", args...)
}

// commit writes the host file and commits it, signed with sign (git -c
// options and -S) when sign is not nil; push says whether to push main.
func (r *trustRepo) commit(msg, doc string, sign []string, push bool) string {
	r.t.Helper()
	writeFile(r.t, filepath.Join(r.WorkTree, "hosts", trustHost+".yaml"), doc, 0o644)
	r.git("add", "-A")
	args := append(append([]string{}, sign...), "commit", "-q", "--allow-empty", "-m", msg)
	if sign != nil {
		args = append(args, "-S")
	}
	r.git(args...)
	if push {
		r.push()
	}
	return r.git("rev-parse", "HEAD")
}

func (r *trustRepo) push() { r.git("push", "-q", "-f", "origin", "HEAD:main") }

// resetTo moves the work tree back to commit (pushing happens with the
// next commit).
func (r *trustRepo) resetTo(commit string) { r.git("reset", "-q", "--hard", commit) }

func newTrustRepo(t *testing.T, prefix string, env []string) *trustRepo {
	return &trustRepo{GitRepo: newGitRepo(t, prefix), env: env}
}

// awaitRefusal waits until /status names bad as the failed revision and a
// pass (of good, unless good is empty) has ended since the refusal; what
// says so in a failure. It returns that status.
func awaitRefusal(t *testing.T, a *agentProc, bad, good, what string) status.Status {
	t.Helper()
	var st status.Status
	eventually(t, 30*time.Second, what, func() error {
		var err error
		if st, err = tryAgentStatus(a.Addr); err != nil {
			return err
		}
		fr := st.FailedRevision
		if fr == nil || fr.ID != bad {
			return fmt.Errorf("failedRevision %+v, want %s", fr, shortRev(bad))
		}
		if lp := st.LastPass; lp == nil || !lp.End.After(fr.At) || (good != "" && lp.Revision != good) {
			if good != "" {
				return fmt.Errorf("no pass of %s has ended since the refusal at %s", shortRev(good), fr.At)
			}
			return fmt.Errorf("no pass has ended since the refusal at %s", fr.At)
		}
		return nil
	})
	return st
}

// awaitRefused waits until /status refuses head and a pass has enforced
// the revision in force after the refusal, then checks what /status says.
func awaitRefused(t *testing.T, a *agentProc, head, good, cause, commit string) status.Status {
	t.Helper()
	st := awaitRefusal(t, a, head, "", cause+": "+shortRev(head)+" refused, and a pass enforced "+shortRev(good)+" after it")
	fr := st.FailedRevision
	if fr.Cause != cause || fr.Commit != commit || !strings.Contains(fr.Reason, shortRev(commit)) {
		t.Errorf("failedRevision cause %q commit %s reason %q; want cause %q, commit %s named in the reason", fr.Cause, shortRev(fr.Commit), fr.Reason, cause, shortRev(commit))
	}
	if st.Revision == nil || st.Revision.ID != good {
		t.Errorf("revision in force %+v, want %s", st.Revision, shortRev(good))
	}
	if lp := st.LastPass; lp.Revision != good || (lp.Result != "in-sync" && lp.Result != "converged") {
		t.Errorf("last pass %s with %s: %s %s", lp.ID, shortRev(lp.Revision), lp.Result, lp.Error)
	}
	found := false
	for _, ev := range st.Events {
		if ev.Type == "revision-refused" && ev.Revision == shortRev(head) && strings.Contains(ev.Message, shortRev(commit)) {
			found = true
		}
	}
	if !found {
		t.Errorf("no revision-refused event for %s naming %s", shortRev(head), shortRev(commit))
	}
	t.Logf("refused %s (%s): %s", shortRev(head), fr.Cause, fr.Reason)
	return st
}

// signer is one way of signing commits: with an allowed key, with a key
// the agent does not know, and how the agent is told the allowed keys.
type signer struct {
	name      string
	good, bad []string // git -c options
	badKey    string   // what failedRevision.key must contain for bad
	agentArgs []string
	env       []string
}

// signatureScenario: a signed commit is applied; an unsigned commit, a
// commit signed by an unknown key, and (strict) a signed commit on top of
// an unsigned one pushed together are refused, live state unchanged; the
// next correctly signed commit is applied.
func signatureScenario(t *testing.T, s signer) {
	unit := trustUnit(t)
	repo := newTrustRepo(t, "trust-"+s.name, s.env)
	g1 := repo.commit("unit up, signed", trustDoc(unit, true), s.good, true)
	a := startAgent(t, agentConfig{Source: repo.HTTPURL, Host: trustHost, Interval: "1s",
		Args: append([]string{"--verify-signatures", "strict"}, s.agentArgs...)})
	awaitConverged(t, a, g1, time.Minute)
	if got := trustUnitState(t, unit); got != "active" {
		t.Fatalf("%s after the first signed commit: %s, want active", unit, got)
	}
	refusals := func(reason string) float64 {
		return agentMetrics(t, a.Addr)[`reconciler_revision_refusals_total{reason="`+reason+`"}`]
	}

	// 1. Unsigned: would stop the unit.
	u := repo.commit("unit down, unsigned", trustDoc(unit, false), nil, true)
	awaitRefused(t, a, u, g1, "unsigned", u)
	if got := trustUnitState(t, unit); got != "active" {
		t.Errorf("after the unsigned commit: %s is %s, want active", unit, got)
	}

	// 2. Strict: a correctly signed commit on top of an unsigned one, the
	// two pushed at once (the agent never saw the unsigned one, so it
	// deepens the history to find it).
	repo.resetTo(g1)
	u2 := repo.commit("unit down, unsigned, below a signed one", trustDoc(unit, false), nil, false)
	s2 := repo.commit("signed, on top of an unsigned commit", trustDoc(unit, false), s.good, true)
	st := awaitRefused(t, a, s2, g1, "unsigned", u2)
	if !strings.Contains(st.FailedRevision.Reason, "strict") {
		t.Errorf("the refusal does not say strict checks every commit in between: %s", st.FailedRevision.Reason)
	}
	if got := trustUnitState(t, unit); got != "active" {
		t.Errorf("after a signed commit on an unsigned one: %s is %s, want active", unit, got)
	}
	if n := agentMetrics(t, a.Addr)["reconciler_source_history_fetches_total"]; n < 1 {
		t.Errorf("reconciler_source_history_fetches_total = %v: the history was not deepened", n)
	}

	// 3. Signed by a key the agent does not know.
	repo.resetTo(g1)
	k := repo.commit("unit down, signed by an unknown key", trustDoc(unit, false), s.bad, true)
	st = awaitRefused(t, a, k, g1, "untrusted-key", k)
	if !strings.Contains(st.FailedRevision.Key, s.badKey) || !strings.Contains(st.FailedRevision.Reason, s.badKey) {
		t.Errorf("the refusal does not name the key %s: key %q, reason %q", s.badKey, st.FailedRevision.Key, st.FailedRevision.Reason)
	}
	if got := trustUnitState(t, unit); got != "active" {
		t.Errorf("after a commit by an unknown key: %s is %s, want active", unit, got)
	}
	for reason, want := range map[string]float64{"unsigned": 2, "untrusted-key": 1} {
		if got := refusals(reason); got != want {
			t.Errorf("reconciler_revision_refusals_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if v := sumMetric(agentMetrics(t, a.Addr), `reconciler_failed_revision_info{reason="untrusted-key",revision="`+k+`"}`); v != 1 {
		t.Errorf("reconciler_failed_revision_info for %s = %v", shortRev(k), v)
	}
	out := cli(t, nil, "status", "--listen", a.Addr)
	if !strings.Contains(out.Stdout, "refused:") || !strings.Contains(out.Stdout, s.badKey) {
		t.Errorf("reconciler status does not show the refusal with the key:\n%s", out.Stdout)
	}

	// 4. Correctly signed: applied, the unit stops.
	repo.resetTo(g1)
	g2 := repo.commit("unit down, signed", trustDoc(unit, false), s.good, true)
	st = awaitConverged(t, a, g2, time.Minute)
	if st.FailedRevision != nil {
		t.Errorf("failedRevision still set after a signed commit: %+v", st.FailedRevision)
	}
	if got := trustUnitState(t, unit); got != "inactive" {
		t.Errorf("after the signed commit that stops it: %s is %s, want inactive", unit, got)
	}
}

func TestTrustSSHSignatures(t *testing.T) {
	testbed(t)
	dir := t.TempDir()
	keygen := func(name string) (key, pub, fingerprint string) {
		key = filepath.Join(dir, name)
		run(t, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name+"@example.com", "-f", key)
		b, err := os.ReadFile(key + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(run(t, "", "ssh-keygen", "-lf", key+".pub"))
		return key, strings.TrimSpace(string(b)), fields[1]
	}
	alice, alicePub, aliceFP := keygen("alice")
	mallory, _, malloryFP := keygen("mallory")
	allowed := filepath.Join(dir, "allowed_signers")
	writeFile(t, allowed, "# who may move fp hosts\nalice@example.com namespaces=\"git\" "+alicePub+"\n", 0o644)
	t.Logf("alice %s (allowed), mallory %s (not)", aliceFP, malloryFP)
	sshSign := func(key string) []string {
		return []string{"-c", "gpg.format=ssh", "-c", "user.signingkey=" + key}
	}
	signatureScenario(t, signer{
		name: "ssh", good: sshSign(alice), bad: sshSign(mallory), badKey: malloryFP,
		agentArgs: []string{"--allowed-signers-file", allowed},
	})
}

func TestTrustOpenPGPSignatures(t *testing.T) {
	testbed(t)
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Fatal("gpg is not installed (hack/testbed up installs gnupg)")
	}
	home, err := os.MkdirTemp("", "gnupg")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o700)
	env := []string{"GNUPGHOME=" + home}
	gpg := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--batch", "--no-tty"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "gpg-agent")
		cmd.Env = append(os.Environ(), env...)
		_ = cmd.Run()
		os.RemoveAll(home)
	})
	fingerprint := func(uid string) string {
		for _, line := range strings.Split(gpg("--with-colons", "--list-keys", uid), "\n") {
			if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
				return f[9]
			}
		}
		t.Fatalf("no fingerprint for %s", uid)
		return ""
	}
	for _, uid := range []string{"Op Erator <op@example.com>", "Mallory <mallory@example.com>"} {
		gpg("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
	}
	opFP, malloryFP := fingerprint("op@example.com"), fingerprint("mallory@example.com")
	keyring := filepath.Join(t.TempDir(), "keyring.asc")
	writeFile(t, keyring, gpg("--armor", "--export", opFP), 0o644)
	t.Logf("op %s (in the keyring), mallory %s (not)", opFP, malloryFP)
	pgpSign := func(fp string) []string {
		return []string{"-c", "gpg.format=openpgp", "-c", "gpg.program=gpg", "-c", "user.signingkey=" + fp}
	}
	signatureScenario(t, signer{
		name: "openpgp", good: pgpSign(opFP), bad: pgpSign(malloryFP), badKey: malloryFP[len(malloryFP)-16:],
		agentArgs: []string{"--gpg-keyring-file", keyring}, env: env,
	})
}

// TestTrustForcePushToOlderCommit: the branch is force-pushed back to a
// commit older than the one in force, then to a rewritten history, then to
// the older commit again. The agent refuses each (it does not descend from
// the applied revision) and keeps enforcing the newer one, without fetching
// anything while the ref stays there; restarted with --allow-history-rewrite
// on the same state dir, it applies the older commit.
func TestTrustForcePushToOlderCommit(t *testing.T) {
	unit := trustUnit(t)
	repo := newTrustRepo(t, "trust-rollback", nil)
	g1 := repo.commit("unit up", trustDoc(unit, true), nil, true)
	state := t.TempDir()
	a := startAgent(t, agentConfig{Source: repo.HTTPURL, Host: trustHost, Interval: "1s", StateDir: state})
	awaitConverged(t, a, g1, time.Minute)
	g2 := repo.commit("unit down", trustDoc(unit, false), nil, true)
	awaitConverged(t, a, g2, time.Minute)
	if got := trustUnitState(t, unit); got != "inactive" {
		t.Fatalf("after g2: %s is %s, want inactive", unit, got)
	}
	if n := agentMetrics(t, a.Addr)["reconciler_source_history_fetches_total"]; n != 0 {
		t.Errorf("a fast-forward by one commit cost %v history fetches, want 0 (the cache holds the parent)", n)
	}

	// Force-push back to g1 (would start the unit again).
	repo.resetTo(g1)
	repo.push()
	st := awaitRefused(t, a, g1, g2, "not-descendant", g1)
	if !strings.Contains(st.FailedRevision.Reason, "does not descend from the applied revision "+shortRev(g2)) {
		t.Errorf("failedRevision reason %q does not say it does not descend from %s", st.FailedRevision.Reason, shortRev(g2))
	}
	if got := trustUnitState(t, unit); got != "inactive" {
		t.Errorf("after the force-push to g1: %s is %s, want inactive", unit, got)
	}

	// History rewritten: a new commit on g1, a sibling of g2. Refused too.
	r := repo.commit("unit up, rewritten history", trustDoc(unit, true)+"# rewritten\n", nil, true)
	st = awaitRefused(t, a, r, g2, "not-descendant", r)
	if !strings.Contains(st.FailedRevision.Reason, "history rewritten") {
		t.Errorf("failedRevision reason %q does not say the history was rewritten", st.FailedRevision.Reason)
	}
	if got := trustUnitState(t, unit); got != "inactive" {
		t.Errorf("after the rewritten history: %s is %s, want inactive", unit, got)
	}
	// And back to g1 again.
	repo.resetTo(g1)
	repo.push()
	awaitRefused(t, a, g1, g2, "not-descendant", g1)
	m := agentMetrics(t, a.Addr)
	if v := m[`reconciler_revision_refusals_total{reason="not-descendant"}`]; v != 3 {
		t.Errorf(`reconciler_revision_refusals_total{reason="not-descendant"} = %v, want 3`, v)
	}

	// While the ref stays there: polls, each one request, no fetch.
	passes := func() float64 { return sumMetric(agentMetrics(t, a.Addr), "reconciler_passes_total") }
	before, p0 := gitStats(t, repo.Name), passes()
	time.Sleep(3500 * time.Millisecond)
	after, p1 := gitStats(t, repo.Name), passes()
	if du := after.UploadPacks - before.UploadPacks; du != 0 {
		t.Errorf("%v passes on the refused head cost %d upload-packs, want 0", p1-p0, du)
	}
	if dr := after.Requests - before.Requests; p1-p0 < 2 || float64(dr) > p1-p0+1 {
		t.Errorf("%v passes on the refused head cost %d requests, want one each", p1-p0, dr)
	}
	if n := agentMetrics(t, a.Addr)["reconciler_source_history_fetches_total"]; n != 0 {
		t.Errorf("history fetches %v, want 0: g1 is in the cache as g2's parent, and r's parent is g1", n)
	}

	// The operator means it: the same agent, restarted with the flag.
	a.stop()
	a = startAgent(t, agentConfig{Source: repo.HTTPURL, Host: trustHost, Interval: "1s", StateDir: state,
		Args: []string{"--allow-history-rewrite"}})
	st = awaitConverged(t, a, g1, time.Minute)
	if st.FailedRevision != nil {
		t.Errorf("failedRevision after --allow-history-rewrite: %+v", st.FailedRevision)
	}
	eventually(t, 30*time.Second, unit+" active again", func() error {
		if got := trustUnitState(t, unit); got != "active" {
			return fmt.Errorf("%s", got)
		}
		return nil
	})
}
