// Package fleet answers a fleet owner's first question after a commit:
// which hosts have converged? It asks every agent's /status concurrently,
// each with a timeout, and sums them up per host: revision, in sync,
// maintenance, drift, last pass age, reachable. Agents stay independent:
// git is the only writer, and this view only reads.
package fleet
