// Package agent is the long-running reconciler: `reconciler run`. Every pass
// it looks the source's ref up once (fetching only when it moved), loads and
// validates the revision, plans and applies through the engine, and reports:
// status, drift, metrics, events. Passes run every interval (jittered) and at
// once on a verified webhook, so manual drift is caught within one interval
// and commits converge in about a second.
//
// It keeps working through faults. A revision that fails to fetch, parse or
// validate is never applied: the last good revision stays in force and keeps
// being enforced. That revision is written to --state-dir before it is
// applied, so an agent killed mid-pass (even while git is unreachable)
// re-plans from live state on restart and carries on in the same order.
//
// It also holds the line of the trust model (README "Trust model"): a
// revision that needs more than Config.Reach allow is refused like an
// invalid one, and the HTTP endpoints follow the rules in server.go (a
// token off loopback, a Host allow-list on it, timeouts, bounded streams,
// folded webhook refusals).
package agent
