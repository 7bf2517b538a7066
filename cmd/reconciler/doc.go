// Command reconciler is the GitOps agent for Docker Swarm services, systemd
// units and worker processes. This package is wiring only: it parses flags
// (each also read from RECONCILER_<FLAG>), sets up the logger and signal
// handling, and hands over to the packages that do the work.
package main
