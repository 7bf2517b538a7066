//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
)

const qxHost = "qx-01"

// qxDoc is a Host document of two swarm services, web depending on db;
// webExtra goes under web (a readiness probe).
func qxDoc(db, web string, replicas int, webExtra string) string {
	return fmt.Sprintf(`apiVersion: reconciler.dev/v1
kind: Host
metadata:
  name: %s
spec:
  services:
    - name: %s
      replicas: %d
    - name: %s
      replicas: %d
      dependsOn: [%s]
%s`, qxHost, db, replicas, web, replicas, db, webExtra)
}

// TestQuarantineRevertsUnhealthyRevision: r1 (db and web at 1 replica)
// converges and is healthy. r2 scales both to 2 and gives web a readiness
// probe that never passes: it validates, its passes fail, and after
// --healthy-within it is quarantined and r1 goes back in force through the
// ordered pass: Docker's events show r2 scaling db before web, and the
// revert scaling web down before db. r2 is never tried again (no Docker
// update of either service after the revert converged, through more
// passes and an agent restart); `reconciler status` names it; a release is
// logged; a newer commit r3 is tried normally.
func TestQuarantineRevertsUnhealthyRevision(t *testing.T) {
	docker := dockerClient(t)
	db, web := uniqueName("qx-db"), uniqueName("qx-web")
	createService(t, docker, db, 0)
	createService(t, docker, web, 0)
	t.Cleanup(func() { removeServices(t, docker, []string{db, web}) })
	el := watchDockerEvents(t, docker)

	repo := newGitRepo(t, "quarantine")
	r1 := repo.Commit("r1: one of each", map[string]string{"hosts/qx.yaml": qxDoc(db, web, 1, "")})
	within := 5 * time.Second
	cfg := agentConfig{Source: repo.FileURL, Host: qxHost, Interval: "1s", Args: []string{"--healthy-within", within.String()}}
	a := startAgent(t, cfg)
	awaitConverged(t, a, r1, 60*time.Second)
	eventually(t, 10*time.Second, "r1 healthy", func() error {
		st := statusOf(t, a.Addr)
		if st.Revision == nil || st.Revision.HealthySince.IsZero() {
			return fmt.Errorf("revision %+v", st.Revision)
		}
		return nil
	})

	probe := fmt.Sprintf("      ready: {tcp: %q, timeout: 1s}\n", freePort(t))
	committed := time.Now()
	r2 := repo.Commit("r2: two of each, web never ready", map[string]string{"hosts/qx.yaml": qxDoc(db, web, 2, probe)})

	var st status.Status
	eventually(t, 60*time.Second, "r2 quarantined and r1 back in force", func() error {
		var err error
		if st, err = tryAgentStatus(a.Addr); err != nil {
			return err
		}
		q := st.QuarantinedRevision
		if q == nil || q.ID != r2 {
			return fmt.Errorf("quarantinedRevision %+v; revision %+v; last pass %+v", q, st.Revision, st.LastPass)
		}
		if lp := st.LastPass; lp == nil || lp.Revision != r1 || lp.Result != names.ResultConverged || lp.Start.Before(q.At) {
			return fmt.Errorf("last pass %+v", lp)
		}
		return nil
	})
	q := st.QuarantinedRevision
	if q.Subject != "swarm/"+web || !strings.Contains(q.Reason, "probe") || q.RevertedTo != r1 {
		t.Errorf("quarantinedRevision %+v: want web's probe named, reverted to r1", q)
	}
	if st.Revision.ID != r1 || st.Revision.Reverted != r2 {
		t.Errorf("revision in force %+v", st.Revision)
	}
	var back status.PassSummary
	for _, p := range st.Passes {
		if p.Revision == r1 && p.Result == names.ResultConverged && !p.Start.Before(q.At) {
			back = p // the oldest such pass: the revert
		}
	}
	m := agentMetrics(t, a.Addr)
	if sumMetric(m, "reconciler_reverts_total") != 1 || sumMetric(m, "reconciler_quarantined_revision_info") != 1 {
		t.Errorf("metrics: reverts %v, quarantined %v", sumMetric(m, "reconciler_reverts_total"), sumMetric(m, "reconciler_quarantined_revision_info"))
	}

	// Docker's account of the order: r2 went up db first, the revert came
	// down web first.
	end := time.Now()
	dbUp := el.serviceEvents(db, "update", committed, q.At)
	webUp := el.serviceEvents(web, "update", committed, q.At)
	webDown := el.serviceEvents(web, "update", q.At, end)
	dbDown := el.serviceEvents(db, "update", q.At, end)
	if len(dbUp) == 0 || len(webUp) == 0 || len(webDown) == 0 || len(dbDown) == 0 {
		t.Fatalf("missing Docker updates: db up %d, web up %d, web down %d, db down %d:\n%s", len(dbUp), len(webUp), len(webDown), len(dbDown), el.summary())
	}
	if !dbUp[0].Before(webUp[0]) {
		t.Errorf("r2 scaled web (%s) before db (%s)", webUp[0].Format("15:04:05.000"), dbUp[0].Format("15:04:05.000"))
	}
	if !webDown[0].Before(dbDown[0]) {
		t.Errorf("the revert scaled db down (%s) before web (%s)", dbDown[0].Format("15:04:05.000"), webDown[0].Format("15:04:05.000"))
	}
	webDied := el.serviceEvents(web, "die", q.At, end)
	if len(webDied) == 0 || !webDied[len(webDied)-1].Before(dbDown[0]) {
		t.Errorf("db scaled down at %s before web's containers were gone (%v)", dbDown[0].Format("15:04:05.000"), webDied)
	}
	first := dbUp[0]
	t.Logf("revert: r2's first action (Docker: %s updated) %s; quarantined %s (+%s); r1 back in force, the revert pass %s ended %s (+%s); Docker: %s down at +%s, %s down at +%s",
		db, first.Format("15:04:05.000"), q.At.Format("15:04:05.000"), q.At.Sub(first).Round(time.Millisecond),
		back.ID, back.End.Format("15:04:05.000"), back.End.Sub(first).Round(time.Millisecond),
		web, webDown[0].Sub(first).Round(time.Millisecond), db, dbDown[0].Sub(first).Round(time.Millisecond))
	t.Logf("stage order (Docker events): r2: %s up +%s, %s up +%s; revert: %s down +%s, %s last container died +%s, %s down +%s",
		db, dbUp[0].Sub(first).Round(time.Millisecond), web, webUp[0].Sub(first).Round(time.Millisecond),
		web, webDown[0].Sub(first).Round(time.Millisecond), web, webDied[len(webDied)-1].Sub(first).Round(time.Millisecond),
		db, dbDown[0].Sub(first).Round(time.Millisecond))

	// Never tried again: more passes and a restart write nothing.
	quiet := time.Now()
	a.stop()
	a = startAgent(t, agentConfig{Source: repo.FileURL, Host: qxHost, Interval: "1s", StateDir: a.StateDir, Args: cfg.Args})
	awaitConverged(t, a, r1, 30*time.Second)
	time.Sleep(3 * time.Second) // three intervals: passes in which r2 could have come back
	if n := len(el.serviceEvents(db, "update", quiet, time.Now())) + len(el.serviceEvents(web, "update", quiet, time.Now())); n != 0 {
		t.Errorf("r2 tried again after a restart: %d Docker updates:\n%s", n, el.summary())
	}
	out := cli(t, nil, "status", "--listen", a.Addr).mustCode(t, 0, "status")
	if !strings.Contains(out.Stdout, "quarantined: "+shortRev(r2)) || !strings.Contains(out.Stdout, "swarm/"+web) {
		t.Errorf("status does not show the quarantine:\n%s", out.Stdout)
	}
	t.Logf("reconciler status:\n%s", out.Stdout)

	// A newer commit is tried normally.
	r3 := repo.Commit("r3: web back to one, no probe", map[string]string{"hosts/qx.yaml": qxDoc(db, web, 1, "# r3: the same as r1, a new commit\n")})
	awaitConverged(t, a, r3, 30*time.Second)

	// An operator's release is logged and raised as an event.
	rel := cli(t, nil, "quarantine", "release", "--listen", a.Addr, r2[:10]).mustCode(t, 0, "quarantine release")
	if !strings.Contains(rel.Stdout, "released "+shortRev(r2)) {
		t.Errorf("release said:\n%s", rel.Stdout)
	}
	eventually(t, 10*time.Second, "release logged", func() error {
		if !strings.Contains(a.stderr.String(), "quarantine released") {
			return fmt.Errorf("not in the agent's log")
		}
		if st := statusOf(t, a.Addr); !hasEventType(st, names.EventQuarantineReleased) || len(st.Quarantined) != 0 {
			return fmt.Errorf("status: quarantined %+v", st.Quarantined)
		}
		return nil
	})
	cli(t, nil, "quarantine", "release", "--listen", a.Addr, r2[:10]).mustCode(t, 1, "release of nothing")
}
