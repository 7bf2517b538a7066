// Package compose is the driver for services of Docker Compose projects,
// scaled through the Docker API the way `docker compose up --scale` does; no
// compose file and no compose plugin are needed on the host. A declared
// service (project: P, name: S) is the set of containers labelled
// com.docker.compose.project=P and com.docker.compose.service=S, numbered by
// com.docker.compose.container-number (one-off `docker compose run`
// containers are not replicas). As everywhere, the reconciler owns the count,
// not the service: it never changes a container's configuration.
//
// # What replicas means
//
// replicas: N means exactly the containers numbered 1..N run, as on the
// systemd (x@1..x@N) and supervisor (the first N processes) drivers:
//
//   - Live.Replicas counts the started containers (running, restarting or
//     paused), Live.Running those running; Live.Details lists the numbers
//     running ("1-3,5") and those that exist but do not run.
//   - A started container numbered beyond N is scaled down: stopped
//     gracefully (SIGTERM, or the image's stop signal, then up to the
//     service's stopTimeout before Docker kills it) and removed, one at a
//     time from the highest number, each waited for, as Compose removes the
//     highest numbers first. Anonymous volumes are kept, as Compose keeps
//     them.
//   - A number in 1..N without a started container is scaled up, lowest
//     first: a stopped container of that number is started again (as
//     `docker compose up` restarts existing containers); otherwise a new
//     container is created from the configuration of the service's
//     lowest-numbered container (ContainerInspect: config, host config,
//     networks and aliases; the number label, name, hostname and addresses
//     are its own), named as the template is (ReplicaName):
//     <project>-<service>-<n> as Compose v2 names it, <project>_<service>_<n>
//     after docker-compose 1.x.
//     Then they are all started together (bounded), as Compose does. Gaps are filled rather than numbers appended after the
//     highest (Compose's own habit), so a container removed by hand comes
//     back under its old name and `replicas: 5` always means 1..5.
//   - Ready: every container 1..N running and nothing beyond N started.
//     Drained: nothing beyond N started. Stopped containers beyond N run
//     nothing and are left alone (not drift; a later scale-up starts them
//     again).
//
// # Scaling to 0
//
// Compose can start containers again only from its compose file; this
// driver has none, only the containers. So it never removes a service's last
// container: scaling to 0 stops every replica and removes all but the
// lowest-numbered one (normally #1), which is kept stopped as the template
// and is started again by the next scale-up. `docker compose ps -a` then
// shows one exited container, which is what "0 running" looks like here. The
// kept container survives a reboot stopped under the usual restart policies
// (unless-stopped, on-failure, no); with restart: always Docker starts it
// again when the daemon restarts, and the next pass stops it again.
//
// A declared service with no container at all is drift of kind missing,
// whatever its count: there is nothing to make replicas from, and the
// reconciler does not create objects. `docker compose up` the project once
// (with any scale) and the driver takes the count from there.
//
// # Image and restartOn
//
// A declared image, and a restartOn value (label dev.reconciler.restart-on),
// are carried out by recreating each running replica 1..N that differs, one
// at a time (recreate.go): stopped, renamed aside, the new container made
// from the old one's own configuration and started, the old one removed
// once the new one is ready, or put back if it never is. The compose labels
// (config-hash included) are copied, so the compose client that made the
// project still takes the containers for its own.
//
// # Files
//
// run.go runs a service once for a trigger as a one-off container, as
// `docker-compose run --rm` does (controllers.Runner);
// recreate.go plans and carries out image and restartOn rollouts;
// observe.go lists every compose container on the host in one call (All,
// filtered on the project label key; Docker ANDs label filters, so the
// pairing with projects and services is done in code); plan.go is the pure
// planner; apply.go stops, removes, creates and starts containers, every
// error naming the action's subject; health.go judges readiness and drain.
package compose
