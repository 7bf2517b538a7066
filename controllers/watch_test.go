package controllers

import "testing"

func woken(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestFeedWakesBySubjectAndDrift(t *testing.T) {
	var f Feed
	wait, drift := make(chan struct{}, 1), make(chan struct{}, 1)
	cancel := f.Subscribe(wait, []string{"swarm/a"}, false)
	f.Subscribe(drift, nil, true)

	f.SetLive(true) // first start: waits woken, drift readers not
	if !woken(wait) || woken(drift) {
		t.Fatal("first live: want the wait woken, drift not")
	}
	mark := f.Mark()
	f.Changed("swarm/b", false)
	if woken(wait) || woken(drift) || f.ChangedSince(mark, []string{"swarm/a"}) {
		t.Fatal("a change of another subject woke a reader")
	}
	f.Changed("swarm/a", false)
	if !woken(wait) || woken(drift) || !f.ChangedSince(mark, []string{"swarm/a"}) {
		t.Fatal("own change of swarm/a: want the wait woken, drift not")
	}
	f.Changed("swarm/a", true)
	if !woken(wait) || !woken(drift) {
		t.Fatal("drift on swarm/a: want both woken")
	}
	f.SetLive(false)
	m2 := f.Mark()
	if !f.ChangedSince(m2, nil) {
		t.Fatal("a feed that is not live must say it cannot tell")
	}
	f.SetLive(true) // back after a break: drift readers too
	if !woken(drift) {
		t.Fatal("stream back: drift readers not woken")
	}
	woken(wait)
	cancel()
	f.Changed("swarm/a", false)
	if woken(wait) {
		t.Fatal("woken after cancel")
	}
}
