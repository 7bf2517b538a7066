// Package status holds the wire types of an agent's /status, /passes/{id}
// and /events, and the small bounded HTTP client that reads them (Get,
// PostJSON). It is its own package so that the programs that read an agent
// (the CLI's status and quarantine commands, fleet) do not import the agent.
// The names these types carry (event and condition types, reasons, results)
// are in api/names.
package status
