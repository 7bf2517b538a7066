// Package autoscale sizes a service's replica count from the backlog of a
// RabbitMQ queue, within bounds reviewed in git (seed 001: operators watch
// usm_poller-sat-ID by hand and raise the poller count when it backs up).
//
// The rule: desired = clamp(ceil(ready / messagesPerReplica), min, max).
// Up at once; down only after the queue has stayed below the threshold for
// a cooldown, one step of at most maxStepDown per cooldown, so the count
// never flaps. A queue that cannot be read holds the current count (within
// [min, max]) and says why: a failed reading never scales anything to 0.
//
// decide.go is the pure rule, table-tested; amqp.go reads a queue with a
// passive declare (the URL comes from a file on the host, never from git);
// autoscaler.go keeps each service's memory (last change, below-threshold
// since) between passes and implements engine.Sizer.
package autoscale
