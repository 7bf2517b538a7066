// Package swarm is the driver for Docker Swarm services. The stack deploys a
// service; this driver owns only its replica count, and its image when the
// desired state declares one. It never creates, redeploys or removes a
// service, and never touches one git does not name.
//
// observe.go lists every declared service in one call, with task counts
// (and, for services running fewer tasks than they ask for, their tasks in
// one more call, to tell failing from starting);
// plan.go is the pure planner; apply.go sends one ServiceUpdate per action,
// with the version index read in the same pass ("update out of sequence"
// re-reads and retries); health.go judges readiness from running tasks.
// list.go is the one reader of services (the driver's and export's): its own
// GET /services through the Docker client's transport, decoded one service
// at a time into the fields the driver reads (Service), the whole spec kept
// as bytes for the update built on it, the answer bounded; cluster.go reads
// the node's role; watch.go follows Docker's events.
package swarm
