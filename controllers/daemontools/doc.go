// Package daemontools is the driver for services run by daemontools'
// supervise (under svscan) and by runit's runsv (under runsvdir), replacing
// the svc/svstat runbook of seed 003. It talks to supervise the way svc and
// svstat do, with no external commands: it reads DIR/supervise/status (the
// 18-byte daemontools record or runit's 20-byte one, told apart by size) and
// writes one-byte commands to the DIR/supervise/control FIFO. The FIFO is
// opened non-blocking, so a folder whose supervise is not running fails at
// once ("no supervise running for /service/x: ...") instead of hanging.
// The status record and the driver's marks are read the same way, regular
// files only and never through a final symlink, and the down file is
// created with O_NOFOLLOW (files.go): a folder writable by the service's
// user cannot make the agent hang or write elsewhere.
//
// What a declaration means:
//
//   - replicas 1: up (svc -u: started, and restarted whenever it stops);
//     replicas 0: down (svc -d); once: true with replicas 1: started once and
//     not restarted when it exits (svc -o).
//   - The down file. DIR/down is kept in line with the declared state:
//     present for a service declared down, absent for one declared up, so a
//     reboot (svscan starting supervise afresh) leaves every service as git
//     says before the agent even runs. A once service keeps a down file too:
//     without it supervise would start it at boot with restarts (want up),
//     which is not "once"; the agent starts it once (svc -o) when it runs.
//     A down file that disagrees is drift of field "downfile" ("present" or
//     "absent"): creating it is a disable (down phase, it stops a start at
//     boot), removing it an enable (up phase), like systemd's enablement.
//   - restartOn: a value (a config hash) whose change restarts a service that
//     is up, and only one that is up (svcrestart). The value last applied is
//     recorded on the host in DIR/.reconciler-restart-on, written after the
//     restart (svc -t; supervise starts it again since it wants it up) and
//     whenever the driver starts the service. A declared value that differs
//     from the record plans a restart only while the service runs; a service
//     that is down is not started by it: the value is recorded when it is
//     next started. With no record yet (a service the agent adopts), the
//     service is restarted once, since nothing says it runs with that value.
//     restartOn is ignored for once services (a restart would not rerun them).
//   - Readiness of a start: up per the status record (and not paused, not
//     crash-looping), then the declared ready probe, which the engine runs.
//     When a start this driver made never becomes ready, NotReady brings it
//     down again (svc -d and the down file) unless onNotReady is keep.
//
// What it reports (Live.Details, shown in /status): state (up, down or
// finishing), pid, uptime since the last change (from the record's TAI64N
// label, not our clock), since (that time), want (up, down, once), normally
// (up or down: the down file), paused, supervise (running or not running),
// and for a service that keeps crashing, crash-looping "true" with restarts
// (the restarts seen while watching it). Crash loops are found within one
// Observe: only services that want up and are down or up for under 1.5 s are
// watched, by re-reading their status record every 100 ms for up to 2.5 s
// (cheap file reads), counting new pids; two deaths young in that window is
// a loop. A service up for 1.5 s ends the watch early. supervise restarts a
// crashing service at most once a second, so a loop shows two deaths within
// the window.
//
// runit differences: sv once leaves want 'd' in the record, so a finished
// once service looks like one sent down. The driver marks a once start it
// made under runit with DIR/.reconciler-once (removed when it sends up or
// down) to tell the two apart. A runsv restart leaves the mark, so on runit
// a once service that already ran is not run again after a reboot until its
// declaration changes (daemontools records once itself and has no such
// limit).
//
// observe.go reads every declared folder's files in one pass; plan.go is the
// pure planner; apply.go writes commands and files, errors wrapped with the
// subject, and implements controllers.NotReadyHandler; health.go is the pure
// readiness check; status.go parses the status record; run.go runs a once
// service for a trigger and waits for its end (controllers.Runner).
package daemontools
