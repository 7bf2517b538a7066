// Package names holds, as constants in one place, the names an agent's
// reports carry: event types, condition types and reasons, pass results and
// drift actions. The engine, the agent, the CLI and fleet spell them only
// through these constants, and the status page's script gets the event
// types from the server (/static/names.js, built from EventTypes) rather
// than keeping copies. It imports nothing, so any package may use it.
package names
