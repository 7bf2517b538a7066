// Package drivertest holds what tests of drivers, the engine and the agent
// share: Fake, an in-memory driver that keeps each object's state, plans
// and applies on it and records what it was sent.
package drivertest
