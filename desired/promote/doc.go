// Package promote moves rollout refs: it reads the heads of a repository's
// branches and fast-forwards one branch to a commit, the only write a
// rollout in waves makes (`reconciler fleet promote`). Git stays the only
// writer the agents listen to; the agents never talk to each other, nor to
// the promoter.
package promote
