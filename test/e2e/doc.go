// Package e2e holds the end-to-end tests. They run only with the build tag
// `e2e` (make test-e2e) and talk to the real testbed that `hack/testbed up`
// brings up: dockerd in swarm mode, systemd over D-Bus, RabbitMQ, supervisord,
// daemontools, runit and a git server. Nothing here is faked; a missing part
// fails the test with a message that says what is missing. Tests poll with
// deadlines and never sleep a fixed time to wait for state.
package e2e
