// Package restarton keeps the restartOn value last applied to a service,
// and since when, for the drivers whose live system cannot hold it:
// supervisord has nowhere to put a value of ours on a program, and a
// systemd unit reached over D-Bus takes no property of ours either (only a
// drop-in file could, on a host the agent may not share a file system
// with). Daemontools keeps the value in the service folder, compose on the
// container's label and swarm on the service's label: they need no record.
//
// A record is {value, since}. It is still level-based: what must be
// restarted is judged from the live start time of each replica against the
// record's since, so a rolling restart cut short (the agent killed half
// way) carries on where it stopped at the next pass, a replica started
// after the change (a scale-up, a crash and restart) is not restarted
// again, and a replica that does not run is never restarted. Without a
// record (the first declaration, or the record lost) every running replica
// is restarted once, as on daemontools.
//
// Records live as one small JSON file per service subject under a folder
// (the agent's --state-dir/restart-on), each written whole to a temporary
// file and renamed.
package restarton
