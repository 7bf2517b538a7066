// Package controllers holds one package per driver (swarm, systemd, compose,
// supervisor, daemontools) and the engine that orders their work. Every driver
// is split the same way: observe (read live state in one call through a narrow
// interface), plan (a pure function of desired and live state), apply (execute
// actions, errors wrapped with their subject) and health (a pure readiness
// check). Drivers know nothing of each other; only the engine combines them.
package controllers
